"""Control API: state, records, clock, reset, credential listing."""

import json

import pytest

from tests.simulator.support import AVATURN_KEY, OPENAI_KEY, Sim


def test_health_lists_the_urls(sim: Sim) -> None:
    health = sim.get("/health")
    assert health["ok"] is True
    assert health["urls"]["openai"] == sim.openai_url
    assert health["urls"]["control"] == sim.control_url


def test_state_snapshot_has_every_section(sim: Sim) -> None:
    snapshot = sim.get("/state")
    assert set(snapshot) == {
        "clock",
        "sessions",
        "requests",
        "request_counts",
        "sdk_fetches",
        "connections",
        "secrets",
        "faults",
        "latency",
        "avatars",
    }
    assert set(snapshot["faults"]) == {
        "openai.client_secrets",
        "cartesia.access_token",
        "avaturn.create",
        "avaturn.delete",
        "avaturn.sdk",
    }
    assert set(snapshot["connections"]) == {"avaturn", "openai", "cartesia", "control"}


def test_records_redact_authorization_and_never_contain_the_keys(sim: Sim) -> None:
    sim.create_openai_session()
    sim.create({"conversation_engine": {"type": "openai-realtime", "client_secret": "x"}}, key="wrong-key-canary")
    records = sim.requests()
    assert [r["endpoint"] for r in records] == ["openai.client_secrets", "avaturn.create", "avaturn.create"]
    assert [r["auth_valid"] for r in records] == [True, True, False]
    assert all(r["headers"]["authorization"] == "REDACTED" and r["auth_present"] for r in records)
    text = json.dumps(sim.get("/state"))
    for key in (OPENAI_KEY, AVATURN_KEY, "wrong-key-canary"):
        assert key not in text


def test_records_filter_by_endpoint_and_sequence(sim: Sim) -> None:
    sim.mint_openai()
    sim.mint_cartesia()
    sim.mint_openai()
    all_records = sim.requests()
    assert [r["seq"] for r in all_records] == sorted(r["seq"] for r in all_records)
    assert len(sim.requests("openai.client_secrets")) == 2
    later = sim.get("/requests", since=all_records[0]["seq"])["requests"]
    assert [r["endpoint"] for r in later] == ["cartesia.access_token", "openai.client_secrets"]
    assert sim.get("/requests", upstream="cartesia")["counts"] == {
        "openai.client_secrets": 2,
        "cartesia.access_token": 1,
    }


def test_unknown_paths_and_non_json_bodies_are_recorded(sim: Sim) -> None:
    response = sim.http.post(f"{sim.avaturn_url}/v2/whatever?x=1", content=b"plain text")
    assert response.status_code == 404
    (record,) = sim.requests("avaturn.other")
    assert record["path"] == "/v2/whatever"
    assert record["query"] == "x=1"
    assert record["body"] is None
    assert record["body_raw"] == "plain text"
    assert record["auth_present"] is False


def test_clock_advance_moves_time_and_expires_things(sim: Sim) -> None:
    before = sim.get("/clock")
    after = sim.post("/clock/advance", {"seconds": 3600})
    assert after["offset"] == before["offset"] + 3600
    assert after["now"] >= before["now"] + 3600
    assert sim.control.post("/clock/advance", json={"seconds": -1}).status_code == 422


def test_reset_clears_everything(sim: Sim) -> None:
    sim.create_openai_session()
    sim.mint_cartesia()
    sim.fault("avaturn.create", "status", status=500)
    sim.post("/latency", {"endpoint": "avaturn.delete", "seconds": 0.5})
    sim.post("/avatars", {"gone": ["x"]})
    sim.advance(100)
    sim.post("/reset")
    snapshot = sim.get("/state")
    assert snapshot["sessions"] == {"active": [], "ended": []}
    assert snapshot["requests"] == []
    assert snapshot["sdk_fetches"] == []
    assert snapshot["secrets"] == {"openai_client_secrets": [], "cartesia_tokens": [], "avaturn_session_tokens": []}
    assert all(queue == [] for queue in snapshot["faults"].values())
    assert snapshot["latency"] == {}
    assert snapshot["avatars"] == {"allowed": None, "gone": []}
    assert snapshot["clock"]["offset"] == 0


def test_secrets_lists_every_issued_credential(sim: Sim) -> None:
    created = sim.create_openai_session()
    token = sim.mint_cartesia().json()["token"]
    secrets = sim.get("/secrets")
    assert len(secrets["openai_client_secrets"]) == 1
    assert [t["token"] for t in secrets["cartesia_tokens"]] == [token]
    (session_token,) = secrets["avaturn_session_tokens"]
    assert session_token["session_id"] == created["session_id"]
    assert session_token["token"] == created["token"]


def test_control_can_mint_usable_credentials(sim: Sim) -> None:
    secret = sim.post("/secrets/openai", {"seconds": 30})["value"]
    token = sim.post("/secrets/cartesia", {"grants": {"agent": True}})["token"]
    assert sim.create({"conversation_engine": {"type": "openai-realtime", "client_secret": secret}}).status_code == 200
    engine = {"type": "cartesia", "access_token": token, "agent_id": "a"}
    assert sim.create({"conversation_engine": engine}).status_code == 200
    # Minting through the control API is not an upstream request
    assert [r["endpoint"] for r in sim.requests()] == ["avaturn.create", "avaturn.create"]


def test_session_lookup(sim: Sim) -> None:
    created = sim.create_openai_session()
    assert sim.get(f"/sessions/{created['session_id']}")["status"] == "active"
    assert sim.control.get("/sessions/nope").status_code == 404


@pytest.mark.parametrize("body", [{"allowed": "anna"}, {"gone": [1]}, {"other": []}])
def test_avatar_settings_are_validated(sim: Sim, body: object) -> None:
    assert sim.control.post("/avatars", json=body).status_code == 422


def test_endpoint_catalogue(sim: Sim) -> None:
    assert sim.get("/endpoints")["avaturn.delete"] == {"upstream": "avaturn", "method": "DELETE"}
