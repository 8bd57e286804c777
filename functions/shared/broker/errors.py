"""Domain errors. Adapters raise these; ``broker.api`` alone maps them to HTTP.

Messages are written for the API client: they never contain a key, a secret, a token or an
upstream response body.
"""

from __future__ import annotations

from typing import Literal

Upstream = Literal["avaturn", "openai", "cartesia"]


class BrokerError(Exception):
    """Base class of every error the broker expects and explains."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidRequestError(BrokerError):
    """The request is well-formed JSON but breaks a rule (unknown field, engine not allowed...)."""

    def __init__(self, detail: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.errors = errors or []


class MalformedBodyError(BrokerError):
    """The body is not parseable JSON (or not a JSON object)."""


class BodyTooLargeError(BrokerError):
    """The body exceeds the size limit."""


class UnsupportedMediaTypeError(BrokerError):
    """The body is not declared as JSON."""


class UnauthenticatedError(BrokerError):
    """JWT mode is on but the request carries no verified subject."""


class SessionNotFoundError(BrokerError):
    """No such session, or the caller does not own it (indistinguishable on purpose)."""


class SessionConflictError(BrokerError):
    """The session is in a state that does not allow the operation yet."""


class IdempotencyInProgressError(BrokerError):
    """A request with the same Idempotency-Key is still being processed."""


class IdempotencyMismatchError(BrokerError):
    """The Idempotency-Key was used before with a different request body."""


class ReplayUnavailableError(BrokerError):
    """The stored response of an Idempotency-Key can no longer be opened (the secret changed)."""


class LimitError(BrokerError):
    """A spend limit refuses the request. ``limit`` and ``used`` are in the limit's own unit
    (sessions, seconds or creates); ``retry_after`` is the real wait in whole seconds until it
    frees (at least 1)."""

    def __init__(self, detail: str, *, limit: int, used: int, retry_after: int) -> None:
        super().__init__(detail)
        self.limit = limit
        self.used = used
        self.retry_after = max(1, retry_after)


class CapReachedError(LimitError):
    """The owner already holds ``MAX_ACTIVE_SESSIONS_PER_OWNER`` open sessions (429)."""


class BudgetExhaustedError(LimitError):
    """The owner's session seconds for this UTC day are spent (429); frees at midnight UTC."""


class RateLimitedError(LimitError):
    """The owner made ``MAX_CREATES_PER_OWNER_PER_MINUTE`` creates this minute (429)."""


class AtCapacityError(LimitError):
    """The broker holds ``MAX_ACTIVE_SESSIONS_TOTAL`` open sessions (503)."""


class CreatesPausedError(BrokerError):
    """An operator paused creates (the kill switch; 503)."""


class SessionEndedError(BrokerError):
    """The session has ended: it cannot be kept alive (409)."""


class ConfigurationError(BrokerError):
    """The broker is not configured to serve this request (keys missing, bad settings)."""


class DependencyUnavailableError(BrokerError):
    """An AWS dependency (Secrets Manager, DynamoDB) failed or could not be reached."""


class UpstreamError(BrokerError):
    """An upstream API answered with an error or with something that is not its contract."""

    def __init__(self, upstream: Upstream, detail: str) -> None:
        super().__init__(detail)
        self.upstream = upstream


class UpstreamTimeoutError(UpstreamError):
    """An upstream API did not answer in time (or the connection failed mid-request)."""


class UpstreamUnavailableError(UpstreamError):
    """An upstream API is overloaded or rate-limiting us (HTTP 429/503) and asked for a wait
    that does not fit in this request's deadline. ``retry_after`` is that wait in whole seconds
    (None when the upstream gave none)."""

    def __init__(self, upstream: Upstream, detail: str, retry_after: int | None = None) -> None:
        super().__init__(upstream, detail)
        self.retry_after = retry_after


class UpstreamGoneError(UpstreamError):
    """The upstream resource no longer exists (Avaturn 404/410)."""
