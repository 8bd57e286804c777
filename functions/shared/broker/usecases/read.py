"""Read the caller's sessions: ``GET /sessions/{session_id}`` (owner only) and, in JWT mode,
``GET /sessions?status=active`` (the caller's open sessions, never a token)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from broker.config import Settings
from broker.errors import SessionNotFoundError, UnauthenticatedError
from broker.models import Caller, Session, SessionView
from broker.store import SessionStore
from broker.timing import Deadline

SESSION_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}")
"""The broker's session ids: UUID version 4 (RFC 9562, section 5.4) in the standard hyphenated
form, whose hex digits are case-insensitive on input (section 4)."""


def canonical_session_id(value: str) -> str | None:
    """``value`` as the broker stores session ids (lowercase), or None if it is not one."""
    return value.lower() if SESSION_ID.fullmatch(value) else None


@dataclass
class SessionReader:
    """Reads the caller's own sessions."""

    settings: Settings
    store: SessionStore

    def get(self, caller: Caller, session_id: str, deadline: Deadline) -> SessionView:
        """The public view of the caller's session, read within ``deadline``.

        Raises ``SessionNotFoundError`` when it does not exist or is not the caller's, and
        ``DependencyUnavailableError`` when the registry fails.
        """
        with deadline.applies():
            return SessionView.of(owned_session(self.store, caller, session_id, jwt_mode=self.settings.jwt_mode))

    def open_sessions(self, caller: Caller, deadline: Deadline, limit: int = 100) -> list[SessionView]:
        """The caller's open sessions (pending, active, terminating), the first to end first, at
        most ``limit``. Only in JWT mode: an anonymous owner is an address that many people may
        share, so listing by it would show strangers' sessions.

        Raises ``UnauthenticatedError`` in anonymous mode and ``DependencyUnavailableError``.
        """
        if not self.settings.jwt_mode:
            raise UnauthenticatedError("listing sessions needs a bearer token (JWT mode)")
        with deadline.applies():
            return [SessionView.of(x) for x in self.store.open_sessions(caller.owner, limit=limit)]


def owned_session(store: SessionStore, caller: Caller, session_id: str, *, jwt_mode: bool) -> Session:
    """The session if ``caller`` owns it (JWT ``sub``, or in anonymous mode the session token).

    Raises ``SessionNotFoundError`` otherwise, with no hint whether the session exists, and
    without a registry read for an id that cannot be one of ours.
    """
    canonical = canonical_session_id(session_id)
    session = store.get(canonical) if canonical else None
    if session is None or not session.owned_by(caller, jwt_mode=jwt_mode):
        raise SessionNotFoundError("no such session")
    return session
