"""The fault matrix: every upstream step x every failure mode, and the registry's own faults,
through sam local.

Each case must answer a defined status with problem+json (never a stack trace), and after one
cleanup run the simulator must hold no active session that the registry does not hold as open
with an owner.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from local.paths import TABLE
from tests.support.stack import Local, problem
from tests.unit.support import http_event

pytestmark = pytest.mark.integration

HANG_SECONDS = 5  # longer than the stack's UPSTREAM_READ_TIMEOUT (2 s; see conftest.py)
FAILURES: dict[str, tuple[dict[str, Any], int]] = {
    "500": ({"kind": "status", "status": 500}, 502),
    "429": ({"kind": "status", "status": 429, "retry_after": 1}, 503),
    "timeout": ({"kind": "delay", "seconds": HANG_SECONDS}, 504),
    "malformed-json": ({"kind": "malformed_json"}, 502),
    "dropped-connection": ({"kind": "drop"}, 502),
}
MINTS = {"openai.client_secrets": "openai-realtime", "cartesia.access_token": "cartesia"}


def settle(local: Local, *, absent_timeout_passed: bool = False) -> None:
    """One cleanup run (after the claim's grace period), then nothing may be unaccounted for."""
    local.control("DELETE", "/faults")
    local.fast_forward(3600)
    local.cleanup()
    if absent_timeout_passed:
        local.control("POST", "/clock/advance", {"seconds": 61})
    assert local.unaccounted_upstream_sessions() == set()


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("endpoint", MINTS)
def test_mint_failures(local: Local, endpoint: str, failure: str) -> None:
    spec, status = FAILURES[failure]
    local.fault(endpoint, count=None, **spec)  # every attempt fails
    problem(local.create({"engine": MINTS[endpoint]}), status)
    assert local.requests_to("avaturn.create") == []
    # minting is retried (3 tries in all) when the failure may be transient, not for a broken 200
    assert len(local.requests_to(endpoint)) == (1 if failure == "malformed-json" else 3)
    settle(local)


@pytest.mark.parametrize("endpoint", MINTS)
def test_a_single_mint_failure_is_absorbed_by_the_retry(local: Local, endpoint: str) -> None:
    local.fault(endpoint, kind="status", status=503)
    assert local.create({"engine": MINTS[endpoint]}).status_code == 201


@pytest.mark.parametrize("failure", FAILURES)
def test_avaturn_create_failures(local: Local, failure: str) -> None:
    spec, status = FAILURES[failure]
    local.fault("avaturn.create", **spec)
    problem(local.create(), status)
    assert len(local.requests_to("avaturn.create")) == 1  # never retried
    [row] = local.rows()
    assert (row["status"]["S"], row["end_reason"]["S"]) == ("failed", "compensation")
    # A hang may still create the session upstream after we gave up (the simulator does, like a
    # real server would): nobody holds its token and Avaturn ends it after user_absent_timeout.
    settle(local, absent_timeout_passed=failure == "timeout")


def test_avaturn_create_that_times_out_after_creating_leaves_no_joinable_session(local: Local) -> None:
    """Avaturn may create the session and still time out: nobody ever gets its token, and Avaturn
    ends it after user_absent_timeout. There is no list endpoint to find it sooner."""
    local.fault("avaturn.create", kind="delay", seconds=HANG_SECONDS, when="after")
    problem(local.create(), 504)
    orphans = local.unaccounted_upstream_sessions()
    assert len(orphans) == 1
    local.control("POST", "/clock/advance", {"seconds": 61})
    assert local.upstream_active() == set()
    assert local.control("GET", "/sdk-fetches")["sdk_fetches"] == []


@pytest.mark.parametrize("failure", [f for f in FAILURES if f != "malformed-json"])
def test_avaturn_delete_failures(local: Local, failure: str) -> None:
    spec, status = FAILURES[failure]
    created = local.create().json()
    local.fault("avaturn.delete", count=None, **spec)  # every try fails (a DELETE is retried)
    problem(local.delete(created["session_id"], created["token"]), status)
    assert local.get(created["session_id"], created["token"]).json()["status"] == "terminating"
    settle(local)
    # the sweep finished what the owner started
    view = local.get(created["session_id"], created["token"]).json()
    assert (view["status"], view["end_reason"]) == ("terminated", "owner")
    assert local.upstream_active() == set()


@pytest.mark.parametrize("failure", ["500", "dropped-connection"])
def test_a_single_delete_failure_is_absorbed_by_the_retry(local: Local, failure: str) -> None:
    created = local.create().json()
    local.fault("avaturn.delete", **FAILURES[failure][0])
    assert local.delete(created["session_id"], created["token"]).status_code == 204
    assert local.upstream_active() == set()


def test_a_delete_answered_2xx_with_a_broken_body_is_a_success(local: Local) -> None:
    created = local.create().json()
    local.fault("avaturn.delete", kind="malformed_json", when="after")
    assert local.delete(created["session_id"], created["token"]).status_code == 204
    assert local.get(created["session_id"], created["token"]).json()["status"] == "terminated"


# -- every wait inside the deadline ----------------------------------------------------------


def test_a_retry_after_longer_than_the_deadline_is_a_503_and_frees_the_slot(local: Local) -> None:
    # Given OpenAI rate-limits the mint once and asks for 30 s (the function has 25)
    local.fault("openai.client_secrets", kind="status", status=429, retry_after=30)
    # When a create arrives, it answers at once with the upstream's wait, instead of being killed
    response = local.create({"engine": "openai-realtime"})
    problem(response, 503)
    assert response.headers["retry-after"] == "30"
    assert len(local.requests_to("openai.client_secrets")) == 1
    assert local.requests_to("avaturn.create") == []
    # And the slot is free again: two creates (the cap) succeed
    assert [local.create().status_code for _ in range(2)] == [201, 201]


# -- the registry's own faults ---------------------------------------------------------------


def test_fifty_parallel_creates_with_a_cap_of_two_admit_exactly_two_while_transactions_conflict(
    local: Local,
) -> None:
    # Given DynamoDB cancels 30 % of transactions with TransactionConflict (moto never does)
    local.stack.dynamodb_faults({"conflict_share": 0.3, "seed": 11})
    # When one owner sends 50 creates at once
    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(lambda _: local.create().status_code, range(50)))
    # Then exactly two are admitted, every other one is told the cap is reached, none is a 5xx
    assert local.stack.dynamodb_faults(None)["injected"]["conflicts"] > 0
    assert statuses.count(201) == 2
    assert set(statuses) == {201, 429}
    assert len(local.requests_to("avaturn.create")) == 2


