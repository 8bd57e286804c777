"""ASGI layers shared by the three upstreams, and the connection-counting uvicorn protocol.

Stack per upstream (outermost first)::

    RecordLayer  -> records every request (method, path, redacted headers, body, status)
    [CORS]       -> Avaturn only, for /_sdk/ paths (so error and fault responses carry CORS too)
    FaultLayer   -> added latency, then the next queued fault for the endpoint
    service app  -> FastAPI app of the upstream
"""

import asyncio
import contextlib
import re
import socket
import struct
from collections.abc import Callable
from typing import Any, cast

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from upstream_sim.config import ENDPOINTS
from upstream_sim.faults import (
    DelayFault,
    DropFault,
    MalformedJsonFault,
    StatusFault,
    WrongSchemaFault,
    malformed_json_response,
    status_fault_response,
    wrong_schema_response,
)
from upstream_sim.state import ConnKey, RequestRecord, SimState

_RECORD_KEY = "upstream_sim.record"
_GENERATION_KEY = "upstream_sim.generation"

_ROUTES: dict[str, list[tuple[re.Pattern[str], str]]] = {
    "openai": [(re.compile(r"^/v1/realtime/client_secrets/?$"), "openai.client_secrets")],
    "cartesia": [(re.compile(r"^/access-token/?$"), "cartesia.access_token")],
    "avaturn": [
        (re.compile(r"^/api/v1/sessions/?$"), "avaturn.create"),
        (re.compile(r"^/api/v1/sessions/[^/]+/?$"), "avaturn.delete"),
        (re.compile(r"^/_sdk/v0/sessions/?$"), "avaturn.sdk"),
    ],
    "control": [],
}


def classify(upstream: str, path: str) -> str:
    """Endpoint name of a request path (``<upstream>.other`` when it matches none)."""
    for pattern, name in _ROUTES[upstream]:
        if pattern.match(path):
            return name
    return f"{upstream}.other"


def connection_key(server: Any, client: Any) -> ConnKey:
    return (tuple(server) if server else None, tuple(client) if client else None)


