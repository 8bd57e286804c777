"""Domain models: what a client may ask for, what the registry holds, what the API returns."""

from __future__ import annotations

import enum
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from broker.config import EngineName


def iso(epoch: int | None) -> str | None:
    """Epoch seconds as ISO-8601 UTC (``2026-01-01T00:00:00Z``)."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def token_digest(token: str) -> str:
    """The hex SHA-256 of a session token: all the registry keeps of it."""
    return hashlib.sha256(_utf8(token)).hexdigest()


def same_text(a: str, b: str) -> bool:
    """Constant-time equality of two strings, whatever their characters (``hmac.compare_digest``
    raises ``TypeError`` for a ``str`` outside ASCII, so it compares their UTF-8 bytes)."""
    return hmac.compare_digest(_utf8(a), _utf8(b))


def _utf8(text: str) -> bytes:
    # surrogatepass: a lone surrogate (JSON can carry one as an escape) encodes instead of raising
    return text.encode("utf-8", "surrogatepass")


class CreateSessionRequest(BaseModel):
    """Body of POST /sessions: a ``profile`` (its ID), or the legacy ``engine`` and ``avatar_id``
    applied to the default profile. Everything else about a conversation is server configuration."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    profile: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    engine: EngineName | None = None
    avatar_id: str | None = Field(None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")


class EndSessionRequest(BaseModel):
    """Body of POST /sessions/{session_id}/end (the page's beacon): the session token proves
    ownership; ``reason`` says why (``page_closed``, ``user``, or ``client_error`` with the web
    SDK's error code in ``error``, e.g. ``limits_exceeded``)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    token: str = Field(min_length=1, max_length=8192)
    reason: Literal["page_closed", "client_error", "user"] = "page_closed"
    error: str | None = Field(None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")


class Status(enum.StrEnum):
    """A session's lifecycle: ``pending`` (slot taken, Avaturn not yet answered) → ``active`` →
    ``terminating`` (claimed by an ender) → ``terminated``; ``failed`` when it never started or
    was left behind."""

    PENDING = "pending"
    ACTIVE = "active"
    TERMINATING = "terminating"
    TERMINATED = "terminated"
    FAILED = "failed"

    @property
    def is_open(self) -> bool:
        """Open sessions count against the owner's cap and are watched by the sweep."""
        return self in (Status.PENDING, Status.ACTIVE, Status.TERMINATING)


class EndReason(enum.StrEnum):
    """Why a session ended: one enum for the registry, the API and the ``Session Ended`` events.

    ``owner``: its owner ended it; ``client_error``: the page reported an SDK error;
    ``abandoned``: its lease lapsed; ``expired``: it reached ``max_duration``; ``upstream_gone``:
    Avaturn had already ended it; ``compensation``: a create failed part-way and the broker
    undid it; ``admin``: an operator ended it; ``budget``: the owner's budget ran out;
    ``stale``: Avaturn could not confirm the end, and ``max_duration`` plus the grace period
    have passed, so it has ended upstream by itself. Values written by v1 (``client_request``,
    ``orphaned``, ``create_failed``) still read, as ``owner``, ``stale`` and ``compensation``.
    """

    OWNER = "owner"
    CLIENT_ERROR = "client_error"
    ABANDONED = "abandoned"
    EXPIRED = "expired"
    UPSTREAM_GONE = "upstream_gone"
    COMPENSATION = "compensation"
    ADMIN = "admin"
    BUDGET = "budget"
    STALE = "stale"

    @classmethod
    def _missing_(cls, value: object) -> EndReason | None:
        return _LEGACY_END_REASONS.get(str(value))

    @property
    def stands_when_gone(self) -> bool:
        """True when this stays the reason even if Avaturn had already ended the session
        (someone asked for the end, or the planned ``max_duration`` was reached)."""
        return self in (EndReason.OWNER, EndReason.CLIENT_ERROR, EndReason.ADMIN, EndReason.EXPIRED)


_LEGACY_END_REASONS = {
    "client_request": EndReason.OWNER,
    "orphaned": EndReason.STALE,
    "create_failed": EndReason.COMPENSATION,
}


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: ``owner`` is the JWT ``sub`` or, in anonymous mode, the source IP."""

    owner: str
    session_token: str | None = None


@dataclass(frozen=True, slots=True)
class Session:
    """One row of the registry."""

    session_id: str
    owner: str
    engine: EngineName
    avatar_id: str | None
    status: Status
    created_at: int
    expires_at: int
    due_at: int | None = None
    avaturn_session_id: str | None = None
    token_sha256: str | None = None
    terminated_at: int | None = None
    end_reason: EndReason | None = None
    pending_end_reason: EndReason | None = None
    lease_expires_at: int | None = None
    """Epoch seconds the lease ends (``SESSION_LEASE_SECONDS`` on); None: no lease."""
    budget_day: str | None = None
    """UTC day (``YYYY-MM-DD``) whose budget this session's seconds were reserved from."""
    reserved_seconds: int | None = None
    """Seconds reserved from ``budget_day``'s budget (its max_duration); None: no budget."""
    counted_total: bool = False
    """True when the session holds one of the broker-wide slots (v1 rows do not)."""
    client_error: str | None = None
    """The web SDK's error code a ``client_error`` end reported."""
    profile: str | None = None
    """The profile the session was created from."""

    def lease_lapsed(self, now: float) -> bool:
        """True when the session has a lease and it ended before ``now`` (epoch seconds)."""
        return self.lease_expires_at is not None and self.lease_expires_at <= now

    def seconds_used(self, now: int) -> int:
        """Seconds this session ran: from creation to ``now``, within its max_duration; 0 when
        it never reached Avaturn."""
        if self.avaturn_session_id is None:
            return 0
        return max(0, min(now, self.expires_at) - self.created_at)

    def owned_by(self, caller: Caller, *, jwt_mode: bool) -> bool:
        """JWT mode: the caller's ``sub`` is the owner. Anonymous mode: the caller holds the token."""
        if jwt_mode:
            return same_text(caller.owner, self.owner)
        if caller.session_token is None or self.token_sha256 is None:
            return False
        return same_text(token_digest(caller.session_token), self.token_sha256)


class CreatedSession(BaseModel):
    """The 201 body of POST /sessions: the token is the only secret the browser receives;
    ``expires_at`` is ISO-8601 UTC; ``profile`` is the profile's ID; ``api_host`` is the Avaturn
    host the web SDK must use as ``apiHost`` (``new AvaturnHead(el, {sessionToken, apiHost})``)."""

    session_id: str
    token: str
    engine: EngineName
    avatar_id: str | None
    expires_at: str
    profile: str
    api_host: str


class SessionView(BaseModel):
    """The body of GET /sessions/{session_id}: never the token. Times are ISO-8601 UTC."""

    session_id: str
    status: Status
    engine: EngineName
    avatar_id: str | None
    created_at: str
    expires_at: str
    terminated_at: str | None = None
    end_reason: EndReason | None = None
    lease_expires_at: str | None = None
    client_error: str | None = None
    profile: str | None = None

    @classmethod
    def of(cls, session: Session) -> SessionView:
        """The public view of a registry row."""
        return cls(
            session_id=session.session_id,
            status=session.status,
            engine=session.engine,
            avatar_id=session.avatar_id,
            created_at=iso(session.created_at) or "",
            expires_at=iso(session.expires_at) or "",
            terminated_at=iso(session.terminated_at),
            end_reason=session.end_reason,
            lease_expires_at=iso(session.lease_expires_at),
            client_error=session.client_error,
            profile=session.profile,
        )


class CleanupSummary(BaseModel):
    """What one sweep did: sessions ``examined``, ``terminated`` by it, and ``failed`` (left
    for the next run)."""

    examined: int = 0
    terminated: int = 0
    failed: int = 0


# -- the operator plane (routes under /admin/, authorized by IAM) ------------------------------

UsageGroup = Literal["owner", "engine", "profile", "day"]


class AdminSessionView(BaseModel):
    """A session as the operator sees it: its owner too, never its token (nor the token's hash).
    Times are ISO-8601 UTC."""

    session_id: str
    owner: str
    status: Status
    engine: EngineName
    profile: str | None = None
    avatar_id: str | None = None
    created_at: str
    expires_at: str
    lease_expires_at: str | None = None
    terminated_at: str | None = None
    end_reason: EndReason | None = None

    @classmethod
    def of(cls, session: Session) -> AdminSessionView:
        """The operator's view of a registry row."""
        return cls(
            session_id=session.session_id,
            owner=session.owner,
            status=session.status,
            engine=session.engine,
            profile=session.profile,
            avatar_id=session.avatar_id,
            created_at=iso(session.created_at) or "",
            expires_at=iso(session.expires_at) or "",
            lease_expires_at=iso(session.lease_expires_at),
            terminated_at=iso(session.terminated_at),
            end_reason=session.end_reason,
        )


class AdminListQuery(BaseModel):
    """Query of ``GET /admin/sessions``: open sessions of one ``status``, of one ``owner`` or of
    everyone, ``limit`` per page, from the ``cursor`` the previous page returned."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: Literal["pending", "active", "terminating"] = "active"
    owner: str | None = Field(None, min_length=1, max_length=256)
    limit: int = Field(100, ge=1, le=500)
    cursor: str | None = Field(None, min_length=1, max_length=1024)


class AdminSessionPage(BaseModel):
    """The body of ``GET /admin/sessions``: one page, and the ``cursor`` of the next (None:
    this was the last)."""

    sessions: list[AdminSessionView]
    cursor: str | None = None


class AdminEndResult(BaseModel):
    """The body of ``POST /admin/sessions/{session_id}/end``: ``ended`` (by this call),
    ``already_ended`` (it had ended before) or ``ending`` (another caller holds it; the sweep
    finishes it if they fail), and the session as it is now."""

    outcome: Literal["ended", "already_ended", "ending"]
    session: AdminSessionView


class BulkEndRequest(BaseModel):
    """The body of ``POST /admin/end-sessions``: the active sessions of ``owner`` (none: of
    every owner), at most ``limit`` of them in this call."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    owner: str | None = Field(None, min_length=1, max_length=256)
    limit: int | None = Field(None, ge=1, le=10000)


class BulkEndSummary(BaseModel):
    """What one bulk end did: sessions ``examined``, ``ended`` by it (end reason ``admin``),
    ``failed`` (Avaturn did not confirm: they stay ``terminating`` and the sweep retries them),
    ``skipped`` (another caller got there first); ``more`` when it stopped for its time budget
    or its ``limit`` before the end of the list: call again to go on."""

    examined: int = 0
    ended: int = 0
    failed: int = 0
    skipped: int = 0
    more: bool = False


class CreatesRequest(BaseModel):
    """The body of ``PUT /admin/creates``: pause (with a reason, for the log and for whoever
    asks) or resume new sessions."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    paused: bool
    reason: str | None = Field(None, min_length=1, max_length=256)


class CreatesState(BaseModel):
    """The body of ``GET|PUT /admin/creates``: the kill switch as stored (``updated_at``
    ISO-8601 UTC; None if it was never set)."""

    paused: bool
    reason: str | None = None
    updated_at: str | None = None


class UsageQuery(BaseModel):
    """Query of ``GET /admin/usage``: UTC days ``from`` to ``to`` (both included; default
    today), grouped by ``group_by``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    from_: str | None = Field(None, alias="from", pattern=r"^\d{4}-\d{2}-\d{2}$")
    to: str | None = Field(None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    group_by: UsageGroup = "owner"


class UsageTotals(BaseModel):
    """Sessions ended and seconds they used."""

    sessions: int = 0
    seconds: int = 0


class UsageRow(UsageTotals):
    """Sessions ended and seconds used, for one value (``key``) of the grouping."""

    key: str


class UsageReport(BaseModel):
    """The body of ``GET /admin/usage``: rows by ``group_by`` (days in order, the rest by
    seconds used, most first) and their ``total``; days are those the sessions were created."""

    from_: str = Field(serialization_alias="from")
    to: str
    group_by: UsageGroup
    rows: list[UsageRow]
    total: UsageTotals
