"""Unit tier fixtures: handlers in-process with real API Gateway v2 events, AWS through moto
(in-process), upstream HTTP faked at the transport, and no network at all (sockets are blocked).
The helpers themselves are in ``tests.unit.support``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws
from pytest_socket import disable_socket, enable_socket

from broker.config import Settings
from local.aws_resources import create_table, put_secret
from tests.unit.fakes import KEYS, FakeUpstreams
from tests.unit.support import (
    DEFAULTS,
    HANDLERS,
    PROFILES,
    SECRET,
    TABLE,
    Api,
    Atomic,
    Broker,
    Clock,
    RegistryFaults,
    load_handler,
)


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
        "PROFILES_PARAMETER_NAME": PROFILES,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    parameters.clear_caches()


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any]]:
    with mock_aws():
        dynamodb = RegistryFaults(Atomic(boto3.client("dynamodb", region_name="us-east-1")))
        secretsmanager = boto3.client("secretsmanager", region_name="us-east-1")
        create_table(dynamodb, TABLE)
        put_secret(secretsmanager, SECRET, KEYS)
        yield dynamodb, secretsmanager


@pytest.fixture
def make_broker(aws: tuple[Any, Any]) -> Callable[..., Broker]:
    def make(
        upstreams: FakeUpstreams | None = None, *, profiles: dict[str, Any] | str | None = None, **overrides: Any
    ) -> Broker:
        settings = Settings(**{**DEFAULTS, **overrides})
        return Broker(settings, upstreams or FakeUpstreams(), Clock(), *aws, profiles=profiles)

    return make


@pytest.fixture
def broker(make_broker: Callable[..., Broker]) -> Broker:
    return make_broker()


@pytest.fixture(scope="session")
def handlers() -> dict[str, ModuleType]:
    return {name: load_handler(name) for name in HANDLERS}


@pytest.fixture(autouse=True)
def _no_overrides(handlers: dict[str, ModuleType]) -> Iterator[None]:
    """Each test starts from the production wiring; ``Api`` installs its broker's use cases."""
    yield
    for module in handlers.values():
        if hasattr(module, "app"):
            module.app.dependency_overrides = {}


@pytest.fixture
def api(broker: Broker, handlers: dict[str, ModuleType]) -> Api:
    return Api(broker, handlers)
