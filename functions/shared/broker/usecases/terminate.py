"""End the caller's own session early: ``DELETE /sessions/{session_id}`` (owner proven by the
JWT ``sub`` or the session token) and ``POST /sessions/{session_id}/end`` (the page's beacon:
owner proven by the session token it sends in the body, with why it ends)."""

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

    def terminate(
        self,
        caller: Caller,
        session_id: str,
        deadline: Deadline,
        *,
        reason: EndReason = EndReason.OWNER,
        client_error: str | None = None,
        by_token: bool = False,
    ) -> None:
        """End the caller's session for ``reason`` (``owner`` or ``client_error``, with the web
        SDK's error code). Ownership is the deployment's rule, or the session token alone when
        ``by_token`` (a beacon carries no Authorization header). Idempotent: an ended session is
        a success.

        Raises ``SessionNotFoundError`` (not the caller's or unknown; no upstream call is made),
        ``SessionConflictError`` while the session is still being created, and the errors of
        ``SessionEnder.claim_and_end``.
        """
        jwt_mode = self.settings.jwt_mode and not by_token
        with deadline.applies():
            session = owned_session(self.store, caller, session_id, jwt_mode=jwt_mode)
            self._end(session, deadline, reason, client_error)

    def _end(self, first: Session, deadline: Deadline, reason: EndReason, client_error: str | None) -> None:
        session: Session | None = first
        for _ in range(2):
            if session is None or not session.status.is_open:
                return
            if session.status is Status.PENDING:
                raise SessionConflictError("the session is still being created; try again in a moment")
            if self.ender.claim_and_end(session, reason, deadline, client_error) is EndOutcome.ENDED:
                return
            session = self.store.get(session.session_id)  # another caller moved it: look again
        # Still contended: someone else holds the claim, and the sweep retries if they fail.
