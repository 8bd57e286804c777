"""Time for the use cases: a clock and the deadline of one invocation.

Two kinds of time, never mixed: wall-clock epoch seconds (``Clock``, what the registry stores:
``created_at``, ``expires_at``, ``due_at``) and monotonic seconds (``Deadline``, how long this
invocation may still work).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
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

    def portion(self, share: float) -> Deadline:
        """A deadline after ``share`` (0 to 1) of the time left: a step's own budget."""
        return Deadline.within(self.remaining() * share)

    def less(self, seconds: float) -> Deadline:
        """A deadline ``seconds`` earlier: what a step may use while keeping ``seconds`` in
        reserve for the steps after it."""
        return Deadline(self.ends_at - seconds)

    def fits(self, seconds: float) -> bool:
        """True if ``seconds`` more of work still ends before the deadline."""
        return self.remaining() > seconds

    @contextmanager
    def applies(self) -> Iterator[Deadline]:
        """Make this the current deadline (``Deadline.current()``) of the calling thread while
        the block runs: the adapters (HTTP transport, AWS clients) clip their waits to it."""
        token = _CURRENT.set(self)
        try:
            yield self
        finally:
            _CURRENT.reset(token)

    @staticmethod
    def current() -> Deadline | None:
        """The deadline the calling thread works under, if a use case set one."""
        return _CURRENT.get()

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left: the one method of Lambda's context object that Powertools
        idempotency reads to expire an in-progress record with the invocation."""
        return int(self.remaining() * 1000)


_CURRENT: ContextVar[Deadline | None] = ContextVar("broker_deadline", default=None)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter (a random wait between 0 and
    ``min(cap, base * 2**attempt)`` seconds), as in the AWS Architecture Blog's "Exponential
    Backoff And Jitter"; ``attempts`` is the most tries of one call, the first included."""

    base: float = 0.05
    cap: float = 1.0
    attempts: int = 4

    def wait(self, attempt: int) -> float:
        """Seconds to wait before try number ``attempt + 1`` (``attempt`` counts from 1)."""
        return random.uniform(0, min(self.cap, self.base * 2 ** (attempt - 1)))  # noqa: S311 - jitter, not crypto


def sleep_within(seconds: float, reserve: float = 0.0) -> bool:
    """Sleep ``seconds`` if that still leaves ``reserve`` seconds before the current deadline
    (always when there is none); False, without sleeping, when it would not fit."""
    deadline = Deadline.current()
    if deadline is not None and not deadline.fits(seconds + reserve):
        return False
    time.sleep(seconds)
    return True
