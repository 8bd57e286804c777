"""What the hand-written adapters (Avaturn, Cartesia) share: send, classify failures, parse."""

from __future__ import annotations

from typing import Any, TypeVar

import httpx2
from pydantic import BaseModel, ValidationError

from broker.errors import Upstream, UpstreamError, UpstreamTimeoutError
from broker.http import timeout_within
from broker.observability import logger
from broker.timing import Deadline

ModelT = TypeVar("ModelT", bound=BaseModel)


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
        return http.request(method, url, timeout=timeout, **kwargs)
    except httpx2.TimeoutException as exc:
        logger.warning("upstream timed out", extra={"upstream": upstream, "error": type(exc).__name__})
        raise UpstreamTimeoutError(upstream, f"{upstream} did not answer in time") from exc
    except httpx2.TransportError as exc:
        logger.warning("upstream connection failed", extra={"upstream": upstream, "error": type(exc).__name__})
        raise UpstreamError(upstream, f"could not talk to {upstream}") from exc


def reject(upstream: Upstream, response: httpx2.Response, action: str) -> UpstreamError:
    """The domain error for an error answer. Logs its status only (the body may echo what we
    sent) and never returns the body to the caller."""
    logger.warning("upstream refused", extra={"upstream": upstream, "status": response.status_code, "action": action})
    return UpstreamError(upstream, f"{upstream} refused to {action} (HTTP {response.status_code})")


def parse(upstream: Upstream, response: httpx2.Response, model: type[ModelT]) -> ModelT:
    """Validate a success body against the part of the contract we rely on.

    Raises ``UpstreamError`` (a 502) when the body does not match ``model``.
    """
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        logger.warning("upstream answered off contract", extra={"upstream": upstream, "errors": exc.error_count()})
        raise UpstreamError(upstream, f"{upstream} sent an unexpected response") from None
