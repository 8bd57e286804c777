"""Cartesia simulator: POST /access-token."""

from typing import Any

import httpx2
import pytest

from tests.simulator.support import CARTESIA_KEY, CARTESIA_VERSION, Sim


def post(
    sim: Sim,
    body: Any,
    key: str | None = CARTESIA_KEY,
    version: str | None = CARTESIA_VERSION,
    content: bytes | None = None,
) -> httpx2.Response:
    headers: dict[str, str] = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    if version is not None:
        headers["Cartesia-Version"] = version
    url = f"{sim.cartesia_url}/access-token"
    if content is not None:
        return sim.http.post(url, content=content, headers=headers, timeout=5)
    return sim.http.post(url, json=body, headers=headers, timeout=5)


def test_issues_an_access_token(sim: Sim) -> None:
    now = sim.get("/clock")["now"]
    response = post(sim, {"grants": {"agent": True}, "expires_in": 120})
    assert response.status_code == 200, response.text
    data = response.json()
    assert set(data) == {"token"}
    (issued,) = sim.get("/secrets")["cartesia_tokens"]
    assert issued["token"] == data["token"]
    assert issued["grants"] == {"agent": True}
    assert issued["cartesia_version"] == CARTESIA_VERSION
    assert now + 120 <= issued["expires_at"] <= now + 121


@pytest.mark.parametrize(
    "grants", [{"tts": True}, {"stt": True, "tts": False}, {"agent": True, "tts": True, "stt": True}]
)
def test_accepts_tts_and_stt_grants(sim: Sim, grants: dict[str, bool]) -> None:
    assert post(sim, {"grants": grants, "expires_in": 60}).status_code == 200


@pytest.mark.parametrize("key", [None, "wrong"])
def test_rejects_missing_or_wrong_key(sim: Sim, key: str | None) -> None:
    response = post(sim, {"grants": {"agent": True}, "expires_in": 60}, key=key)
    assert response.status_code == 401
    assert sim.get("/secrets")["cartesia_tokens"] == []


def test_requires_the_cartesia_version_header(sim: Sim) -> None:
    response = post(sim, {"grants": {"agent": True}, "expires_in": 60}, version=None)
    assert response.status_code == 400
    assert "Cartesia-Version" in response.text


def test_rejects_an_unknown_cartesia_version(sim: Sim) -> None:
    response = post(sim, {"grants": {"agent": True}, "expires_in": 60}, version="2023-01-01")
    assert response.status_code == 400


def test_errors_are_plain_text_before_2026_03_01(sim: Sim) -> None:
    response = post(sim, {"grants": {"agent": True}, "expires_in": 0}, version="2025-04-16")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text.startswith("Bad Request: ")


def test_errors_are_structured_json_from_2026_03_01(sim: Sim) -> None:
    response = post(sim, {"grants": {"agent": True}, "expires_in": 0}, version="2026-03-01")
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"error_code", "title", "message", "request_id"}
    assert body["error_code"] == "invalid_request"
    assert "expires_in" in body["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"grants": {"agent": True}, "expires_in": 0},
        {"grants": {"agent": True}, "expires_in": 3601},
        {"grants": {"agent": True}, "expires_in": "60"},
        {"grants": {"agent": True}, "expires_in": 1.5},
        {"grants": {"agent": True}},
        {"expires_in": 60},
        {"grants": {"agent": "yes"}, "expires_in": 60},
        {"grants": {"agent": True, "admin": True}, "expires_in": 60},
        {"grants": {"agent": True}, "expires_in": 60, "scope": "all"},
        {"grants": [], "expires_in": 60},
        [],
    ],
)
def test_validation_errors_are_400(sim: Sim, body: Any) -> None:
    response = post(sim, body, version="2026-03-01")
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "invalid_request"
    assert sim.get("/secrets")["cartesia_tokens"] == []


def test_bounds_are_inclusive(sim: Sim) -> None:
    assert post(sim, {"grants": {"agent": True}, "expires_in": 1}).status_code == 200
    assert post(sim, {"grants": {"agent": True}, "expires_in": 3600}).status_code == 200


def test_unparseable_body_is_400(sim: Sim) -> None:
    assert post(sim, None, content=b"{nope").status_code == 400
