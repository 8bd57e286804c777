"""The session registry on DynamoDB: one table (partition key ``pk``), these kinds of item.

- ``SESSION#<id>``: a session. While it is open (pending, active, terminating) it carries
  ``due_at`` (epoch seconds it needs attention: for an active session the earlier of
  ``expires_at`` and its lease), which puts it in the sparse ``sweep-index`` (HASH ``status``,
  RANGE ``due_at``), and ``open_owner``, which puts it in the sparse ``owner-index`` (HASH
  ``open_owner``, RANGE ``due_at``). Nothing ever scans the table.
- ``OWNER#<owner>``: the owner's count of open sessions (``active``). Once it counts nothing it
  carries an ``expiration`` (DynamoDB TTL), which the next reservation removes.
- ``TOTAL#active``: the count of open sessions of every owner (rows written before v2 are not
  in it; a row says ``counted_total``).
- ``BUDGET#<owner>#<YYYY-MM-DD>``: the owner's session seconds reserved that UTC day (``used``),
  net of refunds. ``RATE#<owner>#<minute>``: the owner's creates in that clock minute.
- ``USAGE#<day>#<owner>#<engine>#<profile>``: sessions ended and seconds used, by the UTC day
  the sessions were created; in the sparse ``usage-index`` (HASH ``usage_day``, RANGE ``pk``).
- Powertools idempotency records (``create_session#<hash>``) and the operator's flags
  (``CONTROL#...``).

Every limit is a condition in the same transaction as the session row, so it is atomic; an end
gives back, in one transaction, the owner's slot, the broker-wide slot, the unused budget, and
adds the session to the usage aggregates. v1 rows (no ``open_owner``, ``counted_total`` or
``budget_day``) keep working: they count and refund only what they took.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from broker.errors import DependencyUnavailableError
from broker.models import EndReason, Session, Status
from broker.observability import count, logger

SWEEP_INDEX = "sweep-index"
OWNER_INDEX = "owner-index"
USAGE_INDEX = "usage-index"
SESSION_PREFIX = "SESSION#"
OWNER_PREFIX = "OWNER#"
TOTAL_KEY = {"pk": {"S": "TOTAL#active"}}
_ser = TypeSerializer()
_de = TypeDeserializer()


def _item(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in values.items() if v is not None}


def _key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}}


def session_key(session_id: str) -> dict[str, Any]:
    """The DynamoDB key of a session row: ``{"pk": {"S": "SESSION#<session_id>"}}``."""
    return _key(f"{SESSION_PREFIX}{session_id}")


def owner_key(owner: str) -> dict[str, Any]:
    """The DynamoDB key of an owner's counter item: ``{"pk": {"S": "OWNER#<owner>"}}``."""
    return _key(f"{OWNER_PREFIX}{owner}")


def budget_key(owner: str, day: str) -> dict[str, Any]:
    """The DynamoDB key of an owner's budget for one UTC day (``YYYY-MM-DD``)."""
    return _key(f"BUDGET#{owner}#{day}")


def rate_key(owner: str, minute: int) -> dict[str, Any]:
    """The DynamoDB key of an owner's create count in the minute starting at ``minute`` (epoch s)."""
    return _key(f"RATE#{owner}#{minute}")


def is_session_item(item: Mapping[str, Any]) -> bool:
    """True for a raw DynamoDB item that is a session row (not a counter or an idempotency
    record)."""
    return str(item.get("pk", {}).get("S", "")).startswith(SESSION_PREFIX)


