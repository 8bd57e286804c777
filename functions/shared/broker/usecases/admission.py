"""Admission of a new session: the kill switch and the spend limits.

Before a create spends anything upstream, ``Admission.admit`` records the pending session and
takes, in one registry transaction, what it will use: one of the owner's slots
(``MAX_ACTIVE_SESSIONS_PER_OWNER``), one broker-wide slot (``MAX_ACTIVE_SESSIONS_TOTAL``), one of
the owner's creates of this minute (``MAX_CREATES_PER_OWNER_PER_MINUTE``) and its seconds of the
owner's UTC-day budget (``MAX_SESSION_SECONDS_PER_OWNER_PER_DAY``: its max_duration, clamped to
what is left, at least 60 s). A session that is due (its lease lapsed, or past ``expires_at``)
no longer counts: when a slot is refused, admission ends the due sessions holding it and tries
again. Every refusal says how long to wait for real: until the first slot frees, the next
minute, or the next UTC midnight.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from broker.config import EngineName, Settings
from broker.errors import (
    AtCapacityError,
    BrokerError,
    BudgetExhaustedError,
    CapReachedError,
    CreatesPausedError,
    LimitError,
    RateLimitedError,
)
from broker.models import Session, Status
from broker.observability import count, logger
from broker.store import Limit, Limits, ReservationRefusedError, SessionStore, utc_day
from broker.timing import Clock, Deadline
from broker.usecases.ending import EndOutcome, SessionEnder, due_reason

MIN_BUDGET_SECONDS = 60
"""The shortest session a budget admits (Avaturn's minimum ``max_duration``)."""
ATTEMPTS = 4
"""Reservations tried per create: a refusal by the budget re-reads what is left, a refusal by a
slot frees the due sessions holding it once."""
FREE_AT_MOST = 5
"""Due sessions of other owners that one create ends to free a broker-wide slot."""
DAY = 86400


def budget_grant(limit: int, used: int, wanted: int) -> int | None:
    """Seconds a new session may reserve from a daily budget of ``limit`` seconds of which
    ``used`` are spent: ``wanted`` (its max_duration), clamped to what is left; None when less
    than ``MIN_BUDGET_SECONDS`` is left."""
    left = limit - used
    return None if left < MIN_BUDGET_SECONDS else min(wanted, left)


@dataclass
class Admission:
    """Admits new sessions. ``creates_paused`` returns the operator's pause reason (None: not
    paused); ``clock`` returns epoch seconds."""

    settings: Settings
    store: SessionStore
    ender: SessionEnder
    creates_paused: Callable[[], str | None] = lambda: None
    clock: Clock = time.time

    def limits(self) -> Limits:
        """The limits in force (0 = off)."""
        s = self.settings
        return Limits(
            owner=s.max_active_sessions_per_owner,
            rate=s.max_creates_per_owner_per_minute,
            total=s.max_active_sessions_total,
            budget=s.max_session_seconds_per_owner_per_day,
        )

    def admit(
        self,
        owner: str,
        engine: EngineName,
        avatar_id: str | None,
        deadline: Deadline,
        *,
        profile: str,
        max_duration: int,
    ) -> Session:
        """The pending session of ``profile``, recorded with everything it holds; it lasts its
        profile's ``max_duration`` seconds, or less when the owner's budget has less left (then
        ``expires_at - created_at`` is the clamped value, which Avaturn gets too).

        Raises ``CreatesPausedError``, ``BudgetExhaustedError``, ``RateLimitedError``,
        ``CapReachedError`` or ``AtCapacityError`` (each with ``limit``, ``used`` and
        ``retry_after``), and ``DependencyUnavailableError``.
        """
        if self.creates_paused() is not None:
            raise CreatesPausedError("new sessions are paused by the operator; try again later")
        limits = self.limits()
        freed: set[Limit] = set()
        for _ in range(ATTEMPTS):
            now = int(self.clock())
            session = self._pending(owner, engine, avatar_id, now, limits, profile=profile, wanted=max_duration)
            try:
                self.store.reserve(session, limits, now)
            except ReservationRefusedError as refused:
                if refused.limit is Limit.BUDGET:
                    continue  # another create spent it first: read what is left again
                if refused.limit in (Limit.OWNER, Limit.TOTAL) and refused.limit not in freed:
                    freed.add(refused.limit)
                    if self._free_due(owner if refused.limit is Limit.OWNER else None, now, deadline):
                        continue
                raise self._refusal(refused.limit, owner, now) from None
            count("SecondsReserved", session.expires_at - now)
            return session
        raise self._refusal(Limit.BUDGET, owner, int(self.clock()))

    def _pending(
        self,
        owner: str,
        engine: EngineName,
        avatar_id: str | None,
        now: int,
        limits: Limits,
        *,
        profile: str,
        wanted: int,
    ) -> Session:
        s = self.settings
        seconds, day = wanted, None
        if limits.budget:
            day = utc_day(now)
            used = self.store.budget_used(owner, day)
            grant = budget_grant(limits.budget, used, seconds)
            if grant is None:
                raise self._budget_refusal(limits.budget, used, now)
            seconds = grant
        return Session(
            session_id=str(uuid.uuid4()),
            owner=owner,
            engine=engine,
            avatar_id=avatar_id,
            status=Status.PENDING,
            created_at=now,
            expires_at=now + seconds,
            due_at=now + s.cleanup_grace_seconds,
            lease_expires_at=now + s.session_lease_seconds if s.session_lease_seconds else None,
            budget_day=day,
            reserved_seconds=seconds if day else None,
            counted_total=True,
            profile=profile,
        )

    def _free_due(self, owner: str | None, now: int, deadline: Deadline) -> bool:
        """End the due sessions holding the owner's slots (``owner``) or, for the broker-wide cap,
        up to ``FREE_AT_MOST`` due active sessions of anyone. True if any slot was freed."""
        if owner is not None:
            due = [x for x in self.store.open_sessions(owner) if x.due_at is not None and x.due_at <= now]
        else:
            due = list(self.store.due(Status.ACTIVE, now, page_size=FREE_AT_MOST))[:FREE_AT_MOST]
        freed = False
        for session in due:
            try:
                freed |= self.ender.claim_and_end(session, due_reason(session, now), deadline) is EndOutcome.ENDED
            except BrokerError:
                logger.warning(
                    "a due session could not be ended on admission", extra={"session_id": session.session_id}
                )
        return freed

    def _refusal(self, limit: Limit, owner: str, now: int) -> LimitError:
        s = self.settings
        if limit is Limit.BUDGET:
            budget = s.max_session_seconds_per_owner_per_day
            return self._budget_refusal(budget, self.store.budget_used(owner, utc_day(now)), now)
        if limit is Limit.RATE:
            cap = s.max_creates_per_owner_per_minute
            return RateLimitedError(
                f"at most {cap} creates per minute",
                limit=cap,
                used=self.store.creates_this_minute(owner, now),
                retry_after=60 - now % 60,
            )
        if limit is Limit.OWNER:
            cap = s.max_active_sessions_per_owner
            first = next(self.store.open_sessions(owner, limit=1), None)
            return CapReachedError(
                f"at most {cap} active sessions per owner",
                limit=cap,
                used=self.store.open_count(owner),
                retry_after=self._until(first, now),
            )
        total = s.max_active_sessions_total
        return AtCapacityError(
            "the broker is at capacity; try again later",
            limit=total,
            used=self.store.open_count(),
            retry_after=self._until(self.store.first_due(), now),
        )

    def _until(self, session: Session | None, now: int) -> int:
        """Seconds until ``session`` stops counting (its ``due_at``)."""
        if session is None or session.due_at is None:
            return 1  # it freed while we looked
        return session.due_at - now

    @staticmethod
    def _budget_refusal(budget: int, used: int, now: int) -> BudgetExhaustedError:
        return BudgetExhaustedError(
            f"the daily budget of {budget} session seconds is spent",
            limit=budget,
            used=min(used, budget),
            retry_after=DAY - now % DAY,
        )