def make_protocol_class(upstream: str, state: SimState) -> type[H11Protocol]:
    """A uvicorn h11 protocol that counts accepted connections and keeps them findable.

    uvicorn creates one protocol instance per accepted TCP connection, so ``connection_made``
    is the real accept count. The instance is registered under the same (server, client)
    addresses uvicorn puts in the ASGI scope, which lets a ``drop`` fault reach the transport.
    """

    class SimH11Protocol(H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            state.connection_opened(upstream, connection_key(self.server, self.client), self)

        def connection_lost(self, exc: Exception | None) -> None:
            state.connection_closed(upstream, connection_key(self.server, self.client))
            super().connection_lost(exc)

    SimH11Protocol.__name__ = SimH11Protocol.__qualname__ = f"SimH11Protocol_{upstream}"
    return SimH11Protocol


class RecordLayer:
    def __init__(self, app: ASGIApp, upstream: str, state: SimState) -> None:
        self.app = app
        self.upstream = upstream
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = bytearray()
        more_body = True
        while more_body:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more_body = message.get("more_body", False)
        client = scope.get("client")
        record = self.state.record_request(
            upstream=self.upstream,
            endpoint=classify(self.upstream, scope["path"]),
            method=scope["method"],
            path=scope["path"],
            query=scope.get("query_string", b"").decode("latin-1"),
            raw_headers=list(scope["headers"]),
            body=bytes(body),
            client=f"{client[0]}:{client[1]}" if client else None,
        )
        scope[_RECORD_KEY] = record
        scope[_GENERATION_KEY] = self.state.generation
        replayed = False

        async def replay_receive() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.status = int(message["status"])
            await send(message)

        await self.app(scope, replay_receive, recording_send)


class PathDispatch:
    """Send paths with a prefix to one app and everything else to another."""

    def __init__(self, prefix: str, matched: ASGIApp, other: ASGIApp) -> None:
        self.prefix = prefix
        self.matched = matched
        self.other = other

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            await self.matched(scope, receive, send)
        else:
            await self.other(scope, receive, send)


def sdk_cors(app: ASGIApp, origins: tuple[str, ...], origin_regex: str | None) -> ASGIApp:
    return CORSMiddleware(
        app,
        allow_origins=list(origins),
        allow_origin_regex=None if "*" in origins else origin_regex,
        allow_methods=["GET"],
        allow_headers=["x-session-token", "content-type"],
        max_age=600,
    )


class FaultLayer:
    def __init__(self, app: ASGIApp, upstream: str, state: SimState) -> None:
        self.app = app
        self.upstream = upstream
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        record = cast(RequestRecord | None, scope.get(_RECORD_KEY))
        if scope["type"] != "http" or record is None:
            await self.app(scope, receive, send)
            return
        target = ENDPOINTS.get(record.endpoint)
        if target is None or target[1] != scope["method"]:
            await self.app(scope, receive, send)
            return
        generation = int(scope[_GENERATION_KEY])
        latency = self.state.latency.get(record.endpoint, 0.0)
        if latency > 0 and not await self.state.sleep(latency, generation):
            await self._drop(scope, receive, "close")
            return
        fault = self.state.take_fault(record.endpoint)
        if fault is None:
            await self.app(scope, receive, send)
            return
        spec = fault.spec
        record.fault = {"id": fault.id, "kind": spec.kind, "when": spec.when}
        if spec.when == "before":
            if isinstance(spec, DelayFault):
                if await self.state.sleep(spec.seconds, generation):
                    await self.app(scope, receive, send)
                else:
                    await self._drop(scope, receive, "close")
                return
            await self._apply(spec, scope, receive, send)
            return
        # when == "after": process the request for real, then deliver the fault instead.
        captured: list[Message] = []

        async def capture(message: Message) -> None:
            captured.append(message)

        await self.app(scope, receive, capture)
        if isinstance(spec, DelayFault):
            if await self.state.sleep(spec.seconds, generation):
                for message in captured:
                    await send(message)
            else:
                await self._drop(scope, receive, "close")
            return
        await self._apply(spec, scope, receive, send)

    async def _apply(
        self,
        spec: StatusFault | MalformedJsonFault | WrongSchemaFault | DropFault | DelayFault,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        endpoint = cast(RequestRecord, scope[_RECORD_KEY]).endpoint
        if isinstance(spec, DropFault):
            await self._drop(scope, receive, spec.mode)
            return
        if isinstance(spec, StatusFault):
            version = dict(scope["headers"]).get(b"cartesia-version")
            response = status_fault_response(
                self.upstream, spec, version.decode("latin-1") if version is not None else None
            )
        elif isinstance(spec, MalformedJsonFault):
            response = malformed_json_response(endpoint, spec)
        elif isinstance(spec, WrongSchemaFault):
            response = wrong_schema_response(endpoint, spec)
        else:  # pragma: no cover - delays are handled by the caller
            raise AssertionError(spec)
        await response(scope, receive, send)

    async def _drop(self, scope: Scope, receive: Receive, mode: str) -> None:
        """Close the TCP connection without sending any response."""
        conn = self.state.find_connection(self.upstream, connection_key(scope.get("server"), scope.get("client")))
        if conn is None:  # pragma: no cover - the connection is always registered
            raise RuntimeError("connection of the request not found; cannot drop it")
        transport = conn.transport
        if mode == "reset":
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        else:
            transport.close()
        # Wait until uvicorn has seen the disconnect, or it would answer "500" on return.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                while (await receive())["type"] != "http.disconnect":
                    pass


def build_stack(
    upstream: str, app: ASGIApp, state: SimState, wrap_sdk: Callable[[ASGIApp], ASGIApp] | None = None
) -> ASGIApp:
    faulted: ASGIApp = FaultLayer(app, upstream, state)
    if wrap_sdk is not None:
        faulted = PathDispatch("/_sdk/", wrap_sdk(faulted), faulted)
    return RecordLayer(faulted, upstream, state)
