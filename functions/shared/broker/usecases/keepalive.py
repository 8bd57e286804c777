"""Renew a session's lease: ``POST /sessions/{session_id}/keepalive``.

With ``SESSION_LEASE_SECONDS`` on, a session counts against its owner's limits only while the
page renews its lease; a lapsed lease is ended by the owner's next create or by the sweep (end
reason ``abandoned``). With leases off, a keepalive answers the session's ``expires_at``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from broker.config import Settings
from broker.errors import SessionConflictError, SessionEndedError
from broker.models import Caller, Status
from broker.store import SessionStore
from broker.timing import Clock, Deadline
from broker.usecases.read import owned_session


@dataclass
class LeaseKeeper:
    """Renews leases. ``clock`` returns epoch seconds."""

    settings: Settings
    store: SessionStore
    clock: Clock = time.time

    def keepalive(self, caller: Caller, session_id: str, deadline: Deadline) -> int:
        """Renew the caller's session's lease; returns its new end (epoch seconds, never past
        ``expires_at``).

        Raises ``SessionNotFoundError`` (as GET), ``SessionEndedError`` once the session has
        ended or is ending, ``SessionConflictError`` while it is still being created, and
        ``DependencyUnavailableError``.
        """
        with deadline.applies():
            session = owned_session(self.store, caller, session_id, jwt_mode=self.settings.jwt_mode)
            if session.status is Status.PENDING:
                raise SessionConflictError("the session is still being created; try again in a moment")
            if session.status is not Status.ACTIVE:
                raise SessionEndedError("the session has ended")
            lease = self.settings.session_lease_seconds
            if not lease:
                return session.expires_at
            until = min(int(self.clock()) + lease, session.expires_at)
            if self.store.renew_lease(session, until) is None:
                raise SessionEndedError("the session has ended")
            return until
