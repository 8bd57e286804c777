"""Client lifecycle through sam local (issue 11): a lapsed lease frees the slot on the owner's next
create and ends the old session as ``abandoned``; Retry-After is the real wait; the keepalive;
the beacon route as a CORS simple request. The stack's functions run with one session per owner
and the shortest lease (``Stack.reconfigured``); moto and the functions use real time."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime

import pytest
import requests

from local.stack import Stack
from tests.support.stack import Local, problem

pytestmark = pytest.mark.integration

LEASE = 15
ORIGIN = "http://localhost:5173"  # the template's default CorsAllowedOrigins, which the stack keeps


@pytest.fixture(scope="module")
def leased_stack(stack: Stack) -> Iterator[Stack]:
    with stack.reconfigured({"SESSION_LEASE_SECONDS": str(LEASE), "MAX_ACTIVE_SESSIONS_PER_OWNER": "1"}):
        yield stack


@pytest.fixture
def leased(leased_stack: Stack, local: Local) -> Local:
    return local


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()))


def end(local: Local, session_id: str, body: object, headers: dict[str, str] | None = None) -> requests.Response:
    """POST /sessions/{id}/end as ``navigator.sendBeacon`` sends it: text/plain, no other header."""
    return local.http.post(
        f"{local.stack.api_url}/sessions/{session_id}/end",
        data=json.dumps(body),
        timeout=40,
        headers={"content-type": "text/plain;charset=UTF-8", **(headers or {})},
    )


def test_a_lapsed_lease_frees_the_slot_on_the_next_create_and_retry_after_is_the_real_wait(leased: Local) -> None:
    # Given the owner's only slot held by a session whose page stopped renewing its lease
    old = leased.create().json()
    lease_ends = epoch(leased.get(old["session_id"], old["token"]).json()["lease_expires_at"])
    [row] = leased.rows()
    avaturn_id = row["avaturn_session_id"]["S"]

    # When the owner creates again at once: 429, and Retry-After is what is left of the lease
    sent = time.time()
    refused = leased.create()
    answered = time.time()
    body = problem(refused, 429)
    assert (body["limit"], body["used"]) == (1, 1)
    retry_after = int(refused.headers["retry-after"])
    # (the broker counts whole seconds: its "now" was between sending and answering, rounded down)
    assert lease_ends - answered - 1 <= retry_after <= lease_ends - sent + 1, (retry_after, lease_ends - sent)
    assert 1 <= retry_after <= LEASE

    # Then two seconds short of that wait the slot is still taken (and nothing was ended) ...
    sleep_until(sent + retry_after - 2)
    problem(leased.create(), 429)
    assert leased.requests_to("avaturn.delete") == []
    # ... and once it has passed, the next create gets the slot at its first try
    sleep_until(answered + retry_after)
    fresh = leased.create()
    assert fresh.status_code == 201, fresh.text

    # And the old session was ended upstream first, with end reason abandoned
    [delete] = leased.requests_to("avaturn.delete")
    assert delete["path"] == f"/api/v1/sessions/{avaturn_id}"
    assert delete["status"] == 200
    view = leased.get(old["session_id"], old["token"]).json()
    assert (view["status"], view["end_reason"]) == ("terminated", "abandoned")
    assert leased.unaccounted_upstream_sessions() == set()
    new = fresh.json()
    assert leased.delete(new["session_id"], new["token"]).status_code == 204


def test_keepalive_renews_the_lease_and_answers_404_and_409(leased: Local) -> None:
    created = leased.create().json()
    url = f"{leased.stack.api_url}/sessions/{created['session_id']}/keepalive"

    def keepalive(token: str | None) -> requests.Response:
        return leased.http.post(url, timeout=40, headers={"x-session-token": token} if token else {})

    before = time.time()
    renewed = keepalive(created["token"])
    assert renewed.status_code == 200, renewed.text
    until = epoch(renewed.json()["lease_expires_at"])
    assert before + LEASE - 1 <= until <= time.time() + LEASE
    assert (
        leased.get(created["session_id"], created["token"]).json()["lease_expires_at"]
        == (renewed.json()["lease_expires_at"])
    )
    problem(keepalive("forged"), 404)
    problem(keepalive(None), 404)
    assert end(leased, created["session_id"], {"token": created["token"], "reason": "user"}).status_code == 204
    assert problem(keepalive(created["token"]), 409)["type"].endswith(":session-ended")


def test_the_beacon_route_is_a_cors_simple_request_and_the_keepalive_preflight_is_allowed(leased: Local) -> None:
    created = leased.create().json()
    # The keepalive sends X-Session-Token, so the browser asks first; the API allows it
    preflight = leased.http.options(
        f"{leased.stack.api_url}/sessions/{created['session_id']}/keepalive",
        timeout=40,
        headers={
            "origin": ORIGIN,
            "access-control-request-method": "POST",
            "access-control-request-headers": "x-session-token",
        },
    )
    assert preflight.status_code in (200, 204)
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "x-session-token" in preflight.headers["access-control-allow-headers"].lower()
    # The beacon needs no preflight: a POST with a text/plain body and no other header
    beacon = end(
        leased,
        created["session_id"],
        {"token": created["token"], "reason": "client_error", "error": "limits_exceeded"},
        headers={"origin": ORIGIN},
    )
    assert beacon.status_code == 204, beacon.text
    assert beacon.headers["access-control-allow-origin"] == ORIGIN
    assert leased.upstream_active() == set()
    view = leased.get(created["session_id"], created["token"]).json()
    assert (view["end_reason"], view["client_error"]) == ("client_error", "limits_exceeded")


def test_listing_sessions_needs_jwt_mode(leased: Local) -> None:
    leased.create()
    listed = leased.http.get(f"{leased.stack.api_url}/sessions", params={"status": "active"}, timeout=40)
    assert problem(listed, 401)["type"].endswith(":unauthenticated")
