"""Powertools logger, metrics and tracer, one of each per container.

The tracer never records method responses: they carry session tokens.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from broker.errors import Upstream

logger = Logger()
metrics = Metrics()
tracer = Tracer()


def count(name: str, value: int = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def count_upstream_failure(upstream: Upstream) -> None:
    """UpstreamFailures, with the upstream as a dimension (its own metric blob)."""
    with single_metric(name="UpstreamFailures", unit=MetricUnit.Count, value=1, namespace=metrics.namespace) as metric:
        metric.add_dimension(name="upstream", value=upstream)
