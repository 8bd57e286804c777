"""Helpers of the unit tier: the broker's object graph over moto and fake upstreams, API Gateway
v2 events, and a client that calls the real Lambda handlers. Fixtures live in ``conftest.py``."""

from __future__ import annotations

import copy
import importlib.util
import json
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
from botocore.exceptions import ClientError

from broker import factory
from broker.config import Settings
from broker.http import make_http_client
from broker.store import is_session_item, owner_key
from local.aws_resources import put_profiles
from tests.unit.fakes import AVATURN, CARTESIA, OPENAI, FakeUpstreams

ROOT = Path(__file__).resolve().parents[2]
TABLE, SECRET, PROFILES = "sessions-test", "broker-test-secret", "/broker-test/profiles"
HANDLERS = ("create_session", "terminate_session", "get_session", "cleanup_sessions")
PROFILES_DOC: dict[str, Any] = {
    "default_profile": "default",
    "profiles": {
        "default": {
            "engine": "openai-realtime",
            "openai": {"model": "gpt-realtime", "voice": "marin"},
            "cartesia": {"agent_id": "agent_123"},
            "external": {"url": "wss://engine.example.test/ws", "sample_rate": 24000},
        }
    },
}
"""The unit tier's profiles: one default profile that configures every engine, as the broker's
engine settings did before profiles (a legacy ``{"engine": ...}`` request may pick any)."""


class Clock:
    def __init__(self, now: float = 1_900_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class EventBus:
    """An in-memory EventBridge: ``put_events`` records each entry; ``ended()`` gives the
    ``Session Ended`` details put so far."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 - boto3's name
        with self._lock:
            self.entries.extend(Entries)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": str(uuid.uuid4())} for _ in Entries]}

    def ended(self) -> list[dict[str, Any]]:
        return [json.loads(e["Detail"]) for e in self.entries if e["DetailType"] == "Session Ended"]


class Broker(factory.Components):
    """The production object graph (``broker.factory.Components``) over moto, fake upstreams and
    an in-memory event bus. Its profiles document is ``profiles`` (default ``PROFILES_DOC``),
    in moto's Parameter Store; ``set_profiles`` replaces it."""

    def __init__(
        self,
        settings: Settings,
        upstreams: FakeUpstreams,
        clock: Clock,
        dynamodb: Any,
        secretsmanager: Any,
        profiles: dict[str, Any] | str | None = None,
    ):
        self.bus = EventBus()
        http = make_http_client(settings, upstreams.transport())
        ssm = boto3.client("ssm", region_name="us-east-1")
        super().__init__(settings, http, dynamodb, secretsmanager, clock, eventbridge=self.bus, ssm=ssm)
        self.upstreams = upstreams
        self.fake_clock = clock
        self.set_profiles(PROFILES_DOC if profiles is None else profiles)

    def set_profiles(self, document: dict[str, Any] | str) -> None:
        """Store ``document`` (a dict, or JSON text as it is) as the profiles parameter."""
        text = document if isinstance(document, str) else json.dumps(document)
        put_profiles(self.ssm, self.settings.profiles_parameter_name, text)

    def items(self) -> list[dict[str, Any]]:
        return list(self.dynamodb.scan(TableName=self.settings.sessions_table_name)["Items"])

    def sessions(self) -> list[dict[str, Any]]:
        return [i for i in self.items() if is_session_item(i)]

    def active_count(self, owner: str) -> int:
        item = self.dynamodb.get_item(TableName=TABLE, Key=owner_key(owner)).get("Item")
        return int(item["active"]["N"]) if item else 0


class Atomic:
    """Makes each DynamoDB request atomic, as the real service is.

    moto in-process applies an update as a Python read-modify-write, so two threads can lose an
    ``ADD``; DynamoDB never does. One lock per request (not per use case) keeps what the tests
    prove honest: a read-then-write race in the broker would still break the cap tests.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name.startswith("_") or not callable(attr) or name in ("get_waiter", "get_paginator"):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attr(*args, **kwargs)

        return call


Rule = Callable[[str, dict[str, Any]], bool]


def client_error(code: str, operation: str, **extra: Any) -> ClientError:
    """A botocore ``ClientError`` as the real service sends it."""
    return ClientError({"Error": {"Code": code, "Message": f"injected {code}"}, **extra}, operation)


def transaction_conflict(kwargs: dict[str, Any]) -> ClientError:
    """DynamoDB's answer to a TransactWriteItems that raced another transaction on one item:
    cancelled, with ``TransactionConflict`` among the cancellation reasons (moto never does this)."""
    reasons = [{"Code": "None"} for _ in kwargs.get("TransactItems", [])]
    reasons[0] = {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
    return client_error("TransactionCanceledException", "TransactWriteItems", CancellationReasons=reasons)


@dataclass
class RegistryFaults:
    """Wraps the DynamoDB client: ``conflict_share`` of TransactWriteItems calls are cancelled
    with ``TransactionConflict`` before they apply (seeded, so runs repeat), and ``fail(...)``
    makes chosen calls raise. ``calls`` counts every call by operation."""

    client: Any
    conflict_share: float = 0.0
    seed: int = 7
    rules: list[tuple[Rule, Callable[[dict[str, Any]], Exception], list[int]]] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)
    injected: int = 0

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()

    def fail(self, when: Rule, error: Callable[[dict[str, Any]], Exception], times: int = 1_000_000) -> None:
        """Raise ``error(kwargs)`` for the next ``times`` calls for which ``when(operation, kwargs)``."""
        self.rules.append((when, error, [times]))

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.client, name)
        if name.startswith("_") or not callable(attr) or name in ("get_waiter", "get_paginator"):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls[name] = self.calls.get(name, 0) + 1
                for when, error, left in self.rules:
                    if left[0] > 0 and when(name, kwargs):
                        left[0] -= 1
                        self.injected += 1
                        raise error(kwargs)
                if name == "transact_write_items" and self._random.random() < self.conflict_share:
                    self.injected += 1
                    raise transaction_conflict(kwargs)
            return attr(*args, **kwargs)

        return call


DEFAULTS: dict[str, Any] = {
    "sessions_table_name": TABLE,
    "broker_secret_id": SECRET,
    "avaturn_api_url": AVATURN,
    "openai_base_url": OPENAI,
    "cartesia_api_url": CARTESIA,
    "profiles_parameter_name": PROFILES,
    "allowed_engines": ("openai-realtime", "cartesia", "external"),
    "max_active_sessions_per_owner": 2,
    "session_max_duration": 900,
    "user_absent_timeout": 60,
}


@dataclass
class FakeContext:
    function_name: str = "test-function"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    remaining_ms: int = 25_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def load_event(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "events" / f"{name}.json").read_text())


def http_event(
    name: str,
    *,
    body: str | None = None,
    headers: dict[str, str] | None = None,
    session_id: str | None = None,
    source_ip: str = "198.51.100.7",
    sub: str | None = None,
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A sample event from events/ (made with ``sam local generate-event``), adjusted."""
    event = copy.deepcopy(load_event(name))
    event["headers"] = {k.lower(): v for k, v in (headers or {}).items()}
    event["body"] = body
    event["isBase64Encoded"] = False
    event["requestContext"]["http"]["sourceIp"] = source_ip
    event["requestContext"]["requestId"] = str(uuid.uuid4())
    if session_id is not None:
        event["pathParameters"] = {"session_id": session_id}
        event["rawPath"] = event["routeKey"].split(" ", 1)[1].replace("{session_id}", session_id)
        event["requestContext"]["http"]["path"] = event["rawPath"]
    if query is not None:
        event["queryStringParameters"] = query
        event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in query.items())
    if sub is not None:
        event["requestContext"]["authorizer"] = {"jwt": {"claims": {"sub": sub}, "scopes": None}}
    else:
        event["requestContext"].pop("authorizer", None)
    return event


