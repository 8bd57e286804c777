"""Powertools logger, metrics and tracer, one of each per container.

The tracer never records method responses: they carry session tokens.
"""

from __future__ import annotations

import logging
import os

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from broker.errors import Upstream

SERVICE = os.getenv("POWERTOOLS_SERVICE_NAME") or "avaturn-session-broker"
NAMESPACE = os.getenv("POWERTOOLS_METRICS_NAMESPACE") or "AvaturnSessionBroker"

# Wire-level loggers of the SDKs print request and response bodies (secret values, tokens) at
# DEBUG. Keep them at INFO or above even when someone turns the root logger to DEBUG.
for _noisy in ("botocore", "boto3", "urllib3", "httpcore2", "httpx2", "openai"):
    logging.getLogger(_noisy).setLevel(logging.INFO)

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
tracer = Tracer(service=SERVICE)


def count(name: str, value: int = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def count_upstream_failure(upstream: Upstream) -> None:
    """UpstreamFailures, with the upstream as a dimension (its own metric blob)."""
    with single_metric(name="UpstreamFailures", unit=MetricUnit.Count, value=1, namespace=metrics.namespace) as metric:
        metric.add_dimension(name="upstream", value=upstream)
