"""Avaturn simulator: create / delete sessions, credential checks, expiry."""

from typing import Any

import pytest

from tests.simulator.support import AVATURN_KEY, Sim


def openai_engine(sim: Sim) -> dict[str, Any]:
    return {"type": "openai-realtime", "client_secret": sim.mint_openai().json()["value"]}


def external_engine(**overrides: Any) -> dict[str, Any]:
    return {"type": "external", "url": "wss://agent.example/ws", "audio": {"user": {"sample_rate": 16000}}, **overrides}


# ---- create ---------------------------------------------------------------------------------


def test_creates_an_openai_realtime_session(sim: Sim) -> None:
    # Given a client secret issued by the OpenAI simulator
    engine = openai_engine(sim)
    # When Avaturn is asked for a session bound to it
    response = sim.create({"avatar_id": "anna", "conversation_engine": engine, "max_duration": 600})
    # Then it answers with a session id and a session token
    assert response.status_code == 200, response.text
    data = response.json()
    assert set(data) == {"session_id", "token"}
    # And the session is active with the requested settings and defaults
    (session,) = sim.sessions()["active"]
    assert session["id"] == data["session_id"]
    assert session["token"] == data["token"]
    assert session["engine_type"] == "openai-realtime"
    assert session["engine"] == engine
    assert session["avatar_id"] == "anna"
    assert session["max_duration"] == 600
    assert session["user_absent_timeout"] == 60
    assert session["expires_at"] == pytest.approx(session["created_at"] + 600)
    assert session["absent_deadline"] == pytest.approx(session["created_at"] + 60)
    assert session["joined"] is False
    # And the exact request body is on record
    (record,) = sim.requests("avaturn.create")
    assert record["body"] == {"avatar_id": "anna", "conversation_engine": engine, "max_duration": 600}


def test_creates_a_cartesia_session(sim: Sim) -> None:
    token = sim.mint_cartesia().json()["token"]
    engine = {"type": "cartesia", "access_token": token, "agent_id": "agent_1"}
    response = sim.create({"conversation_engine": engine})
    assert response.status_code == 200, response.text
    (session,) = sim.sessions()["active"]
    assert session["engine_type"] == "cartesia"
    assert session["avatar_id"] is None
    assert session["max_duration"] == 3600


@pytest.mark.parametrize(("rate", "background"), [(16000, "transparent"), (24000, "default")])
def test_creates_an_external_engine_session(sim: Sim, rate: int, background: str) -> None:
    engine = external_engine(audio={"user": {"sample_rate": rate}}, headers={"X-Agent": "1"})
    response = sim.create({"conversation_engine": engine, "user_absent_timeout": 10, "background": background})
    assert response.status_code == 200, response.text
    (session,) = sim.sessions()["active"]
    assert session["engine"] == engine
    assert session["background"] == background


def test_a_client_secret_may_create_several_sessions_until_it_expires(sim: Sim) -> None:
    engine = openai_engine(sim)
    assert sim.create({"conversation_engine": engine}).status_code == 200
    assert sim.create({"conversation_engine": engine}).status_code == 200
    assert len(sim.sessions()["active"]) == 2


def test_rejects_a_client_secret_the_openai_simulator_never_issued(sim: Sim) -> None:
    response = sim.create({"conversation_engine": {"type": "openai-realtime", "client_secret": "ek_forged"}})
    assert response.status_code == 400
    assert "client_secret" in response.json()["detail"]
    assert "ek_forged" not in response.text
    assert sim.sessions()["active"] == []


def test_rejects_an_expired_client_secret(sim: Sim) -> None:
    secret = sim.mint_openai(seconds=10).json()["value"]
    sim.advance(11)
    response = sim.create({"conversation_engine": {"type": "openai-realtime", "client_secret": secret}})
    assert response.status_code == 400
    (issued,) = sim.get("/secrets")["openai_client_secrets"]
    assert issued["expired"] is True


def test_rejects_credentials_of_the_wrong_upstream(sim: Sim) -> None:
    cartesia_token = sim.mint_cartesia().json()["token"]
    openai_secret = sim.mint_openai().json()["value"]
    as_openai = {"type": "openai-realtime", "client_secret": cartesia_token}
    as_cartesia = {"type": "cartesia", "access_token": openai_secret, "agent_id": "a"}
    assert sim.create({"conversation_engine": as_openai}).status_code == 400
    assert sim.create({"conversation_engine": as_cartesia}).status_code == 400


