"""Spend control through sam local: the daily budget, the create rate and the broker-wide cap,
with the stack's functions restarted once on these limits (``Stack.reconfigured``). Each test
starts from an empty registry, so the limits of one do not reach into another."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from local.paths import TABLE
from local.stack import Stack
from tests.support.stack import Local, problem
from tests.unit.support import http_event

pytestmark = pytest.mark.integration


def slug(body: dict[str, object]) -> str:
    return str(body["type"]).rsplit(":", 1)[-1]


LIMITS = {
    "MAX_SESSION_SECONDS_PER_OWNER_PER_DAY": "600",
    "SESSION_MAX_DURATION": "300",
    "MAX_ACTIVE_SESSIONS_PER_OWNER": "50",
    "MAX_CREATES_PER_OWNER_PER_MINUTE": "10",
    "MAX_ACTIVE_SESSIONS_TOTAL": "3",
}


@pytest.fixture(scope="module")
def limited(stack: Stack) -> Iterator[Stack]:
    with stack.reconfigured(LIMITS):
        yield stack


@pytest.fixture
def budget(limited: Stack, local: Local) -> Local:
    return local


def test_fifty_parallel_creates_admit_what_the_budget_holds_and_an_early_end_refunds(budget: Local) -> None:
    # Given a 600 s daily budget and 300 s sessions (a rate of 10 per minute and a broker-wide cap
    # of 3 do not come into play: a refused create takes nothing), when one owner sends 50 at once
    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(lambda _: budget.create(), range(50)))
    # Then exactly two are admitted and Avaturn is told 300 s for each; the rest: budget-exhausted
    admitted = [r.json() for r in responses if r.status_code == 201]
    assert len(admitted) == 2
    for refused in (r for r in responses if r.status_code != 201):
        body = problem(refused, 429)
        assert (slug(body), body["limit"], body["used"]) == ("budget-exhausted", 600, 600)
    assert [r["body"]["max_duration"] for r in budget.requests_to("avaturn.create")] == [300, 300]
    # When one ends early, its unused seconds come back and the next create gets exactly them
    first = admitted[0]
    assert budget.delete(first["session_id"], first["token"]).status_code == 204
    [row] = [r for r in budget.rows() if r["session_id"]["S"] == first["session_id"]]
    refund = 300 - int(row["seconds_used"]["N"])
    assert budget.create().status_code == 201
    assert budget.requests_to("avaturn.create")[-1]["body"]["max_duration"] == refund


@pytest.fixture
def rate(limited: Stack, local: Local) -> Local:
    return local


def test_thirty_create_delete_cycles_at_ten_per_minute_give_ten_then_rate_limited(rate: Local) -> None:
    # Given a fresh clock minute with time for 30 cycles in it (the limit is per clock minute)
    if time.time() % 60 > 20:
        time.sleep(60 - time.time() % 60)
    statuses = []
    for _ in range(30):
        response = rate.create()
        statuses.append(response.status_code)
        if response.status_code == 201:
            created = response.json()
            rate.delete(created["session_id"], created["token"])
        else:
            body = problem(response, 429)
            assert (slug(body), body["limit"], body["used"]) == ("rate-limited", 10, 10)
            assert 1 <= int(response.headers["retry-after"]) <= 60
    assert statuses == [201] * 10 + [429] * 20
    assert len(rate.requests_to("avaturn.create")) == 10


@pytest.fixture
def total(limited: Stack, local: Local) -> Local:
    return local


def test_a_cap_of_three_across_ten_owners_admits_exactly_three(total: Local) -> None:
    # Given ten owners (sam local gives every request one source address, so each create goes
    # through the warm runtime with an API Gateway event of its own address)
    results = []
    for owner in range(10):
        event = http_event("create_session", body="{}", headers={"content-type": "application/json"})
        event["requestContext"]["http"]["sourceIp"] = f"203.0.113.{owner + 1}"
        path = total.stack.state / f"create-owner-{owner}.json"
        path.write_text(json.dumps(event))
        results.append(total.stack.invoke_warm("CreateSessionFunction", path))
    # Then exactly three sessions are admitted; the others: 503 broker-at-capacity with the wait
    assert [r["statusCode"] for r in results].count(201) == 3
    for refused in (r for r in results if r["statusCode"] != 201):
        body = json.loads(refused["body"])
        assert (refused["statusCode"], slug(body), body["limit"], body["used"]) == (503, "broker-at-capacity", 3, 3)
        assert int(refused["headers"]["Retry-After"]) > 0
    owners = {r["owner"]["S"] for r in total.rows() if r["status"]["S"] == "active"}
    assert len(owners) == 3
    item = total.stack.aws_client("dynamodb").get_item(TableName=TABLE, Key={"pk": {"S": "TOTAL#active"}})["Item"]
    assert item["active"]["N"] == "3"
