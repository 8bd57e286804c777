"""``moto_server`` with DynamoDB faults that real DynamoDB produces and moto never does.

    python local/moto_faults.py -H HOST -p PORT      (moto_server's own arguments)

A WSGI middleware in front of stock moto. Faults are set and read over HTTP on the same port:

    PUT    /_faults/dynamodb  {"conflict_share": 0.3, "seed": 7,
                               "delays": [{"operation": "UpdateItem", "key_prefix": "SESSION#",
                                           "seconds": 30, "count": 1}]}
    GET    /_faults/dynamodb  -> the faults and {"injected": {"conflicts": n, "delays": n}}
    DELETE /_faults/dynamodb  -> no faults

- ``conflict_share``: that share of ``TransactWriteItems`` calls is cancelled before it applies,
  with ``TransactionCanceledException`` and the reason ``TransactionConflict`` on its first item,
  as DynamoDB does when two transactions touch one item at once (DynamoDB developer guide,
  "Transaction conflict handling").
- ``delays``: the next ``count`` calls of ``operation`` whose key (``Key.pk`` or ``Item.pk``)
  starts with ``key_prefix`` wait ``seconds`` before moto handles them: a registry call that
  hangs (the client's timeout, not moto's answer, decides what happens).
"""

from __future__ import annotations

import io
import json
import random
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]
CONTROL_PATH = "/_faults/dynamodb"
TARGET_PREFIX = "DynamoDB_20120810."


class Delay(BaseModel):
    """Hold the next ``count`` matching calls for ``seconds``."""

    model_config = ConfigDict(extra="forbid")

    operation: str = Field(min_length=1)
    key_prefix: str = ""
    seconds: float = Field(ge=0, le=120)
    count: int = Field(default=1, ge=1)


class Faults(BaseModel):
    """The faults in force."""

    model_config = ConfigDict(extra="forbid")

    conflict_share: float = Field(default=0.0, ge=0, le=1)
    seed: int = 0
    delays: list[Delay] = []


class DynamoDBFaults:
    """WSGI middleware injecting ``Faults`` into DynamoDB calls of the wrapped moto app."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app
        self.faults = Faults()
        self.injected = {"conflicts": 0, "delays": 0}
        self._random = random.Random(0)  # noqa: S311 - fault injection, not crypto
        self._lock = threading.Lock()
        # Stock moto is not safe under concurrent DynamoDB requests: a transaction deep-copies the
        # tables it touches while other requests change them ("dictionary changed size during
        # iteration", a 500). DynamoDB applies each request atomically, so requests are serialized.
        self._serial = threading.Lock()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == CONTROL_PATH:
            return self._control(environ, start_response)
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        if not target.startswith(TARGET_PREFIX):
            return self.app(environ, start_response)
        operation = target.removeprefix(TARGET_PREFIX)
        body = _read_body(environ)
        request = json.loads(body or b"{}")
        delay, conflict = self._decide(operation, request)
        if delay:
            time.sleep(delay)
        if conflict:
            return _conflict(request, start_response)
        with self._serial:  # one DynamoDB request at a time, each whole, as DynamoDB applies them
            return list(self.app(environ, start_response))

    def _decide(self, operation: str, request: dict[str, Any]) -> tuple[float, bool]:
        with self._lock:
            delay = 0.0
            for rule in self.faults.delays:
                if rule.count > 0 and rule.operation == operation and _key(request).startswith(rule.key_prefix):
                    rule.count -= 1
                    delay = rule.seconds
                    self.injected["delays"] += 1
                    break
            conflict = operation == "TransactWriteItems" and self._random.random() < self.faults.conflict_share
            if conflict:
                self.injected["conflicts"] += 1
            return delay, conflict

    def _control(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        with self._lock:
            if method == "PUT":
                try:
                    self.faults = Faults.model_validate_json(_read_body(environ))
                except ValueError as exc:
                    return _json(start_response, "422 Unprocessable Entity", {"error": str(exc)})
                self._random = random.Random(self.faults.seed)  # noqa: S311
                self.injected = {"conflicts": 0, "delays": 0}
            elif method == "DELETE":
                self.faults = Faults()
            elif method != "GET":
                return _json(start_response, "405 Method Not Allowed", {"error": "use GET, PUT or DELETE"})
            return _json(start_response, "200 OK", {**self.faults.model_dump(), "injected": dict(self.injected)})


def _read_body(environ: Environ) -> bytes:
    """The request body, put back so the wrapped app can read it again."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body: bytes = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _key(request: dict[str, Any]) -> str:
    item = request.get("Key") or request.get("Item") or {}
    return str(item.get("pk", {}).get("S", ""))


def _conflict(request: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    reasons: list[dict[str, str]] = [{"Code": "None"} for _ in request.get("TransactItems", [])] or [{"Code": "None"}]
    reasons[0] = {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
    codes = ", ".join(r["Code"] for r in reasons)
    body = {
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "message": f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]",
        "CancellationReasons": reasons,
    }
    return _json(start_response, "400 Bad Request", body, "application/x-amz-json-1.0")


def _json(start_response: StartResponse, status: str, body: Any, content_type: str = "application/json") -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(data)))])
    return [data]


def main(argv: list[str]) -> None:
    """Run moto_server (same arguments) with the fault middleware in front of its app, and
    DynamoDB transactions that back up only the items they touch (``benchmarks.moto_server``):
    stock moto deep-copies whole tables per transaction, which at hundreds of rows makes each
    one slow enough for the broker's read timeouts."""
    import moto.server

    from benchmarks.moto_server import install

    install()

    serve = moto.server.run_simple  # type: ignore[attr-defined]

    def serve_with_faults(host: str, port: int, app: WsgiApp, **options: Any) -> None:
        serve(host, port, DynamoDBFaults(app), **options)

    moto.server.run_simple = serve_with_faults  # type: ignore[attr-defined,assignment]
    moto.server.main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
