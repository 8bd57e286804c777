"""Scheduled sweep: end every session past its budget or left behind by a failure."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from broker import factory
from broker.observability import instrumented
from broker.timing import Deadline
from broker.usecases.sweep import Sweeper

SAFETY_SECONDS = 5.0  # stop taking new work this long before the function's own timeout


def sweep(sweeper: Sweeper, context: LambdaContext) -> dict[str, int]:
    """One sweep within the invocation's time, less ``SAFETY_SECONDS``: ``{examined, terminated, failed}``."""
    deadline = Deadline.within(context.get_remaining_time_in_millis() / 1000 - SAFETY_SECONDS)
    return sweeper.sweep(deadline).model_dump()


@instrumented()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    return sweep(factory.sweeper(), context)