def utc_day(epoch: int) -> str:
    """The UTC day (``YYYY-MM-DD``) of an epoch second."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d")


def _reason(value: Any) -> EndReason | None:
    """An end reason as stored; one this version does not know reads as None (a newer
    version's reason must not make a row unreadable)."""
    if value is None:
        return None
    try:
        return EndReason(value)
    except ValueError:
        logger.warning("unknown end reason in the registry", extra={"end_reason": str(value)[:64]})
        return None


def _to_session(raw: Mapping[str, Any]) -> Session:
    """Decode a session row. Raises ``UnreadableRowError`` when it lacks a field the broker
    needs or holds a value it cannot read (a status of a newer version, a damaged item)."""
    try:
        return _decode(raw)
    except (KeyError, ValueError, TypeError) as exc:
        raise UnreadableRowError(str(raw.get("pk", {}).get("S", "?"))[:80], type(exc).__name__) from None


def _decode(raw: Mapping[str, Any]) -> Session:
    v = {k: _de.deserialize(x) for k, x in raw.items()}

    def num(name: str) -> int | None:
        return int(v[name]) if name in v else None

    return Session(
        session_id=v["session_id"],
        owner=v["owner"],
        engine=v["engine"],
        avatar_id=v.get("avatar_id"),
        status=Status(v["status"]),
        created_at=int(v["created_at"]),
        expires_at=int(v["expires_at"]),
        due_at=num("due_at"),
        avaturn_session_id=v.get("avaturn_session_id"),
        token_sha256=v.get("token_sha256"),
        terminated_at=num("terminated_at"),
        end_reason=_reason(v.get("end_reason")),
        pending_end_reason=_reason(v.get("pending_end_reason")),
        lease_expires_at=num("lease_expires_at"),
        budget_day=v.get("budget_day"),
        reserved_seconds=num("reserved_seconds"),
        counted_total=bool(v.get("counted_total", False)),
        client_error=v.get("client_error"),
        profile=v.get("profile"),
    )


class UnreadableRowError(DependencyUnavailableError):
    """A registry row this version cannot decode (``key`` is its partition key)."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__("a session record cannot be read")
        self.key = key
        self.problem = problem


class Limit(enum.StrEnum):
    """The limits a reservation is checked against, in the order a refusal names them."""

    BUDGET = "budget"
    RATE = "rate"
    OWNER = "owner"
    TOTAL = "total"


class ReservationRefusedError(Exception):
    """A reservation broke ``limit``'s condition (nothing was written)."""

    def __init__(self, limit: Limit) -> None:
        super().__init__(limit.value)
        self.limit = limit


@dataclass(frozen=True, slots=True)
class Limits:
    """What one reservation must stay within; 0 means off. ``owner``: open sessions per owner;
    ``rate``: creates per owner per clock minute; ``total``: open sessions of every owner;
    ``budget``: seconds per owner per UTC day."""

    owner: int
    rate: int = 0
    total: int = 0
    budget: int = 0


def _condition_failed(exc: ClientError) -> bool:
    return exc.response["Error"]["Code"] == "ConditionalCheckFailedException"


class SessionStore:
    """The session registry on one DynamoDB table (``client`` is a boto3 DynamoDB client).

    Times are epoch seconds. Every method raises ``DependencyUnavailableError`` when DynamoDB
    fails; finished rows, and the usage aggregates, expire ``finished_ttl_seconds`` after they
    are written (DynamoDB TTL on ``expiration``).
    """

    def __init__(self, client: Any, table_name: str, finished_ttl_seconds: int) -> None:
        self._db = client
        self._table = table_name
        self._finished_ttl = finished_ttl_seconds

    def _call(self, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._db, operation)(**kwargs)
        except (BotoCoreError, ClientError) as exc:
            if isinstance(exc, ClientError) and (
                _condition_failed(exc) or exc.response["Error"]["Code"] == "TransactionCanceledException"
            ):
                raise
            raise DependencyUnavailableError("the session registry is unavailable") from exc

    def _update_if(
        self,
        session_id: str,
        update: str,
        condition: str,
        values: dict[str, Any],
        done: Callable[[Mapping[str, Any]], bool] | None = None,
    ) -> bool:
        """One conditional update of a session row (``#s`` is ``status``). False if the
        condition did not hold, unless ``done(old item)`` says the row already holds what this
        update writes (a retried write whose first attempt was applied)."""
        try:
            self._call(
                "update_item",
                TableName=self._table,
                Key=session_key(session_id),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=_item(values),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if _condition_failed(exc):
                old: Mapping[str, Any] = exc.response.get("Item", {})  # type: ignore[assignment]
                return done is not None and done(old)
            raise
        return True

    def _transact(self, items: list[dict[str, Any]]) -> list[int]:
        """Write all items or none. Returns [] on success, else the indexes of the items whose
        condition failed; any other failure is the registry's problem."""
        try:
            # The token makes a retry after an ambiguous failure (a timeout) idempotent.
            self._call("transact_write_items", TransactItems=items, ClientRequestToken=str(uuid.uuid4()))
        except ClientError as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            failed = [i for i, code in enumerate(reasons) if code == "ConditionalCheckFailed"]
            if failed:
                return failed
            raise DependencyUnavailableError("the session registry is unavailable") from exc
        return []

    def _counter(self, key: dict[str, Any], attribute: str) -> int:
        out = self._call("get_item", TableName=self._table, Key=key, ConsistentRead=True)
        value = out.get("Item", {}).get(attribute, {}).get("N")
        return max(0, int(value)) if value is not None else 0

    # -- create ---------------------------------------------------------------------------

    def reserve(self, session: Session, limits: Limits, now: int) -> None:
        """Record a pending session and take, atomically, one of the owner's slots, one
        broker-wide slot, one of the owner's creates of this minute (``limits.rate`` on) and
        ``session.reserved_seconds`` of its ``budget_day`` (``limits.budget`` on).

        Raises ``ReservationRefusedError`` naming the first limit (in ``Limit`` order) that
        refused; nothing is written then.
        """
        put = {
            "TableName": self._table,
            "Item": {**session_key(session.session_id), **_item(self._row(session))},
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        checks: list[tuple[Limit | None, dict[str, Any]]] = [(None, {"Put": put})]
        checks.append((Limit.OWNER, {"Update": self._count_up(owner_key(session.owner), "active", limits.owner)}))
        checks[-1][1]["Update"]["UpdateExpression"] += " REMOVE expiration"  # counting again: no longer expires
        if session.counted_total:
            checks.append((Limit.TOTAL, {"Update": self._count_up(TOTAL_KEY, "active", limits.total)}))
        if limits.rate:
            minute = now - now % 60
            take = self._count_up(rate_key(session.owner, minute), "creates", limits.rate, expires=minute + 120)
            checks.append((Limit.RATE, {"Update": take}))
        if session.budget_day and session.reserved_seconds:
            spend = {
                "TableName": self._table,
                "Key": budget_key(session.owner, session.budget_day),
                "UpdateExpression": "ADD used :amount SET expiration = :exp",
                "ConditionExpression": "attribute_not_exists(used) OR used <= :most",
                "ExpressionAttributeValues": _item(
                    {
                        ":amount": session.reserved_seconds,
                        ":most": limits.budget - session.reserved_seconds,
                        ":exp": now + 3 * 86400,
                    }
                ),
            }
            checks.append((Limit.BUDGET, {"Update": spend}))
        failed = {checks[i][0] for i in self._transact([item for _, item in checks])}
        if not failed:
            return
        for limit in Limit:
            if limit in failed:
                raise ReservationRefusedError(limit)
        raise DependencyUnavailableError("the session registry refused a new session row")

    def _count_up(self, key: dict[str, Any], attribute: str, cap: int, expires: int | None = None) -> dict[str, Any]:
        """An ``ADD attribute 1`` that holds only below ``cap`` (0: no cap)."""
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": key,
            "UpdateExpression": f"ADD {attribute} :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
        }
        if cap:
            update["ConditionExpression"] = f"attribute_not_exists({attribute}) OR {attribute} < :cap"
            update["ExpressionAttributeValues"][":cap"] = {"N": str(cap)}
        if expires is not None:
            update["UpdateExpression"] += " SET expiration = :exp"
            update["ExpressionAttributeValues"][":exp"] = {"N": str(expires)}
        return update

    def budget_used(self, owner: str, day: str) -> int:
        """Seconds of ``owner``'s budget reserved on ``day`` (net of refunds)."""
        return self._counter(budget_key(owner, day), "used")

    def open_count(self, owner: str | None = None) -> int:
        """Open sessions of ``owner``, or of every owner (as the counters hold them)."""
        return self._counter(owner_key(owner) if owner is not None else TOTAL_KEY, "active")

    def creates_this_minute(self, owner: str, now: int) -> int:
        """``owner``'s creates in the clock minute of ``now``."""
        return self._counter(rate_key(owner, now - now % 60), "creates")

    def activate(self, session: Session) -> bool:
        """pending -> active, with what Avaturn returned; False if the row is no longer pending.

        ``due_at`` becomes the earlier of ``expires_at`` and the lease. A row already active with
        this Avaturn session id counts as done (a retried write whose first attempt was applied).
        """
        return self._update_if(
            session.session_id,
            "SET #s = :active, avaturn_session_id = :aid, token_sha256 = :th, expires_at = :exp, due_at = :due",
            "#s = :pending",
            {
                ":active": Status.ACTIVE.value,
                ":pending": Status.PENDING.value,
                ":aid": session.avaturn_session_id,
                ":th": session.token_sha256,
                ":exp": session.expires_at,
                ":due": session.due_at,
            },
            done=lambda old: (
                old.get("status", {}).get("S") == Status.ACTIVE.value
                and old.get("avaturn_session_id", {}).get("S") == session.avaturn_session_id
            ),
        )

    # -- read -----------------------------------------------------------------------------

    def get(self, session_id: str) -> Session | None:
        """The session row (strongly consistent read), or None."""
        out = self._call("get_item", TableName=self._table, Key=session_key(session_id), ConsistentRead=True)
        item = out.get("Item")
        return _to_session(item) if item else None

    def due(self, status: Status, now: int, page_size: int = 100) -> Iterator[Session]:
        """Open sessions of one status whose ``due_at`` has passed, oldest first (index query).
        Rows that cannot be decoded are logged, counted (``RegistryRowsSkipped``) and skipped."""
        yield from self._query(
            SWEEP_INDEX, "#s = :s AND due_at <= :now", {":s": status.value, ":now": now}, page_size=page_size
        )

    def open_sessions(self, owner: str, limit: int | None = None) -> Iterator[Session]:
        """The owner's open sessions, the first to free first (``owner-index``; eventually
        consistent, as every index is)."""
        yield from self._query(OWNER_INDEX, "open_owner = :o", {":o": owner}, limit=limit)

    def first_due(self, status: Status = Status.ACTIVE) -> Session | None:
        """The open session of ``status`` whose ``due_at`` comes first, of any owner."""
        return next(self._query(SWEEP_INDEX, "#s = :s", {":s": status.value}, limit=1), None)

    def with_status(self, status: Status, owner: str | None = None) -> Iterator[Session]:
        """Every open session of ``status`` (of ``owner``, or of every owner), the first due
        first (``owner-index`` or ``sweep-index``)."""
        if owner is None:
            yield from self._query(SWEEP_INDEX, "#s = :s", {":s": status.value})
        else:
            yield from (s for s in self.open_sessions(owner) if s.status is status)

    def page(
        self, status: Status, owner: str | None, limit: int, after: tuple[str, int] | None = None
    ) -> tuple[list[Session], tuple[str, int] | None]:
        """One page of ``with_status``: at most ``limit`` sessions after the one ``after`` names
        (``(session_id, due_at)``), and what names the last one read when more may follow."""
        kwargs: dict[str, Any] = {"TableName": self._table, "ExpressionAttributeNames": {"#s": "status"}}
        if owner is None:
            hash_key = {"status": status.value}
            kwargs |= {"IndexName": SWEEP_INDEX, "KeyConditionExpression": "#s = :s"}
        else:
            hash_key = {"open_owner": owner}
            kwargs |= {"IndexName": OWNER_INDEX, "KeyConditionExpression": "open_owner = :o"}
            kwargs |= {"FilterExpression": "#s = :s"}
        kwargs["ExpressionAttributeValues"] = _item({":s": status.value, ":o": owner})
        if after is not None:
            kwargs["ExclusiveStartKey"] = _item({"pk": f"{SESSION_PREFIX}{after[0]}", "due_at": after[1], **hash_key})
        sessions: list[Session] = []
        while True:
            # A filtered query may return fewer items than it evaluated: ask for what is missing.
            out = self._call("query", **kwargs, Limit=limit - len(sessions))
            sessions.extend(self._decoded(out.get("Items", [])))
            last = out.get("LastEvaluatedKey")
            if last is None:
                return sessions, None
            cursor = (str(last["pk"]["S"]).removeprefix(SESSION_PREFIX), int(last["due_at"]["N"]))
            if len(sessions) >= limit:
                return sessions, cursor
            kwargs["ExclusiveStartKey"] = last

    def _query(
        self,
        index: str,
        condition: str,
        values: dict[str, Any],
        *,
        limit: int | None = None,
        page_size: int = 100,
    ) -> Iterator[Session]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": _item(values),
            "Limit": min(page_size, limit or page_size),
        }
        if "#s" in condition:
            kwargs["ExpressionAttributeNames"] = {"#s": "status"}
        seen = 0
        while True:
            page = self._call("query", **kwargs)
            for session in self._decoded(page.get("Items", [])):
                yield session
                seen += 1
                if limit is not None and seen >= limit:
                    return
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    @staticmethod
    def _decoded(items: list[Mapping[str, Any]]) -> Iterator[Session]:
        """The sessions of raw items; one bad row must not stop a sweep or a listing: it is
        logged, counted (``RegistryRowsSkipped``) and skipped."""
        for raw in items:
            try:
                yield _to_session(raw)
            except UnreadableRowError as exc:
                logger.error("unreadable session row skipped", extra={"key": exc.key, "problem": exc.problem})
                count("RegistryRowsSkipped")

    # -- lease ----------------------------------------------------------------------------

    def renew_lease(self, session: Session, until: int) -> Session | None:
        """Extend an active session's lease to ``until`` (its ``due_at`` follows: the earlier of
        the lease and ``expires_at``). None if the session is no longer active."""
        due = min(until, session.expires_at)
        renewed = self._update_if(
            session.session_id,
            "SET lease_expires_at = :l, due_at = :due",
            "#s = :active",
            {":l": until, ":due": due, ":active": Status.ACTIVE.value},
        )
        return replace(session, lease_expires_at=until, due_at=due) if renewed else None

    # -- end ------------------------------------------------------------------------------

    def claim(
        self, session: Session, *, now: int, grace: int, reason: EndReason, client_error: str | None = None
    ) -> Session | None:
        """Move an open session (as last seen) to ``terminating`` for ``grace`` seconds, noting
        why (and the SDK's ``client_error`` code, if any).

        The condition on the status and ``due_at`` that were read makes this a lease: of two
        overlapping callers exactly one wins; the loser gets None.
        """
        update = "SET #s = :terminating, due_at = :due, pending_end_reason = if_not_exists(pending_end_reason, :reason)"
        if client_error is not None:
            update += ", client_error = if_not_exists(client_error, :error)"
        claimed = self._update_if(
            session.session_id,
            update,
            "#s = :seen AND due_at = :seen_due",
            {
                ":terminating": Status.TERMINATING.value,
                ":due": now + grace,
                ":reason": reason.value,
                ":error": client_error,
                ":seen": session.status.value,
                ":seen_due": session.due_at,
            },
        )
        if not claimed:
            return None
        return replace(
            session,
            status=Status.TERMINATING,
            due_at=now + grace,
            pending_end_reason=session.pending_end_reason or reason,
            client_error=session.client_error or client_error,
        )

    def finish(self, session: Session, *, status: Status, reason: EndReason, now: int) -> bool:
        """Close an open session and give back what it held, in one transaction: the owner's
        slot, its broker-wide slot, the budget seconds it did not use; and add it to the usage
        aggregates. False if it was not open in the state we read (someone else finished it)."""
        used = session.seconds_used(now)
        close = {
            "TableName": self._table,
            "Key": session_key(session.session_id),
            "UpdateExpression": "SET #s = :final, end_reason = :reason, terminated_at = :now, "
            "expiration = :ttl, seconds_used = :used REMOVE due_at, pending_end_reason, open_owner",
            "ConditionExpression": "#s = :seen",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": _item(
                {
                    ":final": status.value,
                    ":reason": reason.value,
                    ":now": now,
                    ":ttl": now + self._finished_ttl,
                    ":used": used,
                    ":seen": session.status.value,
                }
            ),
        }
        items: list[dict[str, Any]] = [{"Update": close}, {"Update": self._add(owner_key(session.owner), "active", -1)}]
        if session.counted_total:
            items.append({"Update": self._add(TOTAL_KEY, "active", -1)})
        refund = (session.reserved_seconds or 0) - used
        if session.budget_day and refund > 0:
            items.append({"Update": self._add(budget_key(session.owner, session.budget_day), "used", -refund)})
        if session.avaturn_session_id is not None:
            items.append({"Update": self._usage(session, used, now)})
        finished = not self._transact(items)
        if finished:
            self._expire_if_idle(session.owner, now)
        return finished

    def _add(self, key: dict[str, Any], attribute: str, amount: int) -> dict[str, Any]:
        return {
            "TableName": self._table,
            "Key": key,
            "UpdateExpression": f"ADD {attribute} :n",
            "ExpressionAttributeValues": {":n": {"N": str(amount)}},
        }

    def _usage(self, session: Session, used: int, now: int) -> dict[str, Any]:
        day = session.budget_day or utc_day(session.created_at)
        profile = session.profile or "-"
        return {
            "TableName": self._table,
            "Key": _key(f"USAGE#{day}#{session.owner}#{session.engine}#{profile}"),
            "UpdateExpression": "ADD sessions :one, seconds :used "
            "SET usage_day = :day, #o = :owner, engine = :engine, profile = :profile, expiration = :exp",
            "ExpressionAttributeNames": {"#o": "owner"},
            "ExpressionAttributeValues": _item(
                {
                    ":one": 1,
                    ":used": used,
                    ":day": day,
                    ":owner": session.owner,
                    ":engine": session.engine,
                    ":profile": profile,
                    ":exp": now + self._finished_ttl,
                }
            ),
        }

    def usage(self, day: str) -> list[dict[str, Any]]:
        """The usage aggregates of sessions created on ``day``: ``[{owner, engine, profile,
        sessions, seconds}]`` (``usage-index`` query, never a scan)."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": USAGE_INDEX,
            "KeyConditionExpression": "usage_day = :d",
            "ExpressionAttributeValues": {":d": {"S": day}},
        }
        rows: list[dict[str, Any]] = []
        while True:
            page = self._call("query", **kwargs)
            for raw in page.get("Items", []):
                v = {k: _de.deserialize(x) for k, x in raw.items()}
                rows.append(
                    {
                        "day": day,
                        "owner": v.get("owner", "?"),
                        "engine": v.get("engine", "?"),
                        "profile": v.get("profile", "-"),
                        "sessions": int(v.get("sessions", 0)),
                        "seconds": int(v.get("seconds", 0)),
                    }
                )
            if "LastEvaluatedKey" not in page:
                return rows
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _expire_if_idle(self, owner: str, now: int) -> None:
        """Let DynamoDB TTL delete the owner's counter item if it counts no open session any more.

        Conditional on the count, so a reservation that got in first (``reserve`` removes the
        expiration in the same write that counts) wins. Best effort: if this write fails, the
        item lives until a later release retires it.
        """
        try:
            self._call(
                "update_item",
                TableName=self._table,
                Key=owner_key(owner),
                UpdateExpression="SET expiration = :now",
                ConditionExpression="active <= :zero",
                ExpressionAttributeValues={":now": {"N": str(now)}, ":zero": {"N": "0"}},
            )
        except ClientError as exc:
            if not _condition_failed(exc):
                raise
        except DependencyUnavailableError:
            logger.warning("an idle owner item could not be set to expire", exc_info=True)

    @staticmethod
    def _row(session: Session) -> dict[str, Any]:
        return {
            "session_id": session.session_id,
            "owner": session.owner,
            "open_owner": session.owner,
            "engine": session.engine,
            "avatar_id": session.avatar_id,
            "profile": session.profile,
            "status": session.status.value,
            "created_at": session.created_at,
            "expires_at": session.expires_at,
            "due_at": session.due_at,
            "lease_expires_at": session.lease_expires_at,
            "budget_day": session.budget_day,
            "reserved_seconds": session.reserved_seconds,
            "counted_total": session.counted_total or None,
        }
