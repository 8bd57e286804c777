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


class CapReachedError(BrokerError):
    """The owner already holds the maximum number of active sessions."""

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


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
