"""Real-world faults: every wait inside the deadline, transient registry errors retried, no slot
held forever, no row that stops the sweep, success is success, rotated keys (issue: "hold the
guarantees under real-world faults")."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2
import pytest
from botocore.exceptions import ReadTimeoutError

from broker.http import timeout_within
from broker.store import session_key
from broker.timing import Deadline
from tests.unit.fakes import KEYS, FakeUpstreams
from tests.unit.support import TABLE, Api, FakeContext, body_of, client_error, http_event

OWNER = "ip:198.51.100.7"


def problem(response: dict[str, Any], status: int) -> dict[str, Any]:
    assert response["statusCode"] == status, response.get("body")
    assert response["headers"]["Content-Type"] == "application/problem+json"
    return json.loads(response["body"])


def rate_limited(seconds: int) -> httpx2.Response:
    return httpx2.Response(
        429,
        headers={"retry-after": str(seconds)},
        json={"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}},
    )


class Trickle(httpx2.SyncByteStream):
    """A body sent one byte every ``pause`` seconds (a server that keeps a read timeout happy)."""

    def __init__(self, body: bytes, pause: float) -> None:
        self.body, self.pause, self.sent = body, pause, 0

    def __iter__(self):
        for byte in self.body:
            time.sleep(self.pause)
            self.sent += 1
            yield bytes([byte])


class TestEveryWaitIsBoundedByTheDeadline:
    @pytest.mark.timeout(20)
    def test_a_retry_after_longer_than_the_deadline_is_a_503_at_once_and_the_slot_is_released(
        self, make_broker, handlers
    ) -> None:
        # Given OpenAI rate-limits the first mint and asks for 30 s, more than the request has
        upstreams = FakeUpstreams()
        upstreams.script("openai", rate_limited(30))
        broker = make_broker(upstreams)
        # When a create arrives
        response = Api(broker, handlers).create(None)
        # Then it answers 503 with the upstream's wait instead of sleeping past the deadline
        body = problem(response, 503)
        assert body["type"].endswith(":upstream-unavailable")
        assert response["headers"]["Retry-After"] == "30"
        assert "429" not in body["detail"]
        assert len(upstreams.seen("openai")) == 1
        assert upstreams.seen("avaturn.create") == []
        # And the owner's slot is free again
        assert broker.active_count(OWNER) == 0

    def test_a_retry_after_that_fits_is_honoured(self, make_broker, handlers) -> None:
        upstreams = FakeUpstreams()
        upstreams.script("openai", rate_limited(1))
        broker = make_broker(upstreams)
        assert Api(broker, handlers).create(None)["statusCode"] == 201
        assert len(upstreams.seen("openai")) == 2

    def test_an_http_date_retry_after_is_understood(self, make_broker, handlers) -> None:
        # RFC 9110 section 10.2.3: Retry-After is delay-seconds or an HTTP-date
        upstreams = FakeUpstreams()
        upstreams.script(
            "cartesia",
            httpx2.Response(503, headers={"retry-after": "Fri, 31 Dec 2100 23:59:59 GMT"}, json={"message": "busy"}),
        )
        broker = make_broker(upstreams)
        response = Api(broker, handlers).create({"engine": "cartesia"})
        problem(response, 503)
        assert int(response["headers"]["Retry-After"]) > 3600
        assert len(upstreams.seen("cartesia")) == 1

    @pytest.mark.timeout(20)
    def test_a_trickling_upstream_cannot_stretch_the_deadline(self, make_broker, handlers) -> None:
        # Given Avaturn answers its create one byte every 0.2 s (6 s for the whole body), which
        # never trips a read timeout, and the request has about 1 s left after minting
        body = json.dumps({"session_id": "a" * 8, "token": "t" * 22}).encode()
        stream = Trickle(body, 0.2)
        upstreams = FakeUpstreams()
        upstreams.script("avaturn.create", httpx2.Response(200, stream=stream))
        broker = make_broker(upstreams)
        api = Api(broker, handlers)
        event = http_event("create_session", body=None, headers={"content-type": "application/json"})
        # When the create runs with 5 s left (a 4 s deadline, 3 s of it kept to record the answer)
        response = api.call("create_session", event, FakeContext(remaining_ms=5_000))
        # Then it gives up when the deadline passes, long before the body ends, and frees the slot
        problem(response, 504)
        assert stream.sent < len(body) / 2
        assert broker.active_count(OWNER) == 0

    def test_avaturn_is_not_called_when_no_time_would_be_left_to_record_its_answer(self, make_broker, handlers) -> None:
        # Given a request with 3.5 s left: 2.5 s of deadline, less than the 3 s kept for recording
        upstreams = FakeUpstreams()
        broker = make_broker(upstreams)
        event = http_event("create_session", body=None, headers={"content-type": "application/json"})
        response = Api(broker, handlers).call("create_session", event, FakeContext(remaining_ms=3_500))
        # Then no session is created upstream that could end up unrecorded
        problem(response, 504)
        assert upstreams.seen("avaturn.create") == []
        assert broker.active_count(OWNER) == 0

    def test_timeouts_are_clipped_to_the_time_left(self) -> None:
        client = httpx2.Client(timeout=httpx2.Timeout(connect=3, read=10, write=10, pool=3))
        clipped = timeout_within(client, Deadline.within(0.5))
        assert max(clipped.connect or 9, clipped.read or 9, clipped.write or 9, clipped.pool or 9) <= 0.5

    def test_registry_calls_have_their_read_timeout_clipped_to_the_deadline(self, broker) -> None:
        # Given a handler that sees the request context botocore sends with
        seen: list[float] = []
        broker.dynamodb.meta.events.register(
            "before-send", lambda request, **_: seen.append(request.context.get("read_timeout"))
        )
        # When the registry is read with 0.5 s left
        with Deadline.within(0.5).applies():
            broker.store.get("6f9619ff-8b86-4d01-b42d-00cf4fc964ff")
        # Then that call may wait at most what is left
        assert seen
        assert 0 < seen[-1] <= 0.5


class TestTransientRegistryErrors:
    def test_fifty_parallel_creates_with_a_cap_of_two_admit_exactly_two_despite_conflicts(
        self, make_broker, handlers, aws
    ) -> None:
        # Given real DynamoDB's behaviour: 30 % of transactions are cancelled (TransactionConflict)
        faults = aws[0]
        faults.conflict_share = 0.3
        broker = make_broker(max_active_sessions_per_owner=2)
        api = Api(broker, handlers)
        # When one owner sends 50 creates at once
        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = list(pool.map(lambda _: api.create(None)["statusCode"], range(50)))
        # Then exactly two are admitted and every other one is told the cap is reached
        assert faults.injected > 0
        assert sorted(set(statuses)) == [201, 429]
        assert statuses.count(201) == 2
        assert broker.active_count(OWNER) == 2

    def test_a_conflict_on_the_final_write_of_a_delete_is_retried_not_a_503(self, api: Api, aws) -> None:
        created = body_of(api.create(None))
        faults = aws[0]
        faults.fail(lambda op, kw: op == "transact_write_items", lambda kw: _conflict(kw), times=2)
        assert api.delete(created["session_id"], created["token"])["statusCode"] == 204
        assert body_of(api.get(created["session_id"], created["token"]))["status"] == "terminated"

    def test_throttling_on_a_read_is_retried(self, api: Api, aws) -> None:
        created = body_of(api.create(None))
        aws[0].fail(
            lambda op, kw: op == "get_item",
            lambda kw: client_error("ProvisionedThroughputExceededException", "GetItem"),
            times=2,
        )
        assert api.get(created["session_id"], created["token"])["statusCode"] == 200

    def test_the_sweep_retries_conflicts_instead_of_counting_failures(self, api: Api, aws) -> None:
        for _ in range(2):
            api.create(None)
        api.broker.fake_clock.advance(900)
        aws[0].conflict_share = 0.5
        summary = api.cleanup()
        assert summary == {"examined": 2, "terminated": 2, "failed": 0}

    def test_a_persistent_registry_outage_is_still_a_503(self, api: Api, aws) -> None:
        aws[0].fail(lambda op, kw: op == "transact_write_items", lambda kw: _conflict(kw))
        problem(api.create(None), 503)


def _conflict(kwargs: dict[str, Any]) -> Exception:
    from tests.unit.support import transaction_conflict

    return transaction_conflict(kwargs)


class TestNoSlotIsHeldForever:
    def test_a_session_avaturn_never_lets_us_end_is_finished_after_max_duration_and_grace(self, api: Api) -> None:
        # Given a live session whose Avaturn DELETE fails on every attempt
        created = body_of(api.create(None))
        api.broker.upstreams.fail["avaturn.delete"] = 500
        # When the sweep runs after expires_at, it cannot end it yet: the slot stays counted
        api.broker.fake_clock.advance(900)
        assert api.cleanup()["failed"] == 1
        assert api.broker.active_count(OWNER) == 1
        # Then once max_duration plus the grace period has passed, the registry lets it go
        api.broker.fake_clock.advance(api.broker.settings.cleanup_grace_seconds + 1)
        assert api.cleanup() == {"examined": 1, "terminated": 1, "failed": 0}
        view = body_of(api.get(created["session_id"], created["token"]))
        assert (view["status"], view["end_reason"]) == ("terminated", "stale")
        assert api.broker.active_count(OWNER) == 0

    def test_one_unreadable_row_does_not_stop_the_sweep(self, api: Api) -> None:
        # Given a due row written by another version (a status this one does not know) and an
        # expired session after it
        api.broker.dynamodb.put_item(
            TableName=TABLE,
            Item={
                **session_key("00000000-0000-4000-8000-000000000000"),
                "status": {"S": "active"},
                "due_at": {"N": "1"},
                "session_id": {"S": "00000000-0000-4000-8000-000000000000"},
            },
        )
        api.create(None)
        api.broker.fake_clock.advance(900)
        # When the sweep runs, it skips the bad row and ends the good one
        assert api.cleanup() == {"examined": 1, "terminated": 1, "failed": 0}

    def test_an_end_reason_of_a_newer_version_still_reads(self, api: Api) -> None:
        created = body_of(api.create(None))
        api.broker.dynamodb.update_item(
            TableName=TABLE,
            Key=session_key(created["session_id"]),
            UpdateExpression="SET pending_end_reason = :r",
            ExpressionAttributeValues={":r": {"S": "some_future_reason"}},
        )
        view = body_of(api.get(created["session_id"], created["token"]))
        assert view["status"] == "active"
        assert api.delete(created["session_id"], created["token"])["statusCode"] == 204

    def test_v1_end_reasons_read_as_their_v2_names(self, api: Api) -> None:
        created = body_of(api.create(None))
        api.delete(created["session_id"], created["token"])
        api.broker.dynamodb.update_item(
            TableName=TABLE,
            Key=session_key(created["session_id"]),
            UpdateExpression="SET end_reason = :r",
            ExpressionAttributeValues={":r": {"S": "client_request"}},
        )
        assert body_of(api.get(created["session_id"], created["token"]))["end_reason"] == "owner"

    def test_a_created_session_is_returned_even_if_its_idempotency_record_cannot_be_saved(self, api: Api, aws) -> None:
        # Given the idempotency record's final save fails (after the session was created)
        aws[0].fail(
            lambda op, kw: op == "update_item" and kw["Key"]["pk"]["S"].startswith("create_session#"),
            lambda kw: client_error("ValidationException", "UpdateItem"),
        )
        # When a create with an Idempotency-Key runs
        response = api.create(None, headers={"idempotency-key": "5f0c6f7e-0b3b-4c53-9d36-9f0d4b1a2c3d"})
        # Then its caller gets the session that now holds a slot, and it works
        assert response["statusCode"] == 201
        created = body_of(response)
        assert api.get(created["session_id"], created["token"])["statusCode"] == 200

    def test_a_registry_write_that_times_out_after_avaturn_created_is_compensated(self, api: Api, aws) -> None:
        # Given the write that records Avaturn's answer times out (it may hang past the deadline)
        aws[0].fail(
            lambda op, kw: op == "update_item" and kw["Key"]["pk"]["S"].startswith("SESSION#"),
            lambda kw: ReadTimeoutError(endpoint_url="https://dynamodb.test"),
        )
        # When a create runs, it answers 503 and the upstream session is ended, not left behind
        problem(api.create(None), 503)
        assert api.broker.upstreams.sessions == {}
        assert api.broker.active_count(OWNER) == 0


class TestSuccessIsSuccess:
    @pytest.mark.parametrize(
        "answer",
        [
            httpx2.Response(200, text="OK"),
            httpx2.Response(200, content=b'{"partial": '),
            httpx2.Response(202, json={"status": "ending"}),
            httpx2.Response(204),
        ],
    )
    def test_any_2xx_to_a_delete_is_an_ended_session(self, api: Api, answer: httpx2.Response) -> None:
        created = body_of(api.create(None))
        api.broker.upstreams.script("avaturn.delete", answer)
        assert api.delete(created["session_id"], created["token"])["statusCode"] == 204
        assert body_of(api.get(created["session_id"], created["token"]))["status"] == "terminated"


class TestRotatedKeys:
    def rotate(self, api: Api) -> dict[str, str]:
        new = {name: value.replace("CANARY", "ROTATED") for name, value in KEYS.items()}
        api.broker.secretsmanager.put_secret_value(
            SecretId=api.broker.settings.broker_secret_id, SecretString=json.dumps(new)
        )
        api.broker.upstreams.keys = new
        return new

    @pytest.mark.parametrize("engine", ["openai-realtime", "cartesia"])
    def test_a_rotated_secret_is_read_again_on_401_and_the_create_succeeds(self, api: Api, engine: str) -> None:
        # Given a warm container that cached the keys, and then the secret was rotated
        assert api.create({"engine": engine})["statusCode"] == 201
        self.rotate(api)
        # When the next create meets a 401 with the cached key
        response = api.create({"engine": engine})
        # Then the broker re-read the secret and repeated the call
        assert response["statusCode"] == 201, response["body"]

    def test_a_delete_after_rotation_succeeds(self, api: Api) -> None:
        created = body_of(api.create(None))
        self.rotate(api)
        assert api.delete(created["session_id"], created["token"])["statusCode"] == 204
        assert api.broker.upstreams.sessions == {}

    def test_a_key_that_is_still_wrong_after_the_reread_is_a_502_without_the_status(self, api: Api) -> None:
        api.broker.upstreams.keys = dict.fromkeys(KEYS, "not-the-key")
        body = problem(api.create(None), 502)
        assert "401" not in body["detail"]
        assert "HTTP" not in body["detail"]
        # the secret was re-read, the key had not changed: no pointless repeat, never a loop
        assert len(api.broker.upstreams.seen("openai")) == 1


def test_concurrent_refreshes_read_the_secret_once(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a rotated secret and many threads that all meet a 401 with the old key
    api.create(None)
    old = api.broker.keys.key("avaturn")
    TestRotatedKeys().rotate(api)
    reads: list[int] = []
    provider = api.broker.keys._provider  # the Powertools provider that calls GetSecretValue
    original = provider._get

    def counting(*args: Any, **kwargs: Any) -> Any:
        reads.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(provider, "_get", counting)
    barrier = threading.Barrier(8)

    def refresh() -> bool:
        barrier.wait()
        return api.broker.keys.refresh("avaturn", old)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: refresh(), range(8)))
    # Then every caller sees the new key, and Secrets Manager was read once
    assert all(results)
    assert len(reads) == 1
