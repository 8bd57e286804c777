"""Fault injection through the control API."""

import json
import threading
import time
from typing import Any

import httpx2
import openai
import pytest
import requests

from tests.simulator.support import AVATURN_KEY, CARTESIA_KEY, OPENAI_KEY, Sim, new_client

EXTERNAL = {
    "conversation_engine": {"type": "external", "url": "wss://a.example/x", "audio": {"user": {"sample_rate": 16000}}}
}


# ---- status ---------------------------------------------------------------------------------


def test_status_fault_answers_once_then_the_endpoint_recovers(sim: Sim) -> None:
    fault = sim.fault("avaturn.create", "status", status=500)
    assert fault["remaining"] == 1
    first = sim.create(EXTERNAL)
    assert first.status_code == 500
    assert first.json() == {"detail": "Internal Server Error"}
    assert sim.sessions()["active"] == []
    assert sim.create(EXTERNAL).status_code == 200
    records = sim.requests("avaturn.create")
    assert [r["status"] for r in records] == [500, 200]
    assert records[0]["fault"] == {"id": fault["id"], "kind": "status", "when": "before"}
    assert records[1]["fault"] is None
    assert sim.get("/faults")["avaturn.create"] == []


def test_429_carries_retry_after_and_an_openai_rate_limit_body(sim: Sim) -> None:
    sim.fault("openai.client_secrets", "status", status=429)
    client = openai.OpenAI(api_key=OPENAI_KEY, base_url=sim.openai_url, max_retries=0, http_client=sim.http)
    with pytest.raises(openai.RateLimitError) as excinfo:
        client.realtime.client_secrets.create(session={"type": "realtime", "model": "gpt-realtime"})
    assert excinfo.value.response.headers["retry-after"] == "1"
    assert excinfo.value.code == "rate_limit_exceeded"


def test_status_fault_options(sim: Sim) -> None:
    sim.fault("avaturn.delete", "status", status=503, retry_after=7)
    response = sim.delete("any")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"
    sim.fault("avaturn.create", "status", status=502)
    response = sim.create(EXTERNAL)
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")
    sim.fault("avaturn.create", "status", status=400, body={"detail": "custom"})
    assert sim.create(EXTERNAL).json() == {"detail": "custom"}


def test_cartesia_status_fault_follows_the_version_format(sim: Sim) -> None:
    sim.fault("cartesia.access_token", "status", status=500, count=2)
    headers = {"Authorization": f"Bearer {CARTESIA_KEY}"}
    body = {"grants": {"agent": True}, "expires_in": 60}
    url = f"{sim.cartesia_url}/access-token"
    new = sim.http.post(url, json=body, headers={**headers, "Cartesia-Version": "2026-03-01"})
    assert new.status_code == 500
    assert new.json()["error_code"] == "internal_error"
    old = sim.http.post(url, json=body, headers={**headers, "Cartesia-Version": "2025-04-16"})
    assert old.status_code == 500
    assert old.text.startswith("Internal Server Error: ")


def test_count_and_until_cleared(sim: Sim) -> None:
    sim.fault("openai.client_secrets", "status", status=503, count=2)
    assert [sim.mint_openai().status_code for _ in range(3)] == [503, 503, 200]
    sim.fault("openai.client_secrets", "status", status=500, count=None)
    assert [sim.mint_openai().status_code for _ in range(3)] == [500, 500, 500]
    assert sim.get("/faults")["openai.client_secrets"][0]["fired"] == 3
    assert sim.control.delete("/faults/openai.client_secrets").status_code == 200
    assert sim.mint_openai().status_code == 200


def test_faults_queue_in_order(sim: Sim) -> None:
    sim.fault("avaturn.create", "status", status=500)
    sim.fault("avaturn.create", "status", status=429)
    assert [sim.create(EXTERNAL).status_code for _ in range(3)] == [500, 429, 200]


def test_status_after_processing_keeps_the_side_effect(sim: Sim) -> None:
    # The secret is minted, but the caller sees a 500: "it may have succeeded".
    sim.fault("openai.client_secrets", "status", status=500, when="after")
    assert sim.mint_openai().status_code == 500
    assert len(sim.get("/secrets")["openai_client_secrets"]) == 1


def test_faults_only_hit_their_endpoint_and_method(sim: Sim) -> None:
    sim.fault("avaturn.delete", "status", status=500)
    assert sim.create(EXTERNAL).status_code == 200
    sim.fault("avaturn.sdk", "status", status=503)
    preflight = sim.http.options(
        f"{sim.avaturn_url}/_sdk/v0/sessions",
        headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status_code == 200
    response = sim.sdk("x", origin="http://localhost:3000")
    assert response.status_code == 503
    assert response.headers["access-control-allow-origin"] == "http://localhost:3000"


# ---- delay / latency ------------------------------------------------------------------------


def test_delay_fires_a_short_client_timeout(sim: Sim) -> None:
    sim.fault("avaturn.create", "delay", seconds=1.0)
    with new_client(timeout=0.2) as client, pytest.raises(httpx2.ReadTimeout):
        client.post(
            f"{sim.avaturn_url}/api/v1/sessions", json=EXTERNAL, headers={"Authorization": f"Bearer {AVATURN_KEY}"}
        )


def test_delay_then_normal_answer(sim: Sim) -> None:
    sim.fault("openai.client_secrets", "delay", seconds=0.15)
    started = time.monotonic()
    response = sim.mint_openai()
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.15


def test_reset_cancels_a_request_sleeping_in_a_delay(sim: Sim) -> None:
    sim.fault("avaturn.create", "delay", seconds=30)
    outcome: dict[str, Any] = {}

    def call() -> None:
        try:
            outcome["status"] = sim.create(EXTERNAL, timeout=10).status_code
        except httpx2.TransportError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=call)
    worker.start()
    deadline = time.monotonic() + 5
    while not sim.requests("avaturn.create") and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    sim.post("/reset")
    worker.join(5)
    assert time.monotonic() - started < 2
    assert isinstance(outcome.get("error"), httpx2.RemoteProtocolError)
    assert sim.sessions() == {"active": [], "ended": []}