def test_rejects_unissued_expired_or_agentless_cartesia_tokens(sim: Sim) -> None:
    forged = {"type": "cartesia", "access_token": "forged", "agent_id": "a"}
    assert sim.create({"conversation_engine": forged}).status_code == 400
    tts_only = sim.mint_cartesia(grants={"tts": True}).json()["token"]
    response = sim.create({"conversation_engine": {"type": "cartesia", "access_token": tts_only, "agent_id": "a"}})
    assert response.status_code == 400
    assert "agent" in response.json()["detail"]
    short = sim.mint_cartesia(expires_in=5).json()["token"]
    sim.advance(5)
    response = sim.create({"conversation_engine": {"type": "cartesia", "access_token": short, "agent_id": "a"}})
    assert response.status_code == 400


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_rejects_missing_or_wrong_api_key_before_validating_the_body(sim: Sim, key: str | None) -> None:
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    response = sim.http.post(f"{sim.avaturn_url}/api/v1/sessions", content=b"{broken", headers=headers, timeout=5)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "detail" in response.json()


_ENGINE_OK = {"type": "external", "url": "wss://a.example/x", "audio": {"user": {"sample_rate": 16000}}}


@pytest.mark.parametrize(
    ("body", "error_type", "loc"),
    [
        ({}, "missing", ["body", "conversation_engine"]),
        ({"conversation_engine": _ENGINE_OK, "foo": 1}, "extra_forbidden", ["body", "foo"]),
        ({"conversation_engine": _ENGINE_OK, "max_duration": 59}, "greater_than_equal", ["body", "max_duration"]),
        ({"conversation_engine": _ENGINE_OK, "max_duration": 86401}, "less_than_equal", ["body", "max_duration"]),
        ({"conversation_engine": _ENGINE_OK, "max_duration": "600"}, "int_type", ["body", "max_duration"]),
        ({"conversation_engine": _ENGINE_OK, "max_duration": 600.5}, "int_type", ["body", "max_duration"]),
        (
            {"conversation_engine": _ENGINE_OK, "user_absent_timeout": 9},
            "greater_than_equal",
            ["body", "user_absent_timeout"],
        ),
        ({"conversation_engine": _ENGINE_OK, "avatar_id": ""}, "string_too_short", ["body", "avatar_id"]),
        ({"conversation_engine": _ENGINE_OK, "avatar_id": 7}, "string_type", ["body", "avatar_id"]),
        ({"conversation_engine": {"type": "gemini"}}, "union_tag_invalid", ["body", "conversation_engine"]),
        ({"conversation_engine": {"client_secret": "ek_x"}}, "union_tag_not_found", ["body", "conversation_engine"]),
        (
            {"conversation_engine": {"type": "openai-realtime", "client_secret": "ek_x", "model": "m"}},
            "extra_forbidden",
            ["body", "conversation_engine", "openai-realtime", "model"],
        ),
        (
            {"conversation_engine": {"type": "openai-realtime"}},
            "missing",
            ["body", "conversation_engine", "openai-realtime", "client_secret"],
        ),
        (
            {"conversation_engine": {"type": "cartesia", "access_token": "t"}},
            "missing",
            ["body", "conversation_engine", "cartesia", "agent_id"],
        ),
        (
            {"conversation_engine": {**_ENGINE_OK, "url": "https://a.example/x"}},
            "string_pattern_mismatch",
            ["body", "conversation_engine", "external", "url"],
        ),
        (
            {"conversation_engine": {**_ENGINE_OK, "audio": {"user": {"sample_rate": 8000}}}},
            "literal_error",
            ["body", "conversation_engine", "external", "audio", "user", "sample_rate"],
        ),
        (
            {"conversation_engine": {"type": "external", "url": "wss://a.example/x"}},
            "missing",
            ["body", "conversation_engine", "external", "audio"],
        ),
        (
            {"conversation_engine": {**_ENGINE_OK, "headers": {"X": 1}}},
            "string_type",
            ["body", "conversation_engine", "external", "headers", "X"],
        ),
        # background is an enum: "transparent" or "default" (API reference, Create Session)
        ({"conversation_engine": _ENGINE_OK, "background": "#000000"}, "literal_error", ["body", "background"]),
        ({"conversation_engine": _ENGINE_OK, "background": "blurred"}, "literal_error", ["body", "background"]),
        ({"conversation_engine": _ENGINE_OK, "background": {"color": "#000"}}, "literal_error", ["body", "background"]),
        ({"conversation_engine": _ENGINE_OK, "background": "Transparent"}, "literal_error", ["body", "background"]),
    ],
)
def test_validation_errors_are_fastapi_422s(sim: Sim, body: dict[str, Any], error_type: str, loc: list[Any]) -> None:
    response = sim.create(body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list)
    assert {"type": error_type, "loc": loc} in [{"type": d["type"], "loc": d["loc"]} for d in detail]
    assert sim.sessions()["active"] == []


