"""The scheduled sweep: end every session that outlived its budget or was left behind.

It queries the sparse sweep index (never scans), claims each due session with a conditional
update (so two overlapping runs never both act on one), ends it with bounded concurrency, and
stops taking new work before its own timeout; what is left waits for the next run.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Literal

from broker.config import Settings
from broker.errors import BrokerError, UpstreamError
from broker.models import CleanupSummary, Session, Status
from broker.observability import count, count_upstream_failure, logger
from broker.store import SessionStore
from broker.timing import Clock, Deadline
from broker.usecases.ending import EndOutcome, SessionEnder, due_reason

Outcome = Literal["terminated", "failed", "skipped"]


@dataclass
class Sweeper:
    """Ends due sessions. ``clock`` returns epoch seconds."""

    settings: Settings
    store: SessionStore
    ender: SessionEnder
    clock: Clock = time.time

    def sweep(self, deadline: Deadline) -> CleanupSummary:
        """One run: end what is due, ``cleanup_concurrency`` at a time, until done or until the
        deadline leaves less than one upstream call's worth of time.

        Returns ``{examined, terminated, failed}`` (skipped sessions are examined but neither).
        Per-session failures are counted, not raised; raises ``DependencyUnavailableError`` only
        when the sweep index itself cannot be read.
        """
        summary = CleanupSummary()
        reserve = self.settings.upstream_connect_timeout + self.settings.upstream_read_timeout + 2
        workers = self.settings.cleanup_concurrency
        in_flight: set[Future[Outcome]] = set()
        with deadline.applies(), ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sweep") as pool:
            for session in self._due(int(self.clock())):
                if deadline.remaining() < reserve:
                    logger.warning("time budget spent; the rest waits for the next run")
                    break
                summary.examined += 1
                in_flight.add(pool.submit(self._sweep_one, session, deadline))
                if len(in_flight) >= 2 * workers:
                    done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                    self._tally(summary, done)
            self._tally(summary, wait(in_flight).done)
        count("CleanupExamined", summary.examined)
        count("CleanupTerminated", summary.terminated)
        count("CleanupFailed", summary.failed)
        logger.info("cleanup finished", extra=summary.model_dump())
        return summary

    def _due(self, now: int) -> Iterator[Session]:
        for status in (Status.ACTIVE, Status.TERMINATING, Status.PENDING):
            yield from self.store.due(status, now)

    def _sweep_one(self, session: Session, deadline: Deadline) -> Outcome:
        try:
            with deadline.applies():  # this worker thread's own context
                outcome = self.ender.claim_and_end(session, due_reason(session, self.clock()), deadline)
        except UpstreamError as exc:
            count_upstream_failure(exc.upstream)
            return "failed"
        except BrokerError:
            logger.exception("cleanup of one session failed", extra={"session_id": session.session_id})
            return "failed"
        return "terminated" if outcome is EndOutcome.ENDED else "skipped"

    @staticmethod
    def _tally(summary: CleanupSummary, done: set[Future[Outcome]]) -> None:
        for future in done:
            outcome = future.result()
            if outcome == "terminated":
                summary.terminated += 1
            elif outcome == "failed":
                summary.failed += 1
