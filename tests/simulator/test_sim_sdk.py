"""The web SDK's GET /_sdk/v0/sessions and its CORS behaviour."""

import httpx2

from tests.simulator.support import AVATURN_KEY, Sim, new_client
from upstream_sim import SimConfig, Simulator

PAGE = "http://localhost:5173"
FREE = {"avaturn": 0, "openai": 0, "cartesia": 0, "control": 0}


def preflight(client: httpx2.Client, url: str, origin: str, headers: str = "x-session-token") -> httpx2.Response:
    return client.options(
        f"{url}/_sdk/v0/sessions",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": headers,
        },
    )


def test_sdk_fetch_returns_the_session_and_marks_it_joined(sim: Sim) -> None:
    created = sim.create_openai_session()
    response = sim.sdk(created["token"], origin=PAGE)
    assert response.status_code == 200
    assert response.json() == {
        "id": created["session_id"],
        "limited_access_token": response.json()["limited_access_token"],
        "room_url": f"https://sim.invalid/room/{created['session_id']}",
        "session_config": {"uses_stacked_alpha": False},
    }
    assert response.headers["access-control-allow-origin"] == PAGE
    (session,) = sim.sessions()["active"]
    assert session["joined"] is True
    assert session["sdk_fetches"] == 1
    (fetch,) = sim.get("/sdk-fetches")["sdk_fetches"]
    assert fetch["token"] == created["token"]
    assert fetch["session_id"] == created["session_id"]
    assert fetch["origin"] == PAGE
    assert fetch["status"] == 200


def test_sdk_fetch_without_or_with_an_unknown_token_is_401(sim: Sim) -> None:
    assert sim.sdk(None).status_code == 401
    assert sim.sdk("not-a-token").status_code == 401
    fetches = sim.get("/sdk-fetches")["sdk_fetches"]
    assert [(f["token"], f["status"]) for f in fetches] == [(None, 401), ("not-a-token", 401)]


def test_sdk_fetch_of_an_ended_session_is_404(sim: Sim) -> None:
    created = sim.create_openai_session()
    sim.delete(created["session_id"])
    assert sim.sdk(created["token"]).status_code == 404


def test_the_avaturn_api_key_is_not_a_session_token(sim: Sim) -> None:
    assert sim.sdk(AVATURN_KEY).status_code == 401


def test_cors_preflight_from_a_localhost_origin_is_allowed(sim: Sim) -> None:
    for origin in (PAGE, "http://127.0.0.1:8080", "https://localhost", "http://[::1]:3000"):
        response = preflight(sim.http, sim.avaturn_url, origin)
        assert response.status_code == 200, origin
        assert response.headers["access-control-allow-origin"] == origin
        assert "GET" in response.headers["access-control-allow-methods"]
        assert "x-session-token" in response.headers["access-control-allow-headers"].lower()
    # Preflights are recorded, and never counted as SDK fetches
    records = sim.requests("avaturn.sdk")
    assert [r["method"] for r in records] == ["OPTIONS"] * 4
    assert sim.get("/sdk-fetches")["sdk_fetches"] == []


def test_cors_preflight_from_another_origin_is_refused(sim: Sim) -> None:
    response = preflight(sim.http, sim.avaturn_url, "https://evil.example")
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers
    created = sim.create_openai_session()
    simple = sim.sdk(created["token"], origin="https://evil.example")
    assert "access-control-allow-origin" not in simple.headers


def test_cors_preflight_with_a_header_not_allowed_is_refused(sim: Sim) -> None:
    assert preflight(sim.http, sim.avaturn_url, PAGE, headers="x-session-token, x-admin").status_code == 400


def test_error_responses_carry_cors_headers_too(sim: Sim) -> None:
    response = sim.sdk("nope", origin=PAGE)
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == PAGE


def test_the_server_api_does_not_answer_cors(sim: Sim) -> None:
    response = sim.http.post(
        f"{sim.avaturn_url}/api/v1/sessions",
        json={},
        headers={"Authorization": f"Bearer {AVATURN_KEY}", "Origin": PAGE},
    )
    assert response.status_code == 422
    assert "access-control-allow-origin" not in response.headers


def test_configured_origins_are_allowed() -> None:
    config = SimConfig(cors_origins=("https://app.example",))
    with Simulator(config, ports=FREE) as other, new_client() as client:
        url = other.urls["avaturn"]
        assert preflight(client, url, "https://app.example").status_code == 200
        assert preflight(client, url, PAGE).status_code == 200
        assert preflight(client, url, "https://other.example").status_code == 400


def test_a_wildcard_origin_allows_any_origin() -> None:
    config = SimConfig(cors_origins=("*",))
    with Simulator(config, ports=FREE) as other, new_client() as client:
        response = preflight(client, other.urls["avaturn"], "https://anything.example")
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "*"
