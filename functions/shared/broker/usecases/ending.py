"""The one way an open session ends: claim it, end it upstream, finish it in the registry.

Terminate (the owner) and the sweep (the schedule) both end sessions through ``SessionEnder``,
so the claim (a conditional update that makes the caller the only one acting on the session for
``cleanup_grace_seconds``) and the upstream DELETE are written once.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass

from broker.clients.avaturn import AvaturnClient
from broker.config import Settings
from broker.errors import UpstreamError, UpstreamGoneError
from broker.models import EndReason, Session, Status
from broker.observability import count, logger
from broker.store import SessionStore
from broker.timing import Clock, Deadline


class EndOutcome(enum.StrEnum):
    """What one attempt to end a session did."""

    ENDED = "ended"  # this caller finished it
    SKIPPED = "skipped"  # someone else holds it or already finished it


@dataclass
class SessionEnder:
    """Claims and ends open sessions. ``clock`` returns epoch seconds."""

    settings: Settings
    store: SessionStore
    avaturn: AvaturnClient
    clock: Clock = time.time

    def claim_and_end(self, session: Session, reason: EndReason, deadline: Deadline) -> EndOutcome:
        """End ``session`` (as last read) for ``reason``, unless another caller claims it first.

        Raises ``UpstreamError`` / ``UpstreamTimeoutError`` when Avaturn fails (the session stays
        ``terminating`` and the sweep retries it after the grace period) and
        ``DependencyUnavailableError`` when the registry fails.
        """
        claimed = self.store.claim(
            session, now=int(self.clock()), grace=self.settings.cleanup_grace_seconds, reason=reason
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
        finished = self.store.finish(claimed, status=status, reason=reason, now=int(self.clock()))
        if finished:
            count("SessionsTerminated")
            logger.info("session ended", extra={"session_id": claimed.session_id, "end_reason": reason.value})
        return finished
