"""The operator's kill switch for creates, kept in the registry table (item ``CONTROL#creates``,
attribute ``value``: ``{"paused": bool, "reason": str | null, "updated_at": epoch s}``).

Creates read it through a Powertools parameters provider with a short cache
(``CONTROL_CACHE_SECONDS``), so a busy create function reads it at most once per cache period,
never once per request; a pause reaches every function within that period.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.parameters import BaseProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError, TransformParameterError
from botocore.exceptions import BotoCoreError, ClientError

from broker.errors import DependencyUnavailableError
from broker.observability import logger

CREATES_KEY = "CONTROL#creates"


class _RegistryFlags(BaseProvider):
    """Powertools provider of flag items of the registry table (one consistent GetItem each)."""

    def __init__(self, client: Any, table: str) -> None:
        super().__init__(client=client)
        self._db = client
        self._table = table

    def _get(self, name: str, **_: Any) -> str:
        item = self._db.get_item(TableName=self._table, Key={"pk": {"S": name}}, ConsistentRead=True).get("Item")
        return str(item["value"]["S"]) if item else "{}"

    def _get_multiple(self, path: str, **_: Any) -> dict[str, str]:
        raise NotImplementedError


class CreatesSwitch:
    """Reads and sets the creates kill switch. ``client`` is a boto3 DynamoDB client;
    ``max_age`` the cache period in seconds."""

    def __init__(self, client: Any, table: str, max_age: int) -> None:
        self._db = client
        self._table = table
        self._max_age = max_age
        self._flags = _RegistryFlags(client, table)

    def paused_reason(self) -> str | None:
        """The reason creates are paused ("" when no reason was given), or None when they are
        not. A flag that cannot be read counts as not paused (logged): the switch must not
        become an outage of its own."""
        try:
            state = self.state(fresh=False)
        except DependencyUnavailableError:
            logger.warning("the creates switch could not be read; creates stay open")
            return None
        return (state.get("reason") or "") if state.get("paused") else None

    def state(self, *, fresh: bool = True) -> dict[str, Any]:
        """``{"paused", "reason", "updated_at"}`` (read past the cache when ``fresh``).

        Raises ``DependencyUnavailableError``.
        """
        try:
            value = self._flags.get(CREATES_KEY, max_age=self._max_age, transform="json", force_fetch=fresh)
        except (GetParameterError, TransformParameterError, BotoCoreError, ClientError) as exc:
            raise DependencyUnavailableError("the operator's flags cannot be read") from exc
        data = value if isinstance(value, dict) else {}
        return {"paused": bool(data.get("paused")), "reason": data.get("reason"), "updated_at": data.get("updated_at")}

    def set(self, *, paused: bool, reason: str | None, now: int) -> dict[str, Any]:
        """Pause or resume creates; returns the new state. Raises ``DependencyUnavailableError``."""
        state = {"paused": paused, "reason": reason, "updated_at": now}
        try:
            self._db.put_item(TableName=self._table, Item={"pk": {"S": CREATES_KEY}, "value": {"S": json.dumps(state)}})
        except (BotoCoreError, ClientError) as exc:
            raise DependencyUnavailableError("the operator's flags cannot be written") from exc
        self._flags.clear_cache()
        logger.info("creates switch set", extra={"paused": paused})
        return state
