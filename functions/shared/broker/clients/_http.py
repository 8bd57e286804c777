"""What the hand-written adapters (Avaturn, Cartesia) share: send, classify failures, parse."""

from __future__ import annotations

from typing import Any, TypeVar

import httpx2
from pydantic import BaseModel, ValidationError

from broker.errors import Upstream, UpstreamError, UpstreamTimeoutError
from broker.observability import logger

ModelT = TypeVar("ModelT", bound=BaseModel)


def send(
    http: httpx2.Client, upstream: Upstream, method: str, url: str, *, timeout: httpx2.Timeout, **kwargs: Any
) -> httpx2.Response:
    """One request; transport failures become domain errors (a timeout is a 504, the rest 502)."""
    try:
        return http.request(method, url, timeout=timeout, **kwargs)
    except httpx2.TimeoutException as exc:
        logger.warning("upstream timed out", extra={"upstream": upstream, "error": type(exc).__name__})
        raise UpstreamTimeoutError(upstream, f"{upstream} did not answer in time") from exc
    except httpx2.TransportError as exc:
        logger.warning("upstream connection failed", extra={"upstream": upstream, "error": type(exc).__name__})
        raise UpstreamError(upstream, f"could not talk to {upstream}") from exc


def reject(upstream: Upstream, response: httpx2.Response, action: str) -> UpstreamError:
    """An error answer: log its status only (the body may echo what we sent), never return it."""
    logger.warning("upstream refused", extra={"upstream": upstream, "status": response.status_code, "action": action})
    return UpstreamError(upstream, f"{upstream} refused to {action} (HTTP {response.status_code})")


def parse(upstream: Upstream, response: httpx2.Response, model: type[ModelT]) -> ModelT:
    """Validate a success body against the contract we rely on; anything else is a 502."""
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        logger.warning("upstream answered off contract", extra={"upstream": upstream, "errors": exc.error_count()})
        raise UpstreamError(upstream, f"{upstream} sent an unexpected response") from None
