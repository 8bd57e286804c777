"""In-memory fakes of the three upstream APIs, plugged in at the HTTP transport (httpx2.MockTransport),
so the real adapters (and the real openai SDK) run unchanged."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx2

AVATURN = "https://avaturn.test"
OPENAI = "https://openai.test/v1"
CARTESIA = "https://cartesia.test"
KEYS = {"avaturn_api_key": "av-key-CANARY-1", "openai_api_key": "sk-CANARY-2", "cartesia_api_key": "ck-CANARY-3"}


@dataclass
class Seen:
    method: str
    url: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeUpstreams:
    """Answers like the real services; ``fail[endpoint]`` makes one endpoint misbehave.

    Endpoints: ``openai``, ``cartesia``, ``avaturn.create``, ``avaturn.delete``. A failure is an
    HTTP status (int), ``"timeout"``, ``"drop"``, ``"malformed"`` or ``"schema"``, or a ready
    ``httpx2.Response``. ``fail`` applies to every request; ``script(endpoint, *answers)``
    queues answers for the next requests, one each, before the endpoint answers normally again.
    ``keys`` are the API keys the fakes accept (rotate them to simulate a rotated secret).
    """

    fail: dict[str, int | str | httpx2.Response] = field(default_factory=dict)
    queued: dict[str, list[int | str | httpx2.Response]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=lambda: dict(KEYS))
    requests: list[Seen] = field(default_factory=list)
    sessions: dict[str, str] = field(default_factory=dict)  # avaturn session id -> token
    issued: list[str] = field(default_factory=list)  # every secret/token handed out
    lock: threading.Lock = field(default_factory=threading.Lock)

    def transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(lambda request: self.handle(request))  # late-bound: tests may wrap handle

    def script(self, endpoint: str, *answers: int | str | httpx2.Response) -> None:
        with self.lock:
            self.queued.setdefault(endpoint, []).extend(answers)

    def seen(self, endpoint: str) -> list[Seen]:
        return [r for r in self.requests if _endpoint(r.method, r.url) == endpoint]

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content) if request.content else None
        endpoint = _endpoint(request.method, str(request.url))
        with self.lock:
            self.requests.append(Seen(request.method, str(request.url), dict(request.headers), body))
        with self.lock:
            queue = self.queued.get(endpoint)
            failure = queue.pop(0) if queue else self.fail.get(endpoint)
        if isinstance(failure, httpx2.Response):
            return failure
        if failure == "timeout":
            raise httpx2.ReadTimeout("timed out", request=request)
        if failure == "drop":
            raise httpx2.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        if failure == "malformed":
            return httpx2.Response(200, content=b'{"value": ', headers={"content-type": "application/json"})
        if failure == "schema":
            return httpx2.Response(200, json={"unexpected": True})
        if isinstance(failure, int):
            return httpx2.Response(failure, json={"error": {"message": "injected", "type": "server_error"}})
        return getattr(self, "_" + endpoint.replace(".", "_"))(request, body)

    def _openai(self, request: httpx2.Request, body: Any) -> httpx2.Response:
        if request.headers.get("authorization") != f"Bearer {self.keys['openai_api_key']}":
            return httpx2.Response(401, json={"error": {"message": "bad key", "type": "invalid_request_error"}})
        secret = f"ek_{uuid.uuid4().hex}"
        self.issued.append(secret)
        return httpx2.Response(200, json={"value": secret, "expires_at": 2_000_000_000, "session": body["session"]})

    def _cartesia(self, request: httpx2.Request, body: Any) -> httpx2.Response:
        if request.headers.get("authorization") != f"Bearer {self.keys['cartesia_api_key']}":
            return httpx2.Response(401, json={"message": "unauthorized"})
        token = f"ct_{uuid.uuid4().hex}"
        self.issued.append(token)
        return httpx2.Response(200, json={"token": token})

    def _avaturn_create(self, request: httpx2.Request, body: Any) -> httpx2.Response:
        if request.headers.get("authorization") != f"Bearer {self.keys['avaturn_api_key']}":
            return httpx2.Response(401, json={"detail": "unauthorized"})
        session_id, token = uuid.uuid4().hex, f"avt_{uuid.uuid4().hex}"
        with self.lock:
            self.sessions[session_id] = token
        self.issued.append(token)
        return httpx2.Response(200, json={"session_id": session_id, "token": token})

    def _avaturn_delete(self, request: httpx2.Request, body: Any) -> httpx2.Response:
        if request.headers.get("authorization") != f"Bearer {self.keys['avaturn_api_key']}":
            return httpx2.Response(401, json={"detail": "unauthorized"})
        session_id = str(request.url).rsplit("/", 1)[-1]
        with self.lock:
            if self.sessions.pop(session_id, None) is None:
                return httpx2.Response(404, json={"detail": "Not found"})
        return httpx2.Response(200)


def _endpoint(method: str, url: str) -> str:
    if url.startswith(OPENAI):
        return "openai"
    if url.startswith(CARTESIA):
        return "cartesia"
    return "avaturn.create" if method == "POST" else "avaturn.delete"