def test_malformed_json_is_a_422(sim: Sim) -> None:
    response = sim.http.post(
        f"{sim.avaturn_url}/api/v1/sessions",
        content=b'{"conversation_engine": ',
        headers={"Authorization": f"Bearer {AVATURN_KEY}", "Content-Type": "application/json"},
        timeout=5,
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


def test_bounds_are_inclusive(sim: Sim) -> None:
    body = {"conversation_engine": _ENGINE_OK, "max_duration": 60, "user_absent_timeout": 10}
    assert sim.create(body).status_code == 200
    assert sim.create({**body, "max_duration": 86400}).status_code == 200


# ---- avatars --------------------------------------------------------------------------------


def test_a_gone_avatar_is_410(sim: Sim) -> None:
    sim.post("/avatars", {"gone": ["old"]})
    response = sim.create({"avatar_id": "old", "conversation_engine": _ENGINE_OK})
    assert response.status_code == 410
    assert sim.create({"avatar_id": "new", "conversation_engine": _ENGINE_OK}).status_code == 200


def test_an_avatar_outside_the_allowed_set_is_410(sim: Sim) -> None:
    sim.post("/avatars", {"allowed": ["anna"]})
    assert sim.create({"avatar_id": "bob", "conversation_engine": _ENGINE_OK}).status_code == 410
    assert sim.create({"avatar_id": "anna", "conversation_engine": _ENGINE_OK}).status_code == 200
    assert sim.create({"conversation_engine": _ENGINE_OK}).status_code == 200


# ---- delete ---------------------------------------------------------------------------------


def test_delete_ends_a_live_session_with_an_empty_200(sim: Sim) -> None:
    created = sim.create_openai_session()
    response = sim.delete(created["session_id"])
    assert response.status_code == 200
    assert response.content == b""
    (ended,) = sim.sessions()["ended"]
    assert ended["end_reason"] == "deleted"
    assert ended["ended_at"] is not None


def test_delete_of_an_already_deleted_session_is_404(sim: Sim) -> None:
    created = sim.create_openai_session()
    assert sim.delete(created["session_id"]).status_code == 200
    response = sim.delete(created["session_id"])
    assert response.status_code == 404
    assert response.json() == {"detail": "Session not found"}


def test_delete_of_an_unknown_session_is_404(sim: Sim) -> None:
    assert sim.delete("00000000-0000-0000-0000-000000000000").status_code == 404


def test_delete_of_a_session_that_ended_by_itself_is_404(sim: Sim) -> None:
    created = sim.create_openai_session()
    sim.advance(61)
    assert sim.delete(created["session_id"]).status_code == 404


def test_delete_requires_the_api_key(sim: Sim) -> None:
    created = sim.create_openai_session()
    assert sim.delete(created["session_id"], key="wrong").status_code == 401
    assert len(sim.sessions()["active"]) == 1


# ---- lifetime -------------------------------------------------------------------------------


def test_a_session_nobody_joins_ends_after_user_absent_timeout(sim: Sim) -> None:
    created = sim.create_openai_session(user_absent_timeout=30)
    sim.advance(29)
    assert len(sim.sessions()["active"]) == 1
    sim.advance(1)
    (ended,) = sim.sessions()["ended"]
    assert ended["id"] == created["session_id"]
    assert ended["end_reason"] == "user_absent"
    assert ended["ended_at"] == pytest.approx(ended["created_at"] + 30)


def test_a_joined_session_lives_until_max_duration(sim: Sim) -> None:
    created = sim.create_openai_session(max_duration=120)
    assert sim.sdk(created["token"]).status_code == 200
    sim.advance(119)
    (active,) = sim.sessions()["active"]
    assert active["joined"] is True
    sim.advance(1)
    (ended,) = sim.sessions()["ended"]
    assert ended["end_reason"] == "max_duration"
    assert ended["ended_at"] == pytest.approx(ended["expires_at"])
    assert sim.sdk(created["token"]).status_code == 404


def test_max_duration_wins_when_it_is_shorter_than_the_absent_timeout(sim: Sim) -> None:
    sim.create_openai_session(max_duration=60, user_absent_timeout=600)
    sim.advance(60)
    (ended,) = sim.sessions()["ended"]
    assert ended["end_reason"] == "max_duration"


def test_control_api_can_force_expire_a_session(sim: Sim) -> None:
    created = sim.create_openai_session()
    ended = sim.post(f"/sessions/{created['session_id']}/expire", {"reason": "provider_error"})
    assert ended["status"] == "ended"
    assert ended["end_reason"] == "provider_error"
    assert sim.delete(created["session_id"]).status_code == 404
    response = sim.control.post(f"/sessions/{created['session_id']}/expire")
    assert response.status_code == 404


def test_unknown_avaturn_route_is_a_fastapi_404(sim: Sim) -> None:
    response = sim.http.get(
        f"{sim.avaturn_url}/api/v1/avatars", headers={"Authorization": f"Bearer {AVATURN_KEY}"}, timeout=5
    )
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}
