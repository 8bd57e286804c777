"""``OWNER#`` counter items expire once they hold nothing (DynamoDB TTL on ``expiration``), and a
new reservation takes the expiration away again, atomically: an owner item that counts an open
session never carries one, whatever order concurrent releases and reservations run in."""

from __future__ import annotations

from typing import Any

from broker.config import Settings
from broker.store import owner_key
from tests.unit.fakes import FakeUpstreams
from tests.unit.support import DEFAULTS, TABLE, Api, Broker, Clock, body_of

OWNER = "ip:198.51.100.7"


def owner_item(broker: Broker, owner: str = OWNER) -> dict[str, Any]:
    return broker.dynamodb.get_item(TableName=TABLE, Key=owner_key(owner), ConsistentRead=True)["Item"]


class TestOwnerItemExpiry:
    def test_an_owner_item_expires_once_its_last_session_ends_and_not_before(self, api: Api) -> None:
        # Given an owner with two sessions
        first, second = (body_of(api.create(None)) for _ in range(2))
        assert "expiration" not in owner_item(api.broker)
        # When one ends, Then the item still counts the other and does not expire
        assert api.delete(first["session_id"], first["token"])["statusCode"] == 204
        assert "expiration" not in owner_item(api.broker)
        # When the last one ends, Then the empty item expires (DynamoDB TTL deletes it)
        assert api.delete(second["session_id"], second["token"])["statusCode"] == 204
        item = owner_item(api.broker)
        assert item["active"]["N"] == "0"
        assert int(item["expiration"]["N"]) <= int(api.broker.fake_clock())

    def test_a_new_reservation_removes_the_expiration(self, api: Api) -> None:
        # Given an owner item that has expired in all but deletion
        created = body_of(api.create(None))
        api.delete(created["session_id"], created["token"])
        assert "expiration" in owner_item(api.broker)
        # When the owner creates again
        assert api.create(None)["statusCode"] == 201
        # Then the item counts the session and no longer expires
        item = owner_item(api.broker)
        assert item["active"]["N"] == "1"
        assert "expiration" not in item

    def test_the_sweep_and_a_failed_create_release_the_same_way(self, make_broker, handlers) -> None:
        upstreams = FakeUpstreams()
        api = Api(make_broker(upstreams), handlers)
        # a create that fails upstream gives its slot back
        upstreams.fail["avaturn.create"] = 500
        assert api.create(None)["statusCode"] == 502
        assert "expiration" in owner_item(api.broker)
        upstreams.fail.clear()
        # a session the sweep ends
        api.create(None)
        assert "expiration" not in owner_item(api.broker)
        api.broker.fake_clock.advance(10_000)
        assert api.cleanup()["terminated"] == 1
        assert "expiration" in owner_item(api.broker)

    def test_a_reservation_between_a_release_and_its_expiry_step_wins(self, aws, handlers) -> None:
        # Given a release whose "count is 0, expire the item" step runs only after another create of
        # the same owner has taken a slot (two requests interleaving)
        dynamodb, secretsmanager = aws
        interleave = Interleaving(dynamodb)
        broker = Broker(Settings(**DEFAULTS), FakeUpstreams(), Clock(), interleave, secretsmanager)
        api = Api(broker, handlers)
        created = body_of(api.create(None))
        interleave.after_release = lambda: api.create(None)
        # When the first session ends
        assert api.delete(created["session_id"], created["token"])["statusCode"] == 204
        # Then the item counts the new session and does not expire
        assert interleave.ran
        item = owner_item(broker)
        assert item["active"]["N"] == "1"
        assert "expiration" not in item


class Interleaving:
    """A DynamoDB client that runs ``after_release`` once, right after the first transaction that
    gives a slot back (``ADD active -1``) and before the broker's next request."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.after_release: Any = None
        self.ran = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def transact_write_items(self, **kwargs: Any) -> Any:
        result = self._client.transact_write_items(**kwargs)
        if any(map(_gives_a_slot_back, kwargs["TransactItems"])) and self.after_release and not self.ran:
            self.ran = True
            self.after_release()
        return result


def _gives_a_slot_back(item: dict[str, Any]) -> bool:
    update = item.get("Update", {})
    on_owner = str(update.get("Key", {}).get("pk", {}).get("S", "")).startswith("OWNER#")
    return on_owner and {"N": "-1"} in update.get("ExpressionAttributeValues", {}).values()
