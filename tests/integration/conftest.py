"""Integration tier: real HTTP to ``sam local start-api`` and ``sam local invoke`` on the project's
Docker engine, with moto server and the upstream simulators. One stack per test session."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from local.stack import ROOT, TABLE, Stack, running

pytestmark = pytest.mark.integration

CANARY_KEYS = {
    "avaturn_api_key": f"avaturn-canary-{secrets.token_hex(8)}",
    "openai_api_key": f"sk-openai-canary-{secrets.token_hex(8)}",
    "cartesia_api_key": f"cartesia-canary-{secrets.token_hex(8)}",
}
# Short upstream timeouts keep the timeout cases quick; the simulator's "hang" is longer.
OVERRIDES = {"UPSTREAM_READ_TIMEOUT": "2", "UPSTREAM_CONNECT_TIMEOUT": "1", "MAX_ACTIVE_SESSIONS_PER_OWNER": "2"}
HANG_SECONDS = 5
STORED_ITEMS: list[dict[str, Any]] = []  # every registry item of the run, for the leak check
ISSUED: list[str] = []  # every engine secret and session token the simulators issued in the run
CLEANUP_EVENT = ROOT / "events" / "cleanup_schedule.json"


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    stack = Stack(
        name="it", api_port=3100, port_base=4110, overrides=OVERRIDES, sim_keys=CANARY_KEYS, lambda_endpoint=True
    )
    with running(stack):
        yield stack


@dataclass
class Local:
    """The stack as a test sees it: the broker's API, the simulators' control API, the registry."""

    stack: Stack
    http: requests.Session

    # -- the broker -----------------------------------------------------------------------
    def create(self, body: Any = None, headers: dict[str, str] | None = None) -> requests.Response:
        data = json.dumps(body) if body is not None else None
        return self.http.post(
            f"{self.stack.api_url}/sessions",
            data=data,
            timeout=40,
            headers={"content-type": "application/json", **(headers or {})},
        )

    def get(self, session_id: str, token: str | None) -> requests.Response:
        return self.http.get(
            f"{self.stack.api_url}/sessions/{session_id}",
            timeout=40,
            headers={"x-session-token": token} if token else {},
        )

    def delete(self, session_id: str, token: str | None) -> requests.Response:
        return self.http.delete(
            f"{self.stack.api_url}/sessions/{session_id}",
            timeout=40,
            headers={"x-session-token": token} if token else {},
        )

    def cleanup(self, *, cold: bool = False) -> dict[str, int]:
        """One run of the scheduled function with a schedule event: through ``sam local invoke``
        (a fresh container, as the schedule starts it) or the warm ``sam local start-lambda``."""
        if cold:
            result: dict[str, int] = self.stack.invoke("CleanupSessionsFunction", CLEANUP_EVENT)
        else:
            result = self.stack.invoke_warm("CleanupSessionsFunction", CLEANUP_EVENT)
        return result

    # -- the simulators -------------------------------------------------------------------
    def control(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, f"{self.stack.control_url}{path}", json=body, timeout=10)
        response.raise_for_status()
        return response.json() if response.content else None

    def fault(self, endpoint: str, kind: str, count: int | None = 1, **spec: Any) -> None:
        self.control("POST", "/faults", {"endpoint": endpoint, "kind": kind, "count": count, **spec})

    def requests_to(self, endpoint: str) -> list[dict[str, Any]]:
        return list(self.control("GET", f"/requests?endpoint={endpoint}")["requests"])

    def upstream_active(self) -> set[str]:
        return {s["id"] for s in self.control("GET", "/sessions")["active"]}

    # -- the registry (moto) --------------------------------------------------------------
    def rows(self) -> list[dict[str, Any]]:
        items = self.stack.aws_client("dynamodb").scan(TableName=TABLE)["Items"]
        return [i for i in items if i["pk"]["S"].startswith("SESSION#")]

    def recorded_active(self) -> set[str]:
        """Avaturn ids the registry holds as open (active or being ended) with an owner."""
        open_states = {"active", "terminating"}
        return {
            r["avaturn_session_id"]["S"]
            for r in self.rows()
            if r["status"]["S"] in open_states and r.get("owner") and "avaturn_session_id" in r
        }

    def fast_forward(self, seconds: int) -> None:
        """Make every open row look ``seconds`` older to the sweep (its due time passes)."""
        db = self.stack.aws_client("dynamodb")
        for row in self.rows():
            if "due_at" in row:
                due = int(row["due_at"]["N"]) - seconds
                db.update_item(
                    TableName=TABLE,
                    Key={"pk": row["pk"]},
                    UpdateExpression="SET due_at = :d",
                    ExpressionAttributeValues={":d": {"N": str(due)}},
                )

    def unaccounted_upstream_sessions(self) -> set[str]:
        return self.upstream_active() - self.recorded_active()


@pytest.fixture
def local(stack: Stack) -> Iterator[Local]:
    """A clean slate per test: simulators reset, registry emptied."""
    db = stack.aws_client("dynamodb")
    for item in db.scan(TableName=TABLE)["Items"]:
        STORED_ITEMS.append(item)  # kept for the leak check at the end of the run
        db.delete_item(TableName=TABLE, Key={"pk": item["pk"]})
    with requests.Session() as http:
        http.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=64))  # the 50-way concurrency tests
        env = Local(stack, http)
        env.control("POST", "/reset")
        yield env
        ISSUED.extend(issued_credentials(env))  # before the next reset forgets them


def issued_credentials(env: Local) -> list[str]:
    issued = env.control("GET", "/secrets")
    return [
        *(s["value"] for s in issued["openai_client_secrets"]),
        *(t["token"] for t in issued["cartesia_tokens"]),
        *(t["token"] for t in issued["avaturn_session_tokens"]),
    ]


def problem(response: requests.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail", "request_id"} <= set(body)
    assert "Traceback" not in response.text
    return body