def load_handler(function: str) -> ModuleType:
    path = ROOT / "functions" / function / "app.py"
    spec = importlib.util.spec_from_file_location(f"{function}_app", path)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Api:
    """Calls the real Lambda handlers with API Gateway v2 events."""

    broker: Broker
    handlers: dict[str, ModuleType]

    def call(self, function: str, event: dict[str, Any], context: FakeContext | None = None) -> dict[str, Any]:
        """Invoke a handler's ``lambda_handler(event, context)`` with this broker's use cases
        as the resolver's dependency overrides (left in place, so that concurrent calls of one
        test all see them; the ``_no_overrides`` fixture clears them after each test)."""
        self.handlers[function].app.dependency_overrides = {
            factory.creator: lambda: self.broker.creator,
            factory.terminator: lambda: self.broker.terminator,
            factory.reader: lambda: self.broker.reader,
            factory.lease_keeper: lambda: self.broker.lease_keeper,
            factory.profile_lister: lambda: self.broker.profile_lister,
        }
        return self.handlers[function].lambda_handler(event, context or FakeContext())

    def create(
        self, body: Any = None, *, raw: str | None = None, headers: dict[str, str] | None = None, **kw: Any
    ) -> dict[str, Any]:
        hdrs = {"content-type": "application/json", **(headers or {})}
        text = raw if raw is not None else (json.dumps(body) if body is not None else None)
        event = http_event("create_session", body=text, headers=hdrs, **kw)
        return self.call("create_session", event)

    def delete(self, session_id: str, token: str | None = None, **kw: Any) -> dict[str, Any]:
        headers = {"x-session-token": token} if token else {}
        event = http_event("terminate_session", headers=headers, session_id=session_id, **kw)
        return self.call("terminate_session", event)

    def get(self, session_id: str, token: str | None = None, **kw: Any) -> dict[str, Any]:
        headers = {"x-session-token": token} if token else {}
        event = http_event("get_session", headers=headers, session_id=session_id, **kw)
        return self.call("get_session", event)

    def end(self, session_id: str, body: Any = None, *, raw: str | None = None, **kw: Any) -> dict[str, Any]:
        """POST /sessions/{id}/end as ``navigator.sendBeacon`` sends it (``text/plain``)."""
        headers = kw.pop("headers", {"content-type": "text/plain;charset=UTF-8"})
        text = raw if raw is not None else json.dumps(body)
        event = http_event("end_session", body=text, headers=headers, session_id=session_id, **kw)
        return self.call("terminate_session", event)

    def keepalive(self, session_id: str, token: str | None = None, **kw: Any) -> dict[str, Any]:
        headers = {"x-session-token": token} if token else {}
        event = http_event("keepalive_session", headers=headers, session_id=session_id, **kw)
        return self.call("terminate_session", event)

    def list(self, query: dict[str, str] | None = None, **kw: Any) -> dict[str, Any]:
        event = http_event("list_sessions", query=query if query is not None else {"status": "active"}, **kw)
        return self.call("get_session", event)

    def profiles(self, **kw: Any) -> dict[str, Any]:
        """GET /profiles."""
        return self.call("get_session", http_event("list_profiles", **kw))

    def cleanup(self, remaining_ms: int = 60_000) -> dict[str, int]:
        event = load_event("cleanup_schedule")
        del event  # the schedule's event carries nothing the sweep reads
        return self.handlers["cleanup_sessions"].sweep(self.broker.sweeper, FakeContext(remaining_ms=remaining_ms))


def body_of(response: dict[str, Any]) -> Any:
    return json.loads(response["body"]) if response.get("body") else None
