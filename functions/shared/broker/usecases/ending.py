"""The one way an open session ends: claim it, end it upstream, finish it in the registry.

Terminate (the owner, the page's beacon), the sweep (the schedule), a create that frees its
owner's due sessions, and the operator's bulk end all end sessions through ``SessionEnder``, so
the claim (a conditional update that makes the caller the only one acting on the session for
``cleanup_grace_seconds``), the upstream DELETE, the registry's finish (which gives back every
slot and the unused budget) and the ``Session Ended`` event are written once.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from broker.clients.avaturn import AvaturnClient
from broker.config import Settings
from broker.errors import BrokerError, UpstreamError, UpstreamGoneError
from broker.events import SessionEvents
from broker.models import BulkEndSummary, EndReason, Session, Status
from broker.observability import count, count_end, count_upstream_failure, logger
from broker.store import SessionStore
from broker.timing import Clock, Deadline


class EndOutcome(enum.StrEnum):
    """What one attempt to end a session did."""

    ENDED = "ended"  # this caller finished it
    SKIPPED = "skipped"  # someone else holds it or already finished it
    FAILED = "failed"  # Avaturn or the registry failed: it stays claimed, and the sweep retries it


def due_reason(session: Session, now: float) -> EndReason:
    """Why a session whose ``due_at`` has passed is ended: ``abandoned`` (its lease lapsed
    before ``expires_at``), ``expired``, ``compensation`` (a create cut off part-way) or
    ``stale`` (an end cut off part-way; a reason it already had is kept)."""
    if session.status is Status.ACTIVE:
        lapsed_early = session.lease_expires_at is not None and session.lease_expires_at < session.expires_at
        return EndReason.ABANDONED if lapsed_early and session.lease_lapsed(now) else EndReason.EXPIRED
    if session.status is Status.PENDING:
        return EndReason.COMPENSATION
    return EndReason.STALE


@dataclass
class SessionEnder:
    """Claims and ends open sessions. ``clock`` returns epoch seconds."""

    settings: Settings
    store: SessionStore
    avaturn: AvaturnClient
    events: SessionEvents
    clock: Clock = time.time

    def claim_and_end(
        self, session: Session, reason: EndReason, deadline: Deadline, client_error: str | None = None
    ) -> EndOutcome:
        """End ``session`` (as last read) for ``reason`` (with the SDK's ``client_error`` code,
        if the page reported one), unless another caller claims it first.

        Raises ``UpstreamError`` / ``UpstreamTimeoutError`` when Avaturn fails (the session stays
        ``terminating`` and the sweep retries it after the grace period) and
        ``DependencyUnavailableError`` when the registry fails.
        """
        claimed = self.store.claim(
            session,
            now=int(self.clock()),
            grace=self.settings.cleanup_grace_seconds,
            reason=reason,
            client_error=client_error,
        )
        if claimed is None:
            return EndOutcome.SKIPPED
        return EndOutcome.ENDED if self.end(claimed, deadline) else EndOutcome.SKIPPED

    def end(self, claimed: Session, deadline: Deadline) -> bool:
        """Finish a session this caller has claimed (status ``terminating``); True if this call
        finished it. Errors as in ``claim_and_end``.

        A session whose ``expires_at`` plus the grace period has passed is finished even when
        Avaturn cannot confirm the DELETE (end reason ``stale``): Avaturn ends it by itself at
        ``max_duration``, and the owner's slot must not be held forever.
        """
        reason = claimed.pending_end_reason or EndReason.OWNER
        status = Status.TERMINATED
        if claimed.avaturn_session_id is None:  # never reached Avaturn: nothing to end upstream
            status, reason = Status.FAILED, EndReason.COMPENSATION
        else:
            try:
                self.avaturn.delete_session(claimed.avaturn_session_id, deadline=deadline)
            except UpstreamGoneError:
                # Ended already (by itself, or by an earlier attempt that timed out): done too.
                reason = reason if reason.stands_when_gone else EndReason.UPSTREAM_GONE
            except UpstreamError:
                if self.clock() < claimed.expires_at + self.settings.cleanup_grace_seconds:
                    raise
                reason = EndReason.STALE
                count("SessionsEndedUnconfirmed")
                logger.warning(
                    "Avaturn did not confirm the end of a session past max_duration; finished anyway",
                    extra={"session_id": claimed.session_id},
                )
        return self.finish(claimed, status, reason)

    def finish(self, session: Session, status: Status, reason: EndReason) -> bool:
        """Close ``session`` in the registry (as it was read), count it and announce it; False
        if someone else finished it first. Raises ``DependencyUnavailableError``."""
        now = int(self.clock())
        if not self.store.finish(session, status=status, reason=reason, now=now):
            return False
        used = session.seconds_used(now)
        count_end(reason.value, used)
        logger.info("session ended", extra={"session_id": session.session_id, "end_reason": reason.value})
        self.events.ended(session, reason, now, used)
        return True

    def end_many(
        self,
        sessions: Iterable[Session],
        reason_of: Callable[[Session], EndReason],
        deadline: Deadline,
        limit: int | None = None,
    ) -> BulkEndSummary:
        """Claim and end ``sessions`` (each for ``reason_of(session)``), ``cleanup_concurrency``
        at a time, until the list ends, ``limit`` sessions were examined, or the deadline leaves
        less than one upstream call's worth of time (``more`` is then True: what is left waits
        for the next run).

        Per-session failures are counted, not raised; the errors of the ``sessions`` iterable
        (the registry's) are raised.
        """
        summary = BulkEndSummary()
        reserve = self.settings.upstream_connect_timeout + self.settings.upstream_read_timeout + 2
        workers = self.settings.cleanup_concurrency
        in_flight: set[Future[EndOutcome]] = set()
        with deadline.applies(), ThreadPoolExecutor(max_workers=workers, thread_name_prefix="end") as pool:
            for session in sessions:
                if deadline.remaining() < reserve or (limit is not None and summary.examined >= limit):
                    summary.more = True
                    logger.info("bulk end stopped; the rest waits for the next run", extra={"limit": limit})
                    break
                summary.examined += 1
                in_flight.add(pool.submit(self._end_one, session, reason_of(session), deadline))
                # Never more than the pool runs: an end queued behind others could start after the
                # reserve is spent, and its upstream call would be cut short by the deadline.
                if len(in_flight) >= workers:
                    done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                    _tally(summary, done)
            _tally(summary, wait(in_flight).done)
        return summary

    def _end_one(self, session: Session, reason: EndReason, deadline: Deadline) -> EndOutcome:
        try:
            with deadline.applies():  # this worker thread's own context
                return self.claim_and_end(session, reason, deadline)
        except UpstreamError as exc:
            count_upstream_failure(exc.upstream)
        except BrokerError:
            logger.exception("ending one session failed", extra={"session_id": session.session_id})
        return EndOutcome.FAILED


def _tally(summary: BulkEndSummary, done: set[Future[EndOutcome]]) -> None:
    for future in done:
        outcome = future.result()
        if outcome is EndOutcome.ENDED:
            summary.ended += 1
        elif outcome is EndOutcome.FAILED:
            summary.failed += 1
        else:
            summary.skipped += 1
