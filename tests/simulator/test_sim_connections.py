"""TCP connections accepted per upstream (counted at accept time by the server)."""

import time
from collections.abc import Callable
from typing import Any

import requests

from tests.simulator.support import CARTESIA_KEY, CARTESIA_VERSION, OPENAI_KEY, Sim, new_client

BODY = {"session": {"type": "realtime", "model": "gpt-realtime"}}


def mint(client_post: Callable[..., Any], sim: Sim) -> int:
    response = client_post(
        f"{sim.openai_url}/realtime/client_secrets", json=BODY, headers={"Authorization": f"Bearer {OPENAI_KEY}"}
    )
    return int(response.status_code)


def accepted(sim: Sim, upstream: str) -> int:
    return int(sim.get("/connections")[upstream]["accepted"])


def test_keep_alive_client_uses_one_connection(sim: Sim) -> None:
    with new_client() as client:
        assert mint(client.post, sim) == 200
        assert mint(client.post, sim) == 200
    assert accepted(sim, "openai") == 1


def test_two_clients_use_two_connections(sim: Sim) -> None:
    with new_client() as first, new_client() as second:
        assert mint(first.post, sim) == 200
        assert mint(second.post, sim) == 200
    assert accepted(sim, "openai") == 2


def test_requests_session_reuses_its_connection(sim: Sim) -> None:
    with requests.Session() as session:
        for _ in range(3):
            assert mint(lambda url, **kw: session.post(url, timeout=5, **kw), sim) == 200
    assert accepted(sim, "openai") == 1


def test_connection_close_header_forces_a_new_connection_each_time(sim: Sim) -> None:
    with new_client() as client:
        for _ in range(2):
            response = client.post(
                f"{sim.openai_url}/realtime/client_secrets",
                json=BODY,
                headers={"Authorization": f"Bearer {OPENAI_KEY}", "Connection": "close"},
            )
            assert response.status_code == 200
    assert accepted(sim, "openai") == 2


def test_counts_are_per_upstream(sim: Sim) -> None:
    with new_client() as client:
        assert mint(client.post, sim) == 200
        token = client.post(
            f"{sim.cartesia_url}/access-token",
            json={"grants": {"agent": True}, "expires_in": 60},
            headers={"Authorization": f"Bearer {CARTESIA_KEY}", "Cartesia-Version": CARTESIA_VERSION},
        )
        assert token.status_code == 200
        counts = sim.get("/connections")
    assert counts["openai"] == {"accepted": 1, "open": 1}
    assert counts["cartesia"] == {"accepted": 1, "open": 1}
    assert counts["avaturn"]["accepted"] == 0


def test_open_connections_and_closing_idle_ones(sim: Sim) -> None:
    with new_client() as client:
        assert mint(client.post, sim) == 200
        assert sim.get("/connections")["openai"]["open"] == 1
        assert sim.post("/connections/close")["closed"] >= 1
        deadline = time.monotonic() + 2
        while sim.get("/connections")["openai"]["open"] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sim.get("/connections")["openai"]["open"] == 0
        # The client notices the closed connection and opens a new one
        assert mint(client.post, sim) == 200
    assert accepted(sim, "openai") == 2


def test_reset_zeroes_the_accept_counters(sim: Sim) -> None:
    with new_client() as client:
        assert mint(client.post, sim) == 200
        sim.post("/reset")
        assert accepted(sim, "openai") == 0
        assert mint(client.post, sim) == 200
    assert accepted(sim, "openai") == 0
