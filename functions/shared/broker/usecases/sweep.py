"""The scheduled sweep: end every session that outlived its budget or was left behind.

It queries the sparse sweep index (never scans), claims each due session with a conditional
update (so two overlapping runs never both act on one), ends it with bounded concurrency, and
stops taking new work before its own timeout; what is left waits for the next run.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from broker.config import Settings
from broker.errors import DependencyUnavailableError
from broker.models import CleanupSummary, Session, Status
from broker.observability import count, logger
from broker.store import SessionStore
from broker.timing import Clock, Deadline
from broker.usecases.ending import SessionEnder, due_reason


@dataclass
class Sweeper:
    """Ends due sessions. ``clock`` returns epoch seconds."""

    settings: Settings
    store: SessionStore
    ender: SessionEnder
    clock: Clock = time.time

    def sweep(self, deadline: Deadline) -> CleanupSummary:
        """One run: end what is due, ``cleanup_concurrency`` at a time, until done or until the
        deadline leaves less than one upstream call's worth of time (``SessionEnder.end_many``).

        Returns ``{examined, terminated, failed}`` (skipped sessions are examined but neither) and
        publishes them as metrics, with ``SessionsOpen`` after the run.
        Per-session failures are counted, not raised; raises ``DependencyUnavailableError`` only
        when the sweep index itself cannot be read.
        """
        ended = self.ender.end_many(self._due(int(self.clock())), lambda s: due_reason(s, self.clock()), deadline)
        summary = CleanupSummary(examined=ended.examined, terminated=ended.ended, failed=ended.failed)
        count("CleanupExamined", summary.examined)
        count("CleanupTerminated", summary.terminated)
        count("CleanupFailed", summary.failed)
        logger.info("cleanup finished", extra=summary.model_dump())
        self._count_open()
        return summary

    def _count_open(self) -> None:
        """Publish ``SessionsOpen``: the broker-wide count of open sessions after this run (the
        dashboard's "active sessions"; one read of the counter, best effort)."""
        try:
            count("SessionsOpen", self.store.open_count())
        except DependencyUnavailableError:
            logger.warning("the count of open sessions could not be read")

    def _due(self, now: int) -> Iterator[Session]:
        for status in (Status.ACTIVE, Status.TERMINATING, Status.PENDING):
            yield from self.store.due(status, now)
