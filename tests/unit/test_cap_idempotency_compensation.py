"""The promises that need atomicity: the per-owner cap, Idempotency-Key, and compensation."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from broker.errors import DependencyUnavailableError
from tests.unit.fakes import FakeUpstreams
from tests.unit.support import Api, body_of

# Idempotency keys as anonymous mode requires them: UUIDv4s (at least 122 random bits)
KEY_1, KEY_2, KEY_3, KEY_4, SHARED_KEY = (str(uuid.uuid4()) for _ in range(5))


class TestCap:
    def test_third_session_gets_429_with_the_real_wait(self, api: Api) -> None:
        # Given two sessions, the first created 100 s before the second (max_duration 900 s)
        assert api.create(None)["statusCode"] == 201
        api.broker.fake_clock.advance(100)
        assert api.create(None)["statusCode"] == 201
        api.broker.fake_clock.advance(50)
        # When a third create arrives, it is refused until the first one's end: 750 s from now
        response = api.create(None)
        assert response["statusCode"] == 429
        assert response["headers"]["Retry-After"] == "750"
        assert (body_of(response)["limit"], body_of(response)["used"]) == (2, 2)
        assert len(api.broker.upstreams.seen("avaturn.create")) == 2

    def test_the_cap_counts_per_source_ip_in_anonymous_mode(self, api: Api) -> None:
        for _ in range(2):
            api.create(None, source_ip="203.0.113.1")
        assert api.create(None, source_ip="203.0.113.2")["statusCode"] == 201

    def test_ending_a_session_frees_its_slot(self, api: Api) -> None:
        created = [body_of(api.create(None)) for _ in range(2)]
        assert api.delete(created[0]["session_id"], created[0]["token"])["statusCode"] == 204
        assert api.create(None)["statusCode"] == 201

    def test_twenty_concurrent_creates_with_cap_two_create_exactly_two(self, api: Api) -> None:
        # Given cap 2 and one owner, When 20 creates race
        with ThreadPoolExecutor(max_workers=20) as pool:
            statuses = list(pool.map(lambda _: api.create(None)["statusCode"], range(20)))
        # Then exactly two succeed upstream and in the registry
        assert sorted(statuses) == [201] * 2 + [429] * 18
        assert len(api.broker.upstreams.sessions) == 2
        assert api.broker.active_count("ip:198.51.100.7") == 2
        assert sorted(r["status"]["S"] for r in api.broker.sessions()) == ["active", "active"]


class TestIdempotency:
    def test_replay_returns_the_same_response_and_creates_one_upstream_session(self, api: Api) -> None:
        first = api.create({"engine": "cartesia"}, headers={"idempotency-key": KEY_1})
        second = api.create({"engine": "cartesia"}, headers={"idempotency-key": KEY_1})
        assert first["statusCode"] == second["statusCode"] == 201
        assert first["body"] == second["body"]  # byte for byte
        assert len(api.broker.upstreams.seen("avaturn.create")) == 1
        assert api.broker.active_count("ip:198.51.100.7") == 1

    def test_same_key_different_body_is_422(self, api: Api) -> None:
        api.create({"engine": "cartesia"}, headers={"idempotency-key": KEY_2})
        response = api.create({"engine": "external"}, headers={"idempotency-key": KEY_2})
        assert response["statusCode"] == 422
        assert "Idempotency-Key" in body_of(response)["title"]

    def test_same_key_from_another_owner_is_independent(self, api: Api) -> None:
        a = body_of(api.create(None, headers={"idempotency-key": SHARED_KEY}, source_ip="203.0.113.1"))
        b = body_of(api.create(None, headers={"idempotency-key": SHARED_KEY}, source_ip="203.0.113.2"))
        assert a["session_id"] != b["session_id"]

    def test_a_duplicate_in_flight_is_409(self, make_broker, handlers) -> None:
        # Given a create that is still waiting for Avaturn
        upstreams = FakeUpstreams()
        broker = make_broker(upstreams)
        api = Api(broker, handlers)
        inner = upstreams.handle
        results: list[dict] = []

        def slow(request):
            if request.method == "POST" and "/api/v1/sessions" in str(request.url):
                results.append(api.create(None, headers={"idempotency-key": KEY_3}))  # the duplicate
            return inner(request)

        upstreams.handle = slow  # type: ignore[method-assign]
        first = api.create(None, headers={"idempotency-key": KEY_3})
        assert first["statusCode"] == 201
        assert results[0]["statusCode"] == 409

    def test_a_failed_attempt_is_not_cached(self, make_broker, handlers) -> None:
        upstreams = FakeUpstreams(fail={"avaturn.create": 500})
        api = Api(make_broker(upstreams), handlers)
        assert api.create(None, headers={"idempotency-key": KEY_4})["statusCode"] == 502
        upstreams.fail.clear()
        assert api.create(None, headers={"idempotency-key": KEY_4})["statusCode"] == 201


class TestCompensation:
    def test_avaturn_failure_leaves_nothing_active(self, make_broker, handlers) -> None:
        broker = make_broker(FakeUpstreams(fail={"avaturn.create": 503}))
        assert Api(broker, handlers).create(None)["statusCode"] == 502
        [row] = broker.sessions()
        assert (row["status"]["S"], row["end_reason"]["S"]) == ("failed", "compensation")
        assert "due_at" not in row  # out of the sweep index
        assert broker.active_count("ip:198.51.100.7") == 0

    def test_when_recording_fails_the_avaturn_session_is_deleted(self, api: Api, monkeypatch) -> None:
        def broken(session):
            raise DependencyUnavailableError("the session registry is unavailable")

        monkeypatch.setattr(api.broker.store, "activate", broken)
        response = api.create(None)
        assert response["statusCode"] == 503
        created = api.broker.upstreams.seen("avaturn.create")
        deleted = api.broker.upstreams.seen("avaturn.delete")
        assert len(created) == len(deleted) == 1
        assert api.broker.upstreams.sessions == {}
        assert api.broker.active_count("ip:198.51.100.7") == 0

    def test_when_even_the_release_fails_the_sweep_finishes_the_pending_row(self, api: Api, monkeypatch) -> None:
        store = api.broker.store
        real_finish = store.finish
        monkeypatch.setattr(store, "finish", lambda *a, **k: (_ for _ in ()).throw(DependencyUnavailableError("x")))
        api.broker.upstreams.fail["avaturn.create"] = 500
        assert api.create(None)["statusCode"] == 502
        assert api.broker.sessions()[0]["status"]["S"] == "pending"
        monkeypatch.setattr(store, "finish", real_finish)
        api.broker.clock.advance(api.broker.settings.cleanup_grace_seconds + 1)
        assert api.cleanup() == {"examined": 1, "terminated": 1, "failed": 0}
        row = api.broker.sessions()[0]
        assert (row["status"]["S"], row["end_reason"]["S"]) == ("failed", "compensation")
        assert api.broker.active_count("ip:198.51.100.7") == 0


@pytest.mark.parametrize("engine", ["openai-realtime", "cartesia", "external"])
def test_every_upstream_session_is_recorded_or_ended(make_broker, handlers, engine) -> None:
    """Whatever fails, at the end each upstream session is active in the registry or gone."""
    for endpoint in ("openai", "cartesia", "avaturn.create"):
        for failure in (500, "timeout", "drop", "malformed"):
            broker = make_broker(FakeUpstreams(fail={endpoint: failure}))
            Api(broker, handlers).create({"engine": engine})
            recorded = {r["avaturn_session_id"]["S"] for r in broker.sessions() if r["status"]["S"] == "active"}
            assert set(broker.upstreams.sessions) <= recorded
