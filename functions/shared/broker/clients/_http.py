"""What the adapters share: one exchange with an upstream under the broker's fault policy,
failure classification and parsing.

The policy (one place for every upstream):

- every wait is bounded by the deadline: timeouts are clipped to it, retry waits (our backoff
  or the upstream's ``Retry-After``, RFC 9110 section 10.2.3) are taken only if they fit;
- a call that is safe to repeat (``idempotent=True``) is retried on a transport failure and on
  408/429/500/502/503/504; a create that may have been billed is not;
- a 401/403 re-reads the API key once, bypassing the cache (the secret may have been rotated),
  and repeats the call: the upstream refused it, so nothing happened and repeating is safe;
- a 429 (or a 503 with ``Retry-After``) that is not retried becomes ``UpstreamUnavailableError``
  (503 with the upstream's ``Retry-After``).

Error details never carry an upstream status code or body; the log lines carry the status.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import httpx2
from pydantic import BaseModel, ValidationError

from broker.errors import Upstream, UpstreamError, UpstreamTimeoutError, UpstreamUnavailableError
from broker.http import timeout_within
from broker.observability import logger
from broker.timing import Backoff, Deadline, sleep_within

ModelT = TypeVar("ModelT", bound=BaseModel)

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
"""Statuses after which a call that is safe to repeat is repeated (if the deadline allows)."""
AUTH_STATUSES = frozenset({401, 403})
BACKOFF = Backoff(base=0.2, cap=2.0, attempts=3)
MIN_ATTEMPT_SECONDS = 0.5
"""A retry is started only if at least this much time is left after its wait."""


class Credential(Protocol):
    """An API key that can be re-read: ``broker.secrets.ApiKey``."""

    def __call__(self) -> str:
        """The current key."""

    def refresh(self, stale: str) -> bool:
        """Re-read the key bypassing any cache unless it already changed from ``stale``; True
        if the key is now different from ``stale``."""


def retry_after_seconds(response: httpx2.Response) -> float | None:
    """The response's ``Retry-After`` in seconds (RFC 9110 section 10.2.3: delay-seconds or an
    HTTP-date), or None when absent or invalid."""
    value = response.headers.get("retry-after", "").strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def exchange(
    http: httpx2.Client,
    upstream: Upstream,
    method: str,
    url: str,
    *,
    credential: Credential,
    authorize: Callable[[str], dict[str, str]],
    deadline: Deadline,
    idempotent: bool,
    **kwargs: Any,
) -> httpx2.Response:
    """One call under the policy above; ``authorize(key)`` gives the auth headers.

    Returns the final response, whatever its status, except that a "not now" answer
    (``is_unavailable``) that was not retried raises ``UpstreamUnavailableError``. Raises ``UpstreamTimeoutError`` /
    ``UpstreamError`` on transport failures and ``ConfigurationError`` when the key is missing.
    """
    extra = kwargs.pop("headers", {})
    refreshed = False
    attempt = 1
    with deadline.applies():
        while True:
            key = credential()
            try:
                response = send(
                    http, upstream, method, url, deadline=deadline, headers={**extra, **authorize(key)}, **kwargs
                )
            except UpstreamError:
                if idempotent and wait_to_retry(attempt, None):
                    attempt += 1
                    continue
                raise
            status = response.status_code
            if status in AUTH_STATUSES and not refreshed:
                refreshed = True
                if credential.refresh(key):
                    logger.warning(
                        "upstream refused the key; re-read it", extra={"upstream": upstream, "status": status}
                    )
                    continue
            if status in RETRYABLE_STATUSES and idempotent and wait_to_retry(attempt, retry_after_seconds(response)):
                logger.info("upstream retry", extra={"upstream": upstream, "status": status, "attempt": attempt})
                attempt += 1
                continue
            if is_unavailable(status, retry_after_seconds(response)):
                raise unavailable(upstream, status, retry_after_seconds(response))
            return response


def is_unavailable(status: int, retry_after: float | None) -> bool:
    """True for "not now" answers: 429, or 503 with a ``Retry-After``."""
    return status == 429 or (status == 503 and retry_after is not None)


def wait_to_retry(attempt: int, retry_after: float | None) -> bool:
    """Wait before try ``attempt + 1`` (the upstream's ``retry_after`` seconds, else our
    backoff) and return True, or return False at once when tries are used up or the wait would
    not leave ``MIN_ATTEMPT_SECONDS`` before the current deadline."""
    if attempt >= BACKOFF.attempts:
        return False
    return sleep_within(BACKOFF.wait(attempt) if retry_after is None else retry_after, MIN_ATTEMPT_SECONDS)


def unavailable(upstream: Upstream, status: int, retry_after: float | None) -> UpstreamUnavailableError:
    """The error for an upstream that said "not now" (429/503) with ``retry_after`` seconds."""
    logger.warning("upstream unavailable", extra={"upstream": upstream, "status": status, "retry_after": retry_after})
    seconds = None if retry_after is None else max(1, math.ceil(retry_after))
    return UpstreamUnavailableError(upstream, f"{upstream} is busy; try again later", seconds)


def send(
    http: httpx2.Client,
    upstream: Upstream,
    method: str,
    url: str,
    *,
    deadline: Deadline,
    share: float = 1.0,
    **kwargs: Any,
) -> httpx2.Response:
    """One request whose timeouts are clipped to ``share`` of the deadline's time left.

    Raises ``UpstreamTimeoutError`` (a 504) on a timeout and ``UpstreamError`` (a 502) on any
    other transport failure; an HTTP error status is returned, not raised.
    """
    timeout = timeout_within(http, deadline, share)
    try:
        with deadline.applies():
            return http.request(method, url, timeout=timeout, **kwargs)
    except httpx2.TimeoutException as exc:
        logger.warning("upstream timed out", extra={"upstream": upstream, "error": type(exc).__name__})
        raise UpstreamTimeoutError(upstream, f"{upstream} did not answer in time") from exc
    except httpx2.TransportError as exc:
        logger.warning("upstream connection failed", extra={"upstream": upstream, "error": type(exc).__name__})
        raise UpstreamError(upstream, f"could not talk to {upstream}") from exc


def reject(upstream: Upstream, response: httpx2.Response, action: str) -> UpstreamError:
    """The domain error for an error answer. Logs its status only (the body may echo what we
    sent); neither the status nor the body reaches the caller."""
    logger.warning("upstream refused", extra={"upstream": upstream, "status": response.status_code, "action": action})
    return UpstreamError(upstream, f"{upstream} refused to {action}")


def parse(upstream: Upstream, response: httpx2.Response, model: type[ModelT]) -> ModelT:
    """Validate a success body against the part of the contract we rely on.

    Raises ``UpstreamError`` (a 502) when the body does not match ``model``.
    """
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        logger.warning("upstream answered off contract", extra={"upstream": upstream, "errors": exc.error_count()})
        raise UpstreamError(upstream, f"{upstream} sent an unexpected response") from None
