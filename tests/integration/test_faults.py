"""The fault matrix: every upstream step x every failure mode, through sam local.

Each case must answer a defined status with problem+json (never a stack trace), and after one
cleanup run the simulator must hold no active session that the registry does not hold as open
with an owner.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.stack import Local, problem
from tests.unit.support import http_event

pytestmark = pytest.mark.integration

HANG_SECONDS = 5  # longer than the stack's UPSTREAM_READ_TIMEOUT (2 s; see conftest.py)
FAILURES: dict[str, tuple[dict[str, Any], int]] = {
    "500": ({"kind": "status", "status": 500}, 502),
    "429": ({"kind": "status", "status": 429}, 502),
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
    local.fault(endpoint, count=None, **spec)  # every attempt fails (one retry is allowed)
    problem(local.create({"engine": MINTS[endpoint]}), status)
    assert local.requests_to("avaturn.create") == []
    # minting is retried once when the failure may be transient (not for a 200 with a broken body)
    assert len(local.requests_to(endpoint)) == (1 if failure == "malformed-json" else 2)
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


@pytest.mark.parametrize("failure", FAILURES)
def test_avaturn_delete_failures(local: Local, failure: str) -> None:
    spec, status = FAILURES[failure]
    status = 502 if failure == "malformed-json" else status  # DELETE answers 200 with an empty body
    created = local.create().json()
    local.fault("avaturn.delete", **spec)
    problem(local.delete(created["session_id"], created["token"]), status)
    assert local.get(created["session_id"], created["token"]).json()["status"] == "terminating"
    settle(local)
    # the sweep finished what the owner started
    view = local.get(created["session_id"], created["token"]).json()
    assert (view["status"], view["end_reason"]) == ("terminated", "owner")
    assert local.upstream_active() == set()


def test_secret_missing_is_503(local: Local) -> None:
    event = local.stack.state / "create-event.json"
    event.write_text(json.dumps(http_event("create_session", body="{}", headers={"content-type": "application/json"})))
    response = local.stack.invoke("CreateSessionFunction", event, {"BROKER_SECRET_ID": "no-such-secret"})  # cold
    assert response["statusCode"] == 503
    body = json.loads(response["body"])
    assert body["detail"] == "the broker secret does not exist"
    assert local.requests_to("avaturn.create") == []
    assert [r["status"]["S"] for r in local.rows()] == ["failed"]  # the slot was given back
