"""Mutable simulator state: issued credentials, sessions, request records, faults, connections.

All of it lives on one asyncio event loop; handlers and the control API touch it from that loop
only, so no locking is needed.
"""

import asyncio
import json
import secrets
import string
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

from upstream_sim.config import ENDPOINTS, UPSTREAMS, SimConfig
from upstream_sim.faults import FaultSpec

_ALNUM = string.ascii_letters + string.digits
_REDACTED_HEADERS = frozenset({"authorization", "x-api-key", "proxy-authorization"})


def random_alnum(length: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


class SimClock:
    """Wall clock plus an offset that tests move forward (``POST /_control/clock/advance``)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def reset(self) -> None:
        self.offset = 0.0


@dataclass
class ClientSecret:
    value: str
    created_at: float
    expires_at: int
    session: dict[str, Any]

    def to_json(self, now: float) -> dict[str, Any]:
        return {
            "value": self.value,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "expired": now >= self.expires_at,
            "session": self.session,
        }


@dataclass
class CartesiaToken:
    token: str
    created_at: float
    expires_at: float
    grants: dict[str, bool]
    cartesia_version: str

    def to_json(self, now: float) -> dict[str, Any]:
        return {
            "token": self.token,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "expired": now >= self.expires_at,
            "grants": self.grants,
            "cartesia_version": self.cartesia_version,
        }


@dataclass
class AvaturnSession:
    id: str
    token: str
    limited_access_token: str
    engine: dict[str, Any]
    avatar_id: str | None
    max_duration: int
    user_absent_timeout: int
    background: Any
    created_at: float
    joined_at: float | None = None
    sdk_fetches: int = 0
    ended_at: float | None = None
    end_reason: str | None = None

    @property
    def expires_at(self) -> float:
        return self.created_at + self.max_duration

    @property
    def absent_deadline(self) -> float:
        return self.created_at + self.user_absent_timeout

    @property
    def active(self) -> bool:
        return self.ended_at is None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": "active" if self.active else "ended",
            "engine_type": self.engine.get("type"),
            "engine": self.engine,
            "avatar_id": self.avatar_id,
            "max_duration": self.max_duration,
            "user_absent_timeout": self.user_absent_timeout,
            "background": self.background,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "absent_deadline": self.absent_deadline,
            "joined": self.joined_at is not None,
            "joined_at": self.joined_at,
            "sdk_fetches": self.sdk_fetches,
            "ended_at": self.ended_at,
            "end_reason": self.end_reason,
            "token": self.token,
        }


@dataclass
class RequestRecord:
    seq: int
    time: float
    upstream: str
    endpoint: str
    method: str
    path: str
    query: str
    headers: dict[str, str]
    auth_present: bool
    auth_valid: bool
    body: Any
    body_raw: str | None
    client: str | None
    status: int | None = None
    fault: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": self.time,
            "upstream": self.upstream,
            "endpoint": self.endpoint,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "auth_present": self.auth_present,
            "auth_valid": self.auth_valid,
            "body": self.body,
            "body_raw": self.body_raw,
            "client": self.client,
            "status": self.status,
            "fault": self.fault,
        }


@dataclass
class SdkFetch:
    seq: int
    time: float
    token: str | None
    session_id: str | None
    origin: str | None
    status: int

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": self.time,
            "token": self.token,
            "session_id": self.session_id,
            "origin": self.origin,
            "status": self.status,
        }


@dataclass
class ActiveFault:
    id: str
    spec: FaultSpec
    remaining: int | None
    fired: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "remaining": self.remaining, "fired": self.fired, **self.spec.model_dump()}


class ConnectionLike(Protocol):
    """The part of a uvicorn protocol instance the simulator uses."""

    transport: asyncio.Transport

    def shutdown(self) -> None: ...


ConnKey = tuple[Any, Any]


@dataclass
class ConnectionStats:
    accepted: int = 0
    open: dict[ConnKey, ConnectionLike] = field(default_factory=dict)


class SimState:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.clock = SimClock()
        self.connections: dict[str, ConnectionStats] = {name: ConnectionStats() for name in (*UPSTREAMS, "control")}
        self.generation = 0
        self._reset_event = asyncio.Event()
        self._init_resettable()

    def _init_resettable(self) -> None:
        self.client_secrets: dict[str, ClientSecret] = {}
        self.cartesia_tokens: dict[str, CartesiaToken] = {}
        self.sessions: dict[str, AvaturnSession] = {}
        self.sessions_by_token: dict[str, AvaturnSession] = {}
        self.records: deque[RequestRecord] = deque(maxlen=self.config.max_records)
        self.sdk_fetches: list[SdkFetch] = []
        self.faults: dict[str, list[ActiveFault]] = {name: [] for name in ENDPOINTS}
        self.latency: dict[str, float] = {}
        self.avatars_allowed: frozenset[str] | None = self.config.avatars
        self.avatars_gone: frozenset[str] = self.config.gone_avatars
        self._seq = 0

    # ---- lifecycle -------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything (sessions, credentials, records, faults, counters, clock offset).

        Requests still sleeping in a ``delay`` fault or latency are woken and dropped, so they
        cannot leak into the next test. Open keep-alive connections stay open.
        """
        self._init_resettable()
        self.clock.reset()
        for stats in self.connections.values():
            stats.accepted = 0
        self.interrupt_sleepers()

    def interrupt_sleepers(self) -> None:
        self.generation += 1
        self._reset_event.set()
        self._reset_event = asyncio.Event()

    async def sleep(self, seconds: float, generation: int) -> bool:
        """Sleep (real time); False when a reset or shutdown interrupted it."""
        if generation != self.generation:
            return False
        try:
            await asyncio.wait_for(self._reset_event.wait(), seconds)
        except TimeoutError:
            return generation == self.generation
        return False

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # ---- connections -----------------------------------------------------------------------

    def connection_opened(self, upstream: str, key: ConnKey, conn: ConnectionLike) -> None:
        stats = self.connections[upstream]
        stats.accepted += 1
        stats.open[key] = conn

    def connection_closed(self, upstream: str, key: ConnKey) -> None:
        self.connections[upstream].open.pop(key, None)

    def find_connection(self, upstream: str, key: ConnKey) -> ConnectionLike | None:
        return self.connections[upstream].open.get(key)

    def close_idle_connections(self) -> int:
        count = 0
        for name in UPSTREAMS:
            for conn in list(self.connections[name].open.values()):
                conn.shutdown()
                count += 1
        return count

    # ---- records ---------------------------------------------------------------------------

    def record_request(
        self,
        upstream: str,
        endpoint: str,
        method: str,
        path: str,
        query: str,
        raw_headers: list[tuple[bytes, bytes]],
        body: bytes,
        client: str | None,
    ) -> RequestRecord:
        headers: dict[str, str] = {}
        authorization: str | None = None
        for raw_name, raw_value in raw_headers:
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            if name == "authorization":
                authorization = value
            if name in _REDACTED_HEADERS:
                value = "REDACTED"
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        parsed: Any = None
        body_raw: str | None = None
        if body:
            try:
                parsed = json.loads(body)
            except ValueError:
                body_raw = body.decode("utf-8", errors="replace")
        record = RequestRecord(
            seq=self.next_seq(),
            time=self.clock.now(),
            upstream=upstream,
            endpoint=endpoint,
            method=method,
            path=path,
            query=query,
            headers=headers,
            auth_present=authorization is not None,
            auth_valid=authorization is not None and bearer_matches(authorization, self.config.key_for(upstream)),
            body=parsed,
            body_raw=body_raw,
            client=client,
        )
        self.records.append(record)
        return record

    # ---- faults ----------------------------------------------------------------------------

    def add_fault(self, spec: FaultSpec) -> ActiveFault:
        fault = ActiveFault(id=f"fault_{uuid.uuid4().hex[:12]}", spec=spec, remaining=spec.count)
        self.faults[spec.endpoint].append(fault)
        return fault

    def take_fault(self, endpoint: str) -> ActiveFault | None:
        queue = self.faults.get(endpoint)
        if not queue:
            return None
        fault = queue[0]
        fault.fired += 1
        if fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                queue.pop(0)
        return fault

    def clear_faults(self, endpoint: str | None = None) -> None:
        for name in self.faults:
            if endpoint is None or name == endpoint:
                self.faults[name] = []

    # ---- credentials -----------------------------------------------------------------------

    def issue_client_secret(self, seconds: int, session: dict[str, Any]) -> ClientSecret:
        now = self.clock.now()
        secret = ClientSecret(
            value=f"ek_{secrets.token_hex(16)}", created_at=now, expires_at=int(now) + seconds, session=session
        )
        self.client_secrets[secret.value] = secret
        return secret

    def valid_client_secret(self, value: str) -> ClientSecret | None:
        secret = self.client_secrets.get(value)
        if secret is None or self.clock.now() >= secret.expires_at:
            return None
        return secret

    def issue_cartesia_token(self, expires_in: int, grants: dict[str, bool], version: str) -> CartesiaToken:
        now = self.clock.now()
        token = CartesiaToken(
            token=f"ctk_{secrets.token_urlsafe(32)}",
            created_at=now,
            expires_at=now + expires_in,
            grants=grants,
            cartesia_version=version,
        )
        self.cartesia_tokens[token.token] = token
        return token

    def valid_cartesia_token(self, value: str) -> CartesiaToken | None:
        token = self.cartesia_tokens.get(value)
        if token is None or self.clock.now() >= token.expires_at:
            return None
        return token

    # ---- sessions --------------------------------------------------------------------------

    def create_session(
        self,
        engine: dict[str, Any],
        avatar_id: str | None,
        max_duration: int,
        user_absent_timeout: int,
        background: Any,
    ) -> AvaturnSession:
        session = AvaturnSession(
            id=str(uuid.uuid4()),
            token=secrets.token_urlsafe(32),
            limited_access_token=secrets.token_urlsafe(24),
            engine=engine,
            avatar_id=avatar_id,
            max_duration=max_duration,
            user_absent_timeout=user_absent_timeout,
            background=background,
            created_at=self.clock.now(),
        )
        self.sessions[session.id] = session
        self.sessions_by_token[session.token] = session
        return session

    def sweep(self) -> None:
        """End sessions whose max duration passed, or that nobody joined in time."""
        now = self.clock.now()
        for session in self.sessions.values():
            if not session.active:
                continue
            deadlines = [(session.expires_at, "max_duration")]
            if session.joined_at is None:
                deadlines.append((session.absent_deadline, "user_absent"))
            at, reason = min(deadlines)
            if now >= at:
                session.ended_at = at
                session.end_reason = reason

    def end_session(self, session: AvaturnSession, reason: str) -> None:
        session.ended_at = self.clock.now()
        session.end_reason = reason

    def record_sdk_fetch(self, token: str | None, session_id: str | None, origin: str | None, status: int) -> None:
        fetch = SdkFetch(self.next_seq(), self.clock.now(), token, session_id, origin, status)
        self.sdk_fetches.append(fetch)

    # ---- views -----------------------------------------------------------------------------

    def sessions_json(self) -> dict[str, list[dict[str, Any]]]:
        self.sweep()
        return {
            "active": [s.to_json() for s in self.sessions.values() if s.active],
            "ended": [s.to_json() for s in self.sessions.values() if not s.active],
        }

    def connections_json(self) -> dict[str, dict[str, int]]:
        return {name: {"accepted": s.accepted, "open": len(s.open)} for name, s in self.connections.items()}

    def secrets_json(self) -> dict[str, list[dict[str, Any]]]:
        now = self.clock.now()
        return {
            "openai_client_secrets": [s.to_json(now) for s in self.client_secrets.values()],
            "cartesia_tokens": [t.to_json(now) for t in self.cartesia_tokens.values()],
            "avaturn_session_tokens": [
                {"session_id": s.id, "token": s.token, "limited_access_token": s.limited_access_token}
                for s in self.sessions.values()
            ],
        }

    def faults_json(self) -> dict[str, list[dict[str, Any]]]:
        return {name: [f.to_json() for f in queue] for name, queue in self.faults.items()}

    def request_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for record in self.records:
            counts[record.endpoint] = counts.get(record.endpoint, 0) + 1
        return counts

    def clock_json(self) -> dict[str, float]:
        return {"now": self.clock.now(), "offset": self.clock.offset}

    def snapshot(self) -> dict[str, Any]:
        return {
            "clock": self.clock_json(),
            "sessions": self.sessions_json(),
            "requests": [r.to_json() for r in self.records],
            "request_counts": self.request_counts(),
            "sdk_fetches": [f.to_json() for f in self.sdk_fetches],
            "connections": self.connections_json(),
            "secrets": self.secrets_json(),
            "faults": self.faults_json(),
            "latency": dict(self.latency),
            "avatars": self.avatars_json(),
        }

    def avatars_json(self) -> dict[str, Any]:
        allowed = None if self.avatars_allowed is None else sorted(self.avatars_allowed)
        return {"allowed": allowed, "gone": sorted(self.avatars_gone)}


def bearer_matches(authorization: str, key: str) -> bool:
    scheme, _, credential = authorization.partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(credential.encode(), key.encode())
