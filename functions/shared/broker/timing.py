"""Time for the use cases: a clock and the deadline of one invocation.

Two kinds of time, never mixed: wall-clock epoch seconds (``Clock``, what the registry stores:
``created_at``, ``expires_at``, ``due_at``) and monotonic seconds (``Deadline``, how long this
invocation may still work).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]
"""A zero-argument callable returning the current time in epoch seconds (``time.time``)."""


@dataclass(frozen=True, slots=True)
class Deadline:
    """The point in monotonic time by which one invocation must have answered.

    Every upstream call and registry call is clipped to ``remaining()``.
    """

    ends_at: float

    @classmethod
    def within(cls, seconds: float) -> Deadline:
        """A deadline ``seconds`` (may be fractional) from now."""
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.ends_at - time.monotonic())

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left: the one method of Lambda's context object that Powertools
        idempotency reads to expire an in-progress record with the invocation."""
        return int(self.remaining() * 1000)
