"""The session registry on DynamoDB: one table, three kinds of item.

- ``SESSION#<id>``: a session. While it is open (pending, active, terminating) it carries
  ``due_at``, which puts it in the sparse ``sweep-index`` (HASH ``status``, RANGE ``due_at``):
  the cleanup queries that index and never scans the table.
- ``OWNER#<owner>``: the owner's count of open sessions; the cap is a condition on it, changed in
  the same transaction as the session row, so it is atomic. Once it counts nothing it carries an
  ``expiration`` (DynamoDB TTL deletes it; an address-based owner is often seen once), which the
  next reservation removes in the write that counts.
- Powertools idempotency records (``create_session#<hash>``), which never carry ``due_at``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from broker.errors import CapReachedError, DependencyUnavailableError
from broker.models import EndReason, Session, Status
from broker.observability import count, logger

SWEEP_INDEX = "sweep-index"
_ser = TypeSerializer()
_de = TypeDeserializer()


def _item(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in values.items() if v is not None}


SESSION_PREFIX = "SESSION#"
OWNER_PREFIX = "OWNER#"


def session_key(session_id: str) -> dict[str, Any]:
    """The DynamoDB key of a session row: ``{"pk": {"S": "SESSION#<session_id>"}}``."""
    return {"pk": {"S": f"{SESSION_PREFIX}{session_id}"}}


def owner_key(owner: str) -> dict[str, Any]:
    """The DynamoDB key of an owner's counter item: ``{"pk": {"S": "OWNER#<owner>"}}``."""
    return {"pk": {"S": f"{OWNER_PREFIX}{owner}"}}


def is_session_item(item: Mapping[str, Any]) -> bool:
    """True for a raw DynamoDB item that is a session row (not an owner counter or an
    idempotency record)."""
    return str(item.get("pk", {}).get("S", "")).startswith(SESSION_PREFIX)


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
    )


class UnreadableRowError(DependencyUnavailableError):
    """A registry row this version cannot decode (``key`` is its partition key)."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__("a session record cannot be read")
        self.key = key
        self.problem = problem


def _condition_failed(exc: ClientError) -> bool:
    return exc.response["Error"]["Code"] == "ConditionalCheckFailedException"


class SessionStore:
    """The session registry on one DynamoDB table (``client`` is a boto3 DynamoDB client).

    Times are epoch seconds. Every method raises ``DependencyUnavailableError`` when DynamoDB
    fails; finished rows expire ``finished_ttl_seconds`` after they end (DynamoDB TTL on
    ``expiration``).
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

    def _transact(self, items: list[dict[str, Any]], must_hold: int) -> bool:
        """Write all items or none. False when item ``must_hold``'s condition failed; any other
        failure (including the row's own condition in ``reserve``) is the registry's problem."""
        try:
            # The token makes a retry after an ambiguous failure (a timeout) idempotent.
            self._call("transact_write_items", TransactItems=items, ClientRequestToken=str(uuid.uuid4()))
        except ClientError as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if len(reasons) > must_hold and reasons[must_hold] == "ConditionalCheckFailed":
                return False
            raise DependencyUnavailableError("the session registry is unavailable") from exc
        return True

    # -- create ---------------------------------------------------------------------------

    def reserve(self, session: Session, cap: int, retry_after: int) -> None:
        """Record a pending session and take one of the owner's ``cap`` slots, atomically."""
        put = {
            "TableName": self._table,
            "Item": {**session_key(session.session_id), **_item(self._row(session))},
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        take = {
            "TableName": self._table,
            "Key": owner_key(session.owner),
            "UpdateExpression": "ADD active :one REMOVE expiration",  # counting again: no longer expires
            "ConditionExpression": "attribute_not_exists(active) OR active < :cap",
            "ExpressionAttributeValues": {":one": {"N": "1"}, ":cap": {"N": str(cap)}},
        }
        if not self._transact([{"Put": put}, {"Update": take}], must_hold=1):
            raise CapReachedError(f"at most {cap} active sessions per owner", retry_after)

    def activate(self, session: Session) -> bool:
        """pending -> active, with what Avaturn returned; False if the row is no longer pending.

        A row already active with this Avaturn session id counts as done (a retried write whose
        first attempt was applied).
        """
        return self._update_if(
            session.session_id,
            "SET #s = :active, avaturn_session_id = :aid, token_sha256 = :th, expires_at = :exp, due_at = :exp",
            "#s = :pending",
            {
                ":active": Status.ACTIVE.value,
                ":pending": Status.PENDING.value,
                ":aid": session.avaturn_session_id,
                ":th": session.token_sha256,
                ":exp": session.expires_at,
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
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": SWEEP_INDEX,
            "KeyConditionExpression": "#s = :s AND due_at <= :now",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": _item({":s": status.value, ":now": now}),
            "Limit": page_size,
        }
        while True:
            page = self._call("query", **kwargs)
            for raw in page.get("Items", []):
                try:
                    yield _to_session(raw)
                except UnreadableRowError as exc:
                    # One bad row must not stop the sweep: log it, count it, go on.
                    logger.error("unreadable session row skipped", extra={"key": exc.key, "problem": exc.problem})
                    count("RegistryRowsSkipped")
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # -- end ------------------------------------------------------------------------------

    def claim(self, session: Session, *, now: int, grace: int, reason: EndReason) -> Session | None:
        """Move an open session (as last seen) to ``terminating`` for ``grace`` seconds.

        The condition on the status and ``due_at`` that were read makes this a lease: of two
        overlapping callers exactly one wins; the loser gets None.
        """
        claimed = self._update_if(
            session.session_id,
            "SET #s = :terminating, due_at = :due, pending_end_reason = if_not_exists(pending_end_reason, :reason)",
            "#s = :seen AND due_at = :seen_due",
            {
                ":terminating": Status.TERMINATING.value,
                ":due": now + grace,
                ":reason": reason.value,
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
        )

    def finish(self, session: Session, *, status: Status, reason: EndReason, now: int) -> bool:
        """Close an open session and give its slot back, atomically; False if it was not open
        in the state we read (someone else finished it)."""
        close = {
            "TableName": self._table,
            "Key": session_key(session.session_id),
            "UpdateExpression": "SET #s = :final, end_reason = :reason, terminated_at = :now, "
            "expiration = :ttl REMOVE due_at, pending_end_reason",
            "ConditionExpression": "#s = :seen",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": _item(
                {
                    ":final": status.value,
                    ":reason": reason.value,
                    ":now": now,
                    ":ttl": now + self._finished_ttl,
                    ":seen": session.status.value,
                }
            ),
        }
        give_back = {
            "TableName": self._table,
            "Key": owner_key(session.owner),
            "UpdateExpression": "ADD active :minus_one",
            "ExpressionAttributeValues": {":minus_one": {"N": "-1"}},
        }
        finished = self._transact([{"Update": close}, {"Update": give_back}], must_hold=0)
        if finished:
            self._expire_if_idle(session.owner, now)
        return finished

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
            "engine": session.engine,
            "avatar_id": session.avatar_id,
            "status": session.status.value,
            "created_at": session.created_at,
            "expires_at": session.expires_at,
            "due_at": session.due_at,
        }
