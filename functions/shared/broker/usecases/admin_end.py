"""The operator ends sessions: one (``POST /admin/sessions/{session_id}/end``) or, in bulk, every
active session of one owner or of everyone (``POST /admin/end-sessions``); each with end reason
``admin``, through the same claim-then-end step as every other end.

A bulk end works within the invocation's time budget and at most ``limit`` sessions per call,
``cleanup_concurrency`` at a time; it says ``more`` when it stopped early. Running it again goes
on where it stopped: ended sessions have left the index it reads, and one whose end failed stays
``terminating`` (the sweep retries it), so no session is ended twice or retried in a loop.
"""

from __future__ import annotations

from dataclasses import dataclass

from broker.errors import SessionConflictError, SessionNotFoundError
from broker.models import AdminEndResult, AdminSessionView, BulkEndRequest, BulkEndSummary, EndReason, Status
from broker.observability import logger
from broker.store import SessionStore
from broker.timing import Deadline
from broker.usecases.ending import EndOutcome, SessionEnder
from broker.usecases.read import canonical_session_id


@dataclass
class AdminEnder:
    """Ends sessions on the operator's request."""

    store: SessionStore
    ender: SessionEnder

    def end_one(self, session_id: str, deadline: Deadline, operator: str) -> AdminEndResult:
        """End one session, whoever owns it; idempotent (an ended session is ``already_ended``).

        Raises ``SessionNotFoundError``, ``SessionConflictError`` while it is still being created,
        and the errors of ``SessionEnder.claim_and_end`` (Avaturn's failure leaves it
        ``terminating``: the sweep finishes it).
        """
        canonical = canonical_session_id(session_id)
        with deadline.applies():
            session = self.store.get(canonical) if canonical else None
            if session is None:
                raise SessionNotFoundError("no such session")
            if session.status is Status.PENDING:
                raise SessionConflictError("the session is still being created; try again in a moment")
            ended = (
                session.status is Status.ACTIVE
                and self.ender.claim_and_end(session, EndReason.ADMIN, deadline) is EndOutcome.ENDED
            )
            now = self.store.get(session.session_id) or session
        outcome = "ended" if ended else "ending" if now.status.is_open else "already_ended"
        logger.info("operator end", extra={"session_id": session.session_id, "outcome": outcome, "operator": operator})
        return AdminEndResult(outcome=outcome, session=AdminSessionView.of(now))

    def end_all(self, request: BulkEndRequest, deadline: Deadline, operator: str) -> BulkEndSummary:
        """End the active sessions of ``request.owner`` (None: of every owner), at most
        ``request.limit`` of them, within ``deadline`` (see ``SessionEnder.end_many``).

        Raises ``DependencyUnavailableError`` when the index cannot be read.
        """
        sessions = self.store.with_status(Status.ACTIVE, request.owner)
        summary = self.ender.end_many(sessions, lambda _: EndReason.ADMIN, deadline, request.limit)
        logger.info(
            "operator bulk end",
            extra={"owner": request.owner, "operator": operator, **summary.model_dump()},
        )
        return summary
