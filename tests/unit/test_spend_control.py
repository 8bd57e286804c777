"""Spend control: per-owner UTC-day budgets, a per-owner create rate, a broker-wide cap, the kill
switch, and what every end gives back (issue "Spend control")."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.store import TOTAL_KEY, budget_key, session_key, utc_day
from broker.usecases.admission import MIN_BUDGET_SECONDS, budget_grant
from tests.unit.fakes import FakeUpstreams
from tests.unit.support import TABLE, Api, body_of

OWNER = "ip:198.51.100.7"


def problem(response: dict[str, Any], status: int, slug: str) -> dict[str, Any]:
    assert response["statusCode"] == status, response.get("body")
    body = json.loads(response["body"])
    assert body["type"].endswith(f":{slug}")
    return body


def budget_used(api: Api, owner: str = OWNER) -> int:
    day = utc_day(int(api.broker.fake_clock()))
    item = api.broker.dynamodb.get_item(TableName=TABLE, Key=budget_key(owner, day)).get("Item", {})
    return int(item.get("used", {}).get("N", "0"))


class TestDailyBudget:
    def test_fifty_parallel_creates_admit_exactly_what_the_budget_holds(self, make_broker, handlers) -> None:
        # Given a 600 s daily budget, 300 s sessions and no other limit in the way
        broker = make_broker(
            max_session_seconds_per_owner_per_day=600, session_max_duration=300, max_active_sessions_per_owner=50
        )
        api = Api(broker, handlers)
        # When one owner sends 50 creates at once
        with ThreadPoolExecutor(max_workers=16) as pool:
            responses = list(pool.map(lambda _: api.create(None), range(50)))
        # Then exactly two are admitted and all others are told the budget is spent
        statuses = [r["statusCode"] for r in responses]
        assert statuses.count(201) == 2
        refused = [r for r in responses if r["statusCode"] != 201]
        assert all(problem(r, 429, "budget-exhausted")["limit"] == 600 for r in refused)
        assert all(body_of(r)["used"] == 600 for r in refused)
        assert budget_used(api) == 600
        assert len(broker.upstreams.seen("avaturn.create")) == 2

    def test_the_budget_refusal_waits_until_midnight_utc(self, make_broker, handlers) -> None:
        broker = make_broker(max_session_seconds_per_owner_per_day=300, session_max_duration=300)
        api = Api(broker, handlers)
        assert api.create(None)["statusCode"] == 201
        response = api.create(None)
        problem(response, 429, "budget-exhausted")
        now = int(broker.fake_clock())
        assert int(response["headers"]["Retry-After"]) == 86400 - now % 86400

    def test_a_create_is_clamped_to_what_is_left_and_avaturn_is_told_so(self, make_broker, handlers) -> None:
        # Given 400 s of budget and 300 s sessions
        broker = make_broker(max_session_seconds_per_owner_per_day=400, session_max_duration=300)
        api = Api(broker, handlers)
        assert api.create(None)["statusCode"] == 201
        # When a second session is created, it gets the 100 s that are left, upstream too
        second = body_of(api.create(None))
        assert broker.upstreams.seen("avaturn.create")[-1].body["max_duration"] == 100
        row = broker.dynamodb.get_item(TableName=TABLE, Key=session_key(second["session_id"]))["Item"]
        assert int(row["expires_at"]["N"]) - int(row["created_at"]["N"]) == 100

    def test_less_than_a_minute_left_is_no_session(self, make_broker, handlers) -> None:
        broker = make_broker(max_session_seconds_per_owner_per_day=359, session_max_duration=300)
        api = Api(broker, handlers)
        assert api.create(None)["statusCode"] == 201
        problem(api.create(None), 429, "budget-exhausted")  # 59 s left < 60 s
        assert len(broker.upstreams.seen("avaturn.create")) == 1

    def test_ending_early_refunds_what_was_not_used_and_the_next_create_gets_it(self, make_broker, handlers) -> None:
        # Given a 600 s budget spent by two 300 s sessions
        broker = make_broker(max_session_seconds_per_owner_per_day=600, session_max_duration=300)
        api = Api(broker, handlers)
        first, _ = body_of(api.create(None)), body_of(api.create(None))
        problem(api.create(None), 429, "budget-exhausted")
        # When the first one ends after 100 s
        broker.fake_clock.advance(100)
        assert api.delete(first["session_id"], first["token"])["statusCode"] == 204
        # Then its 200 unused seconds are back, and the next create is admitted with exactly them
        assert budget_used(api) == 400
        assert api.create(None)["statusCode"] == 201
        assert broker.upstreams.seen("avaturn.create")[-1].body["max_duration"] == 200
        assert budget_used(api) == 600

    @pytest.mark.parametrize("failure", [500, "timeout"])
    def test_a_create_that_fails_upstream_gives_its_seconds_back(self, make_broker, handlers, failure) -> None:
        broker = make_broker(FakeUpstreams(fail={"avaturn.create": failure}), max_session_seconds_per_owner_per_day=600)
        Api(broker, handlers).create(None)
        assert budget_used(Api(broker, handlers)) == 0

    def test_the_sweep_refunds_nothing_for_a_session_that_ran_its_course(self, make_broker, handlers) -> None:
        broker = make_broker(max_session_seconds_per_owner_per_day=900, session_max_duration=300)
        api = Api(broker, handlers)
        api.create(None)
        broker.fake_clock.advance(400)
        assert api.cleanup()["terminated"] == 1
        assert budget_used(api) == 300

    def test_the_budget_is_per_owner(self, make_broker, handlers) -> None:
        broker = make_broker(max_session_seconds_per_owner_per_day=300, session_max_duration=300)
        api = Api(broker, handlers)
        assert api.create(None, source_ip="203.0.113.1")["statusCode"] == 201
        assert api.create(None, source_ip="203.0.113.2")["statusCode"] == 201


class TestCreateRate:
    def test_thirty_create_delete_cycles_with_a_rate_of_ten_give_ten_then_rate_limited(
        self, make_broker, handlers
    ) -> None:
        broker = make_broker(max_creates_per_owner_per_minute=10)
        api = Api(broker, handlers)
        statuses = []
        for _ in range(30):
            response = api.create(None)
            statuses.append(response["statusCode"])
            if response["statusCode"] == 201:
                created = body_of(response)
                api.delete(created["session_id"], created["token"])
            else:
                body = problem(response, 429, "rate-limited")
                assert (body["limit"], body["used"]) == (10, 10)
                now = int(broker.fake_clock())
                assert int(response["headers"]["Retry-After"]) == 60 - now % 60
        assert statuses == [201] * 10 + [429] * 20
        assert len(broker.upstreams.seen("avaturn.create")) == 10

    def test_the_next_minute_admits_again(self, make_broker, handlers) -> None:
        broker = make_broker(max_creates_per_owner_per_minute=1, max_active_sessions_per_owner=5)
        api = Api(broker, handlers)
        assert api.create(None)["statusCode"] == 201
        problem(api.create(None), 429, "rate-limited")
        broker.fake_clock.advance(60)
        assert api.create(None)["statusCode"] == 201


class TestBrokerWideCap:
    def test_a_cap_of_three_across_ten_owners_admits_exactly_three(self, make_broker, handlers) -> None:
        broker = make_broker(max_active_sessions_total=3)
        api = Api(broker, handlers)
        owners = [f"203.0.113.{i}" for i in range(10)]
        with ThreadPoolExecutor(max_workers=10) as pool:
            responses = list(pool.map(lambda ip: api.create(None, source_ip=ip), owners))
        assert [r["statusCode"] for r in responses].count(201) == 3
        for refused in (r for r in responses if r["statusCode"] != 201):
            body = problem(refused, 503, "broker-at-capacity")
            assert (body["limit"], body["used"]) == (3, 3)
            assert int(refused["headers"]["Retry-After"]) == 900  # the first session's expires_at
        assert int(broker.dynamodb.get_item(TableName=TABLE, Key=TOTAL_KEY)["Item"]["active"]["N"]) == 3

    def test_an_end_frees_a_broker_wide_slot(self, make_broker, handlers) -> None:
        broker = make_broker(max_active_sessions_total=1)
        api = Api(broker, handlers)
        created = body_of(api.create(None, source_ip="203.0.113.1"))
        problem(api.create(None, source_ip="203.0.113.2"), 503, "broker-at-capacity")
        api.delete(created["session_id"], created["token"], source_ip="203.0.113.1")
        assert api.create(None, source_ip="203.0.113.2")["statusCode"] == 201

    def test_an_expired_session_of_another_owner_is_ended_to_make_room(self, make_broker, handlers) -> None:
        broker = make_broker(max_active_sessions_total=1)
        api = Api(broker, handlers)
        api.create(None, source_ip="203.0.113.1")
        broker.fake_clock.advance(900)
        assert api.create(None, source_ip="203.0.113.2")["statusCode"] == 201
        assert len(broker.upstreams.sessions) == 1


class TestKillSwitch:
    def test_paused_creates_answer_503_until_resumed(self, api: Api) -> None:
        api.broker.creates_switch.set(paused=True, reason="incident 42", now=0)
        problem(api.create(None), 503, "creates-paused")
        assert api.broker.upstreams.requests == []
        api.broker.creates_switch.set(paused=False, reason=None, now=0)
        assert api.create(None)["statusCode"] == 201


class TestWhatAnEndGivesBack:
    def test_v1_rows_finish_without_touching_the_new_counters(self, api: Api) -> None:
        # Given a session row written by v1 (no counted_total, budget_day or open_owner)
        created = body_of(api.create(None))
        api.broker.dynamodb.update_item(
            TableName=TABLE,
            Key=session_key(created["session_id"]),
            UpdateExpression="REMOVE counted_total, open_owner",
        )
        api.broker.dynamodb.update_item(
            TableName=TABLE,
            Key=TOTAL_KEY,
            UpdateExpression="SET active = :z",
            ExpressionAttributeValues={":z": {"N": "0"}},
        )
        # When it ends, the broker-wide count is not taken below what it counted
        assert api.delete(created["session_id"], created["token"])["statusCode"] == 204
        assert int(api.broker.dynamodb.get_item(TableName=TABLE, Key=TOTAL_KEY)["Item"]["active"]["N"]) == 0

    def test_every_end_puts_one_session_ended_event_without_a_token(self, api: Api) -> None:
        created = body_of(api.create(None))
        api.broker.fake_clock.advance(42)
        api.delete(created["session_id"], created["token"])
        (event,) = api.broker.bus.ended()
        assert event == {
            "session_id": created["session_id"],
            "owner": OWNER,
            "profile": "default",
            "engine": "openai-realtime",
            "avatar_id": None,
            "created_at": event["created_at"],
            "ended_at": event["ended_at"],
            "duration_seconds": 42,
            "end_reason": "owner",
        }
        assert created["token"] not in json.dumps(api.broker.bus.entries)

    def test_usage_is_aggregated_as_sessions_end(self, api: Api) -> None:
        for _ in range(2):
            created = body_of(api.create(None))
            api.broker.fake_clock.advance(30)
            api.delete(created["session_id"], created["token"])
        (row,) = api.broker.store.usage(utc_day(int(api.broker.fake_clock())))
        assert row == {
            "day": row["day"],
            "owner": OWNER,
            "engine": "openai-realtime",
            "profile": "default",
            "sessions": 2,
            "seconds": 60,
        }


# -- the budget arithmetic ------------------------------------------------------------------------

_OWNERS: list[str] = []


@given(limit=st.integers(0, 864000), used=st.integers(0, 864000), wanted=st.integers(60, 86400))
def test_a_grant_is_never_negative_never_past_the_limit_and_never_under_a_minute(limit, used, wanted) -> None:
    grant = budget_grant(limit, min(used, limit), wanted)
    assert grant is None or MIN_BUDGET_SECONDS <= grant <= wanted
    assert grant is None or min(used, limit) + grant <= limit
    assert (grant is None) == (limit - min(used, limit) < MIN_BUDGET_SECONDS)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["create", "end", "wait", "sweep"]), st.integers(0, 400)), min_size=1, max_size=12
    )
)
def test_budget_accounting_holds_for_any_sequence_of_creates_ends_and_sweeps(make_broker, handlers, steps) -> None:
    # Given a 900 s budget and 300 s sessions, and any interleaving of creates, owner ends,
    # waits and sweeps (one fresh owner per example: the table outlives an example)
    ip = f"10.0.{len(_OWNERS) // 250}.{len(_OWNERS) % 250 + 1}"
    _OWNERS.append(ip)
    owner = f"ip:{ip}"
    broker = make_broker(
        max_session_seconds_per_owner_per_day=900,
        session_max_duration=300,
        max_active_sessions_per_owner=10,
    )
    api = Api(broker, handlers)
    start = 1_900_000_000
    broker.fake_clock.now = float(start - start % 86400 + 3600)  # early in a UTC day: it cannot roll over
    live: list[dict[str, Any]] = []
    for action, amount in steps:
        if action == "create":
            response = api.create(None, source_ip=ip)
            if response["statusCode"] == 201:
                live.append(body_of(response))
        elif action == "end" and live:
            created = live.pop(amount % len(live))
            api.delete(created["session_id"], created["token"], source_ip=ip)
        elif action == "wait":
            broker.fake_clock.advance(amount)
        else:
            api.cleanup()
        # Then the day's account is never negative, never past the limit, and equals what the
        # open sessions reserved plus what the finished ones used (refunds never exceed a
        # reservation)
        used = budget_used(api, owner)
        assert 0 <= used <= 900
        expected = 0
        for item in (x for x in broker.sessions() if x["owner"]["S"] == owner):
            reserved = int(item.get("reserved_seconds", {}).get("N", "0"))
            if "seconds_used" in item:
                assert 0 <= int(item["seconds_used"]["N"]) <= reserved
                expected += int(item["seconds_used"]["N"])
            else:
                expected += reserved
        assert used == expected