def test_a_conflict_after_avaturn_ended_the_session_is_retried_not_a_503(local: Local) -> None:
    created = local.create().json()
    local.stack.dynamodb_faults({"conflict_share": 0.5, "seed": 3})
    assert local.delete(created["session_id"], created["token"]).status_code == 204
    local.stack.dynamodb_faults(None)
    assert local.get(created["session_id"], created["token"]).json()["status"] == "terminated"


def test_one_unreadable_row_does_not_stop_the_sweep(local: Local) -> None:
    # Given a due row another version wrote (a status this one does not know), and an expired session
    bad = "00000000-0000-4000-8000-000000000000"
    local.stack.aws_client("dynamodb").put_item(
        TableName=TABLE,
        Item={
            "pk": {"S": f"SESSION#{bad}"},
            "session_id": {"S": bad},
            "status": {"S": "active"},
            "due_at": {"N": "1"},
        },
    )
    created = local.create().json()
    local.fast_forward(3600)
    # When the sweep runs, it skips the bad row and ends the good one
    assert local.cleanup() == {"examined": 1, "terminated": 1, "failed": 0}
    assert local.get(created["session_id"], created["token"]).json()["status"] == "terminated"
    assert local.upstream_active() == set()


def test_killed_after_create_is_compensated_not_orphaned(local: Local) -> None:
    # Given the registry write that records Avaturn's answer hangs for 30 s (past the function's
    # 25 s): before, the function was killed and the session lived on upstream unrecorded
    local.stack.dynamodb_faults({"delays": [{"operation": "UpdateItem", "key_prefix": "SESSION#", "seconds": 30}]})
    # When a create runs, it answers a 503 problem inside its budget and ends the upstream session
    problem(local.create(), 503)
    assert len(local.requests_to("avaturn.create")) == 1
    assert local.upstream_active() == set()
    # and the slot is free again
    local.stack.dynamodb_faults(None)
    assert [local.create().status_code for _ in range(2)] == [201, 201]


def test_secret_missing_is_503(local: Local) -> None:
    event = local.stack.state / "create-event.json"
    event.write_text(json.dumps(http_event("create_session", body="{}", headers={"content-type": "application/json"})))
    response = local.stack.invoke("CreateSessionFunction", event, {"BROKER_SECRET_ID": "no-such-secret"})  # cold
    assert response["statusCode"] == 503
    body = json.loads(response["body"])
    assert body["detail"] == "the broker secret does not exist"
    assert local.requests_to("avaturn.create") == []
    assert [r["status"]["S"] for r in local.rows()] == ["failed"]  # the slot was given back
