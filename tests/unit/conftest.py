"""Unit tier: handlers in-process with real API Gateway v2 events, AWS through moto (in-process),
upstream HTTP faked at the transport, and no network at all (sockets are blocked)."""

from __future__ import annotations

import copy
import importlib.util
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from moto import mock_aws
from pytest_socket import disable_socket, enable_socket

from broker.cleanup import Sweeper
from broker.clients.avaturn import AvaturnClient
from broker.clients.cartesia import CartesiaClient
from broker.clients.openai_realtime import OpenAIRealtimeClient
from broker.config import Settings
from broker.engines import EngineMinters
from broker.http import make_http_client
from broker.secrets import KeyStore
from broker.service import SessionCreator, SessionReader, SessionTerminator
from broker.store import SessionStore
from local.aws_resources import create_table, put_secret
from tests.unit.fakes import AVATURN, CARTESIA, KEYS, OPENAI, FakeUpstreams

ROOT = Path(__file__).resolve().parents[2]
TABLE, SECRET = "sessions-test", "broker-test-secret"


def pytest_runtest_setup(item: pytest.Item) -> None:
    disable_socket(allow_unix_socket=True)


def pytest_runtest_teardown(item: pytest.Item) -> None:
    enable_socket()


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "broker-test",
        "POWERTOOLS_METRICS_NAMESPACE": "BrokerTest",
        "SESSIONS_TABLE_NAME": TABLE,
        "BROKER_SECRET_ID": SECRET,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    parameters.clear_caches()


class Clock:
    def __init__(self, now: float = 1_900_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Broker:
    """The four use cases wired like ``broker.factory`` does, over moto and fake upstreams."""

    settings: Settings
    upstreams: FakeUpstreams
    clock: Clock
    dynamodb: Any
    secretsmanager: Any
    creator: SessionCreator = field(init=False)
    terminator: SessionTerminator = field(init=False)
    reader: SessionReader = field(init=False)
    sweeper: Sweeper = field(init=False)
    store: SessionStore = field(init=False)

    def __post_init__(self) -> None:
        s, http = self.settings, make_http_client(self.settings, self.upstreams.transport())
        keys = KeyStore(s.broker_secret_id, s.secret_cache_seconds, self.secretsmanager)
        self.keys = keys
        self.store = SessionStore(self.dynamodb, s.sessions_table_name, 86400)
        avaturn = AvaturnClient(http, s.avaturn_api_url, keys.getter("avaturn"))
        minters = EngineMinters(
            settings=s,
            openai=OpenAIRealtimeClient(http, s.openai_base_url, keys.getter("openai")),
            cartesia=CartesiaClient(http, s.cartesia_api_url, s.cartesia_version, keys.getter("cartesia")),
        )
        idempotency = DynamoDBPersistenceLayer(
            table_name=s.sessions_table_name, key_attr="pk", boto3_client=self.dynamodb
        )
        self.creator = SessionCreator(
            settings=s,
            store=self.store,
            avaturn=avaturn,
            mint=minters,
            idempotency_store=idempotency,
            replay_secret=keys.getter("avaturn"),
            clock=self.clock,
        )
        self.terminator = SessionTerminator(settings=s, store=self.store, avaturn=avaturn, clock=self.clock)
        self.reader = SessionReader(settings=s, store=self.store)
        self.sweeper = Sweeper(settings=s, store=self.store, terminator=self.terminator, clock=self.clock)

    def items(self) -> list[dict[str, Any]]:
        return list(self.dynamodb.scan(TableName=self.settings.sessions_table_name)["Items"])

    def sessions(self) -> list[dict[str, Any]]:
        return [i for i in self.items() if i["pk"]["S"].startswith("SESSION#")]

    def active_count(self, owner: str) -> int:
        item = self.dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": f"OWNER#{owner}"}}).get("Item")
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


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any]]:
    with mock_aws():
        dynamodb = Atomic(boto3.client("dynamodb", region_name="us-east-1"))
        secretsmanager = boto3.client("secretsmanager", region_name="us-east-1")
        create_table(dynamodb, TABLE)
        put_secret(secretsmanager, SECRET, KEYS)
        yield dynamodb, secretsmanager


DEFAULTS: dict[str, Any] = {
    "sessions_table_name": TABLE,
    "broker_secret_id": SECRET,
    "avaturn_api_url": AVATURN,
    "openai_base_url": OPENAI,
    "cartesia_api_url": CARTESIA,
    "allowed_engines": ("openai-realtime", "cartesia", "external"),
    "cartesia_agent_id": "agent_123",
    "external_engine_url": "wss://engine.example.test/ws",
    "max_active_sessions_per_owner": 2,
    "session_max_duration": 900,
    "user_absent_timeout": 60,
}


@pytest.fixture
def make_broker(aws: tuple[Any, Any]) -> Callable[..., Broker]:
    def make(upstreams: FakeUpstreams | None = None, **overrides: Any) -> Broker:
        settings = Settings(**{**DEFAULTS, **overrides})
        return Broker(settings, upstreams or FakeUpstreams(), Clock(), *aws)

    return make


@pytest.fixture
def broker(make_broker: Callable[..., Broker]) -> Broker:
    return make_broker()


# -- events and handlers ---------------------------------------------------------------------


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
        event["rawPath"] = f"/sessions/{session_id}"
        event["requestContext"]["http"]["path"] = event["rawPath"]
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


@pytest.fixture(scope="session")
def handlers() -> dict[str, ModuleType]:
    return {
        name: load_handler(name) for name in ("create_session", "terminate_session", "get_session", "cleanup_sessions")
    }


@dataclass
class Api:
    """Calls the real Lambda handlers with API Gateway v2 events."""

    broker: Broker
    handlers: dict[str, ModuleType]

    def create(
        self, body: Any = None, *, raw: str | None = None, headers: dict[str, str] | None = None, **kw: Any
    ) -> dict[str, Any]:
        hdrs = {"content-type": "application/json", **(headers or {})}
        text = raw if raw is not None else (json.dumps(body) if body is not None else None)
        event = http_event("create_session", body=text, headers=hdrs, **kw)
        return self.handlers["create_session"].lambda_handler(event, FakeContext(), creator=self.broker.creator)

    def delete(self, session_id: str, token: str | None = None, **kw: Any) -> dict[str, Any]:
        headers = {"x-session-token": token} if token else {}
        event = http_event("terminate_session", headers=headers, session_id=session_id, **kw)
        return self.handlers["terminate_session"].lambda_handler(
            event, FakeContext(), terminator=self.broker.terminator
        )

    def get(self, session_id: str, token: str | None = None, **kw: Any) -> dict[str, Any]:
        headers = {"x-session-token": token} if token else {}
        event = http_event("get_session", headers=headers, session_id=session_id, **kw)
        return self.handlers["get_session"].lambda_handler(event, FakeContext(), reader=self.broker.reader)

    def cleanup(self, remaining_ms: int = 60_000) -> dict[str, int]:
        event = load_event("cleanup_schedule")
        return self.handlers["cleanup_sessions"].lambda_handler(
            event, FakeContext(remaining_ms=remaining_ms), sweeper=self.broker.sweeper
        )


@pytest.fixture
def api(broker: Broker, handlers: dict[str, ModuleType]) -> Api:
    return Api(broker, handlers)


def body_of(response: dict[str, Any]) -> Any:
    return json.loads(response["body"]) if response.get("body") else None