def test_latency_is_added_to_every_matching_request(sim: Sim) -> None:
    assert sim.post("/latency", {"endpoint": "avaturn.delete", "seconds": 0.1}) == {"avaturn.delete": 0.1}
    for _ in range(2):
        started = time.monotonic()
        assert sim.delete("unknown").status_code == 404
        assert time.monotonic() - started >= 0.1
    started = time.monotonic()
    assert sim.create(EXTERNAL).status_code == 200
    assert time.monotonic() - started < 0.1
    assert sim.post("/latency", {"endpoint": "avaturn.delete", "seconds": 0}) == {}


# ---- malformed / wrong schema ---------------------------------------------------------------


def test_malformed_json(sim: Sim) -> None:
    sim.fault("openai.client_secrets", "malformed_json")
    response = sim.mint_openai()
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        response.json()
    client = openai.OpenAI(api_key=OPENAI_KEY, base_url=sim.openai_url, max_retries=0, http_client=sim.http)
    sim.fault("openai.client_secrets", "malformed_json")
    with pytest.raises(json.JSONDecodeError):
        client.realtime.client_secrets.create(session={"type": "realtime", "model": "gpt-realtime"})


def test_wrong_schema(sim: Sim) -> None:
    sim.fault("avaturn.create", "wrong_schema")
    response = sim.create(EXTERNAL)
    assert response.status_code == 200
    assert "session_id" not in response.json()
    sim.fault("cartesia.access_token", "wrong_schema", body={"token": 42})
    assert sim.mint_cartesia().json() == {"token": 42}


# ---- drop -----------------------------------------------------------------------------------


def test_drop_is_a_connection_error_for_httpx2(sim: Sim) -> None:
    sim.fault("avaturn.create", "drop")
    with pytest.raises(httpx2.RemoteProtocolError):
        sim.create(EXTERNAL)
    (record,) = sim.requests("avaturn.create")
    assert record["status"] is None
    assert record["fault"]["kind"] == "drop"
    assert sim.sessions()["active"] == []
    # The shared client recovers on a new connection
    assert sim.create(EXTERNAL).status_code == 200


def test_drop_is_a_connection_error_for_requests(sim: Sim) -> None:
    sim.fault("avaturn.delete", "drop", count=2)
    with requests.Session() as session:
        for _ in range(2):
            with pytest.raises(requests.ConnectionError):
                session.delete(
                    f"{sim.avaturn_url}/api/v1/sessions/x",
                    headers={"Authorization": f"Bearer {AVATURN_KEY}"},
                    timeout=5,
                )


def test_drop_with_reset(sim: Sim) -> None:
    sim.fault("cartesia.access_token", "drop", mode="reset")
    with pytest.raises(httpx2.TransportError):
        sim.mint_cartesia()


def test_drop_after_processing_leaves_a_live_session(sim: Sim) -> None:
    sim.fault("avaturn.create", "drop", when="after")
    with pytest.raises(httpx2.RemoteProtocolError):
        sim.create(EXTERNAL)
    (session,) = sim.sessions()["active"]
    assert session["engine_type"] == "external"


def test_openai_sdk_sees_a_drop_as_a_connection_error(sim: Sim) -> None:
    sim.fault("openai.client_secrets", "drop")
    client = openai.OpenAI(api_key=OPENAI_KEY, base_url=sim.openai_url, max_retries=0, http_client=sim.http)
    with pytest.raises(openai.APIConnectionError):
        client.realtime.client_secrets.create(session={"type": "realtime", "model": "gpt-realtime"})


# ---- control validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"endpoint": "avaturn.list", "kind": "status", "status": 500},
        {"endpoint": "avaturn.create", "kind": "explode"},
        {"endpoint": "avaturn.create", "kind": "status"},
        {"endpoint": "avaturn.create", "kind": "status", "status": 200},
        {"endpoint": "avaturn.create", "kind": "delay", "seconds": -1},
        {"endpoint": "avaturn.create", "kind": "drop", "count": 0},
        {"endpoint": "avaturn.create", "kind": "drop", "colour": "red"},
    ],
)
def test_invalid_fault_specs_are_rejected(sim: Sim, body: dict[str, Any]) -> None:
    assert sim.control.post("/faults", json=body).status_code == 422
    assert all(queue == [] for queue in sim.get("/faults").values())


def test_clear_all_faults(sim: Sim) -> None:
    sim.fault("avaturn.create", "status", status=500, count=None)
    sim.fault("openai.client_secrets", "drop", count=None)
    assert sim.control.delete("/faults").status_code == 200
    assert sim.create(EXTERNAL).status_code == 200
    assert sim.mint_openai().status_code == 200
