"""The local stack as a test sees it: the broker's API, the simulators' control API and the
registry (moto), and a clean slate per test."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import requests

from broker.store import is_session_item
from local.paths import EVENTS, TABLE
from local.stack import Stack
from tests.support.leaks import LeakCheck

CLEANUP_EVENT = EVENTS / "cleanup_schedule.json"


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

    def issued_credentials(self) -> list[str]:
        """Every engine secret and session token the simulators issued since their last reset."""
        issued = self.control("GET", "/secrets")
        return [
            *(s["value"] for s in issued["openai_client_secrets"]),
            *(t["token"] for t in issued["cartesia_tokens"]),
            *(t["token"] for t in issued["avaturn_session_tokens"]),
        ]

    # -- the registry (moto) --------------------------------------------------------------
    def rows(self) -> list[dict[str, Any]]:
        """The registry's session rows (raw DynamoDB items)."""
        items = self.stack.aws_client("dynamodb").scan(TableName=TABLE)["Items"]
        return [i for i in items if is_session_item(i)]

    def recorded_active(self) -> set[str]:
        """Avaturn ids the registry holds as open (active or being ended) with an owner."""
        open_states = {"active", "terminating"}
        return {
            r["avaturn_session_id"]["S"]
            for r in self.rows()
            if r["status"]["S"] in open_states and r.get("owner") and "avaturn_session_id" in r
        }

    def end(self, session_id: str, body: Any) -> requests.Response:
        """POST /sessions/{id}/end as ``navigator.sendBeacon`` sends it: a text/plain body."""
        return self.http.post(
            f"{self.stack.api_url}/sessions/{session_id}/end",
            data=json.dumps(body),
            timeout=40,
            headers={"content-type": "text/plain;charset=UTF-8"},
        )

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


def reset(stack: Stack) -> list[dict[str, Any]]:
    """Empty the stack's registry, clear its DynamoDB faults and reset its simulators; the items
    the registry held."""
    stack.dynamodb_faults(None)
    db = stack.aws_client("dynamodb")
    items: list[dict[str, Any]] = db.scan(TableName=TABLE)["Items"]
    for item in items:
        db.delete_item(TableName=TABLE, Key={"pk": item["pk"]})
    requests.post(f"{stack.control_url}/reset", timeout=10).raise_for_status()
    return items


@contextlib.contextmanager
def clean_slate(stack: Stack, leaks: LeakCheck | None = None) -> Iterator[Local]:
    """The stack with an empty registry and reset simulators. With ``leaks``, the registry's items,
    every response of the broker and, afterwards, the credentials the simulators issued meanwhile
    (before the next reset forgets them) are kept for the end-of-run leak check."""
    removed = reset(stack)
    if leaks is not None:
        leaks.stored_items.extend(removed)
    with requests.Session() as http:
        http.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=64))  # the 50-way concurrency tests
        if leaks is not None:
            responses = leaks.responses

            def keep(response: requests.Response, *args: Any, **kwargs: Any) -> None:
                if response.url.startswith(stack.api_url):
                    responses.append(response.text)

            http.hooks["response"].append(keep)
        local = Local(stack, http)
        yield local
        if leaks is not None:
            leaks.issued.extend(local.issued_credentials())


def problem(response: requests.Response, status: int) -> dict[str, Any]:
    """The RFC 9457 problem body of ``response``, asserting its status and shape."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail", "request_id"} <= set(body)
    assert "Traceback" not in response.text
    return body
