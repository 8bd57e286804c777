"""Scheduled sweep: end every session past its budget or left behind by a failure."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from broker import factory
from broker.cleanup import Sweeper
from broker.http import Deadline
from broker.observability import logger, metrics, tracer

SAFETY_SECONDS = 5.0  # stop taking new work this long before the function's own timeout


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext, sweeper: Sweeper | None = None) -> dict[str, int]:
    deadline = Deadline.within(context.get_remaining_time_in_millis() / 1000 - SAFETY_SECONDS)
    summary = (sweeper or factory.sweeper()).sweep(deadline)
    return summary.model_dump()
