"""End the caller's own session early: ``DELETE /sessions/{session_id}``."""

from __future__ import annotations

from dataclasses import dataclass

from broker.config import Settings
from broker.errors import SessionConflictError
from broker.models import Caller, EndReason, Session, Status
from broker.store import SessionStore
from broker.timing import Deadline
from broker.usecases.ending import EndOutcome, SessionEnder
from broker.usecases.read import owned_session


@dataclass
class SessionTerminator:
    """Ends sessions on their owner's request."""

    settings: Settings
    store: SessionStore
    ender: SessionEnder

    def terminate(self, caller: Caller, session_id: str, deadline: Deadline) -> None:
        """End the caller's session. Idempotent: an ended session is a success.

        Raises ``SessionNotFoundError`` (not the caller's or unknown; no upstream call is made),
        ``SessionConflictError`` while the session is still being created, and the errors of
        ``SessionEnder.claim_and_end``.
        """
        with deadline.applies():
            self._terminate(caller, session_id, deadline)

    def _terminate(self, caller: Caller, session_id: str, deadline: Deadline) -> None:
        session: Session | None = owned_session(self.store, caller, session_id, jwt_mode=self.settings.jwt_mode)
        for _ in range(2):
            if session is None or not session.status.is_open:
                return
            if session.status is Status.PENDING:
                raise SessionConflictError("the session is still being created; try again in a moment")
            if self.ender.claim_and_end(session, EndReason.OWNER, deadline) is EndOutcome.ENDED:
                return
            session = self.store.get(session.session_id)  # another caller moved it: look again
        # Still contended: someone else holds the claim, and the sweep retries if they fail.
