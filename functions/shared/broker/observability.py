"""Powertools logger, metrics and tracer, one of each per container.

The tracer never records method responses: they carry session tokens. Event logging
(``POWERTOOLS_LOGGER_LOG_EVENT``) logs events with their credentials redacted. When tracing is
off, no tracer is made, so the X-Ray SDK is never imported (Powertools' Tracer imports it even
when disabled).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from broker.errors import Upstream

SERVICE = os.getenv("POWERTOOLS_SERVICE_NAME") or "avaturn-session-broker"
NAMESPACE = os.getenv("POWERTOOLS_METRICS_NAMESPACE") or "AvaturnSessionBroker"

# Wire-level loggers of the SDKs print request and response bodies (secret values, tokens) at
# DEBUG. Keep them at INFO or above even when someone turns the root logger to DEBUG.
for _noisy in ("botocore", "boto3", "urllib3", "httpcore2", "httpx2", "openai"):
    logging.getLogger(_noisy).setLevel(logging.INFO)

_TRUTHY = frozenset({"1", "y", "yes", "t", "true", "on"})  # what Powertools' own flags accept


def tracing_enabled() -> bool:
    """Powertools' rule for its tracer: on inside Lambda, off under `sam local` and wherever
    ``POWERTOOLS_TRACE_DISABLED`` is true."""
    if os.getenv("POWERTOOLS_TRACE_DISABLED", "").strip().lower() in _TRUTHY:
        return False
    return bool(os.getenv("LAMBDA_TASK_ROOT")) and not os.getenv("AWS_SAM_LOCAL")


logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
tracer = Tracer(service=SERVICE) if tracing_enabled() else None
"""The X-Ray tracer; None when tracing is off."""


HandlerT = TypeVar("HandlerT", bound=Callable[[dict[str, Any], LambdaContext], Any])

CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-session-token", "x-api-key"})
"""Request headers whose values are credentials: never logged."""
REDACTED = "[redacted]"


def redacted_event(event: Any) -> Any:
    """A copy of a Lambda event that is safe to log: the values of ``CREDENTIAL_HEADERS`` (in any
    case), the cookies and the body (which may carry a token) replaced by ``REDACTED``. Events
    without them (the schedule's) are returned as they are."""
    if not isinstance(event, dict):
        return event
    safe = dict(event)
    headers = event.get("headers")
    if isinstance(headers, dict):
        safe["headers"] = {k: REDACTED if str(k).lower() in CREDENTIAL_HEADERS else v for k, v in headers.items()}
    for part in ("cookies", "body"):
        if event.get(part):
            safe[part] = REDACTED
    return safe


def instrumented(correlation_id_path: str | None = None) -> Callable[[HandlerT], HandlerT]:
    """The one way a ``lambda_handler(event, context)`` is wrapped: Powertools logger context
    (with the correlation id at ``correlation_id_path``, a JMESPath into the event), the X-Ray
    tracer when tracing is on (never recording the response: it can carry a session token) and
    metrics flushing.

    ``POWERTOOLS_LOGGER_LOG_EVENT=true`` logs each event as ``redacted_event`` makes it, never as
    Powertools would (raw, with the ``X-Session-Token`` and ``Authorization`` headers)."""

    def wrap(handler: HandlerT) -> HandlerT:
        traced = metrics.log_metrics(handler)
        if tracer is not None:
            traced = tracer.capture_lambda_handler(capture_response=False)(traced)

        @functools.wraps(handler)
        def logged(event: dict[str, Any], context: LambdaContext) -> Any:
            if os.getenv("POWERTOOLS_LOGGER_LOG_EVENT", "").strip().lower() in _TRUTHY:
                logger.info(redacted_event(event))
            return traced(event, context)

        # log_event=False: Powertools would log the raw event whatever the variable says
        inject = logger.inject_lambda_context(correlation_id_path=correlation_id_path, log_event=False)
        return cast(HandlerT, inject(logged))

    return wrap


def count(name: str, value: int = 1) -> None:
    """Add ``value`` to the count metric ``name`` (published when the handler returns)."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def count_end(reason: str, seconds_used: int) -> None:
    """``SessionsEnded`` with the end reason as a dimension, and the session's ``SecondsUsed``."""
    with single_metric(name="SessionsEnded", unit=MetricUnit.Count, value=1, namespace=metrics.namespace) as metric:
        metric.add_dimension(name="end_reason", value=reason)
    metrics.add_metric(name="SecondsUsed", unit=MetricUnit.Seconds, value=seconds_used)


def count_rejection(reason: str) -> None:
    """``Rejections`` of creates by a limit or the kill switch, with the problem type as a dimension."""
    with single_metric(name="Rejections", unit=MetricUnit.Count, value=1, namespace=metrics.namespace) as metric:
        metric.add_dimension(name="reason", value=reason)


def count_upstream_failure(upstream: Upstream) -> None:
    """UpstreamFailures, with the upstream as a dimension (its own metric blob)."""
    with single_metric(name="UpstreamFailures", unit=MetricUnit.Count, value=1, namespace=metrics.namespace) as metric:
        metric.add_dimension(name="upstream", value=upstream)
