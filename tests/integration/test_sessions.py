"""The contract through the real local API Gateway emulation and Lambda runtime."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.stack import Local, problem

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("engine", ["openai-realtime", "cartesia", "external"])
def test_create_get_terminate_for_each_engine(local: Local, engine: str) -> None:
    # When a session is created
    response = local.create({"engine": engine})
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == {"session_id", "token", "engine", "avatar_id", "expires_at", "profile", "api_host"}
    assert created["profile"] == "concierge"  # the default profile of profiles.example.json
    # Then Avaturn got exactly the request the contract describes
    [create] = local.requests_to("avaturn.create")
    engine_body = create["body"]["conversation_engine"]
    assert engine_body["type"] == engine
    assert create["body"]["max_duration"] == 900
    assert create["body"]["user_absent_timeout"] == 60
    if engine == "openai-realtime":
        [mint] = local.requests_to("openai.client_secrets")
        assert mint["body"]["session"]["model"] == "gpt-realtime"
        assert mint["body"]["expires_after"] == {"anchor": "created_at", "seconds": 600}
    if engine == "cartesia":
        [mint] = local.requests_to("cartesia.access_token")
        assert mint["headers"]["cartesia-version"] == "2025-04-16"
        assert mint["body"] == {"grants": {"agent": True}, "expires_in": 600}
        assert engine_body["agent_id"] == "agent_concierge_example"
    assert len(local.upstream_active()) == 1
    # And the owner can read it and end it
    view = local.get(created["session_id"], created["token"])
    assert view.status_code == 200
    assert view.json()["status"] == "active"
    assert local.delete(created["session_id"], created["token"]).status_code == 204
    assert local.upstream_active() == set()
    ended = local.get(created["session_id"], created["token"]).json()
    assert (ended["status"], ended["end_reason"]) == ("terminated", "owner")
    assert local.delete(created["session_id"], created["token"]).status_code == 204  # idempotent


def test_a_foreign_session_is_404_and_nothing_reaches_avaturn(local: Local) -> None:
    created = local.create().json()
    other = local.create().json()
    assert local.delete(created["session_id"], other["token"]).status_code == 404
    assert local.delete(created["session_id"], None).status_code == 404
    assert local.get(created["session_id"], "forged").status_code == 404
    assert local.requests_to("avaturn.delete") == []
    assert len(local.upstream_active()) == 2


def test_the_cap_answers_429_with_retry_after(local: Local) -> None:
    assert [local.create().status_code for _ in range(2)] == [201, 201]
    third = local.create()
    problem(third, 429)
    assert int(third.headers["retry-after"]) > 0
    assert len(local.requests_to("avaturn.create")) == 2


def test_concurrent_creates_respect_the_cap(local: Local) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(lambda _: local.create().status_code, range(8)))
    assert statuses == [201, 201] + [429] * 6
    assert len(local.upstream_active()) == 2


def test_idempotent_replay(local: Local) -> None:
    key = {"idempotency-key": "d1f0a6b2-7c3e-4f59-a8b4-2e6c9d0f1a37"}  # anonymous mode: a UUIDv4
    first = local.create({"engine": "cartesia"}, headers=key)
    again = local.create({"engine": "cartesia"}, headers=key)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert len(local.requests_to("avaturn.create")) == 1
    problem(local.create({"engine": "external"}, headers=key), 422)


@pytest.mark.parametrize(
    ("raw", "content_type", "status"),
    [
        ("{", "application/json", 400),
        ("x" * 5000, "application/json", 413),
        ("{}", "text/plain", 415),
        ('{"voice": "x"}', "application/json", 422),
    ],
)
def test_bad_input_is_a_4xx_problem(local: Local, raw: str, content_type: str, status: int) -> None:
    response = local.http.post(
        f"{local.stack.api_url}/sessions", data=raw, headers={"content-type": content_type}, timeout=30
    )
    problem(response, status)
    assert local.requests_to("avaturn.create") == []


def test_an_unknown_route_is_api_gateways_403(local: Local) -> None:
    response = local.http.get(f"{local.stack.api_url}/nope", timeout=10)
    assert response.status_code == 403


def test_cleanup_ends_expired_sessions(local: Local) -> None:
    created = [local.create().json() for _ in range(2)]
    local.fast_forward(901)
    assert local.cleanup(cold=True) == {"examined": 2, "terminated": 2, "failed": 0}
    assert local.upstream_active() == set()
    for c in created:
        assert local.get(c["session_id"], c["token"]).json()["end_reason"] == "expired"
