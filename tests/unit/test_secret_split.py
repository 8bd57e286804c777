"""The optional engine secret (``ENGINE_SECRET_ID``): the engine keys come from it, the Avaturn key
from the broker secret, so only the create function needs to read the engine keys. Without it (or
when it names the broker secret) one secret holds every key, as before."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import httpx2
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from broker.config import Settings
from broker.errors import ConfigurationError
from broker.factory import Components
from broker.secrets import KeyStore

BROKER, ENGINE = "broker-keys", "engine-keys"
AVATURN_ONLY = {"avaturn_api_key": "av-from-broker"}
ENGINE_KEYS = {"openai_api_key": "sk-from-engine", "cartesia_api_key": "ck-from-engine"}
ALL_KEYS = {"avaturn_api_key": "av-all", "openai_api_key": "sk-all", "cartesia_api_key": "ck-all"}


@pytest.fixture
def secretsmanager() -> Iterator[Any]:
    parameters.clear_caches()
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1")
    parameters.clear_caches()


@pytest.fixture
def reads(secretsmanager: Any) -> list[str]:
    """The SecretId of every GetSecretValue call the client makes."""
    seen: list[str] = []
    secretsmanager.meta.events.register(
        "provide-client-params.secrets-manager.GetSecretValue", lambda params, **_: seen.append(params["SecretId"])
    )
    return seen


def put(client: Any, name: str, value: dict[str, str]) -> str:
    return str(client.create_secret(Name=name, SecretString=json.dumps(value))["ARN"])


def test_engine_keys_come_from_the_engine_secret_and_the_avaturn_key_from_the_broker_secret(
    secretsmanager: Any, reads: list[str]
) -> None:
    # Given a broker secret with a stale OpenAI key of its own, and an engine secret
    put(secretsmanager, BROKER, {**AVATURN_ONLY, "openai_api_key": "sk-stale-in-broker"})
    put(secretsmanager, ENGINE, ENGINE_KEYS)
    keys = KeyStore(BROKER, 300, secretsmanager, engine_secret_id=ENGINE)

    # When each key is read
    got = {name: keys.key(name) for name in ("avaturn", "openai", "cartesia")}

    # Then each comes from its own secret, and each secret was read once
    assert got == {"avaturn": "av-from-broker", "openai": "sk-from-engine", "cartesia": "ck-from-engine"}
    assert sorted(reads) == [BROKER, ENGINE]


def test_the_avaturn_key_never_needs_the_engine_secret(secretsmanager: Any, reads: list[str]) -> None:
    # Given an engine secret this function may not read (here: it does not exist at all)
    put(secretsmanager, BROKER, AVATURN_ONLY)
    keys = KeyStore(BROKER, 300, secretsmanager, engine_secret_id=ENGINE)

    # When terminate or cleanup read the Avaturn key, then something asks for an engine key
    avaturn = keys.key("avaturn")
    with pytest.raises(ConfigurationError, match="engine secret"):
        keys.key("openai")

    # Then the Avaturn key came without touching the engine secret, and the failure names it
    assert avaturn == "av-from-broker"
    assert reads == [BROKER, ENGINE]


def test_an_engine_key_missing_from_the_engine_secret_is_not_taken_from_the_broker_secret(
    secretsmanager: Any,
) -> None:
    # Given an engine secret without a Cartesia key, and a broker secret that still has one
    put(secretsmanager, BROKER, ALL_KEYS)
    put(secretsmanager, ENGINE, {"openai_api_key": "sk-from-engine"})
    keys = KeyStore(BROKER, 300, secretsmanager, engine_secret_id=ENGINE)

    # When the Cartesia key is read, then it is "not configured" (no silent fallback)
    with pytest.raises(ConfigurationError, match="cartesia API key is not configured"):
        keys.key("cartesia")


@pytest.mark.parametrize("engine_secret_id", ["", BROKER])
def test_one_secret_holds_every_key_when_no_other_engine_secret_is_named(
    secretsmanager: Any, reads: list[str], engine_secret_id: str
) -> None:
    # Given the v1 single-secret setup (no engine secret, or the broker secret named twice)
    put(secretsmanager, BROKER, ALL_KEYS)
    keys = KeyStore(BROKER, 300, secretsmanager, engine_secret_id=engine_secret_id)

    # When every key is read
    got = [keys.key(name) for name in ("avaturn", "openai", "cartesia")]

    # Then all come from that one secret, read once
    assert got == ["av-all", "sk-all", "ck-all"]
    assert reads == [BROKER]


def test_the_composition_root_passes_the_engine_secret_to_the_key_store(
    secretsmanager: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the environment a split deployment gives the create function
    put(secretsmanager, BROKER, AVATURN_ONLY)
    put(secretsmanager, ENGINE, ENGINE_KEYS)
    monkeypatch.setenv("BROKER_SECRET_ID", BROKER)
    monkeypatch.setenv("ENGINE_SECRET_ID", ENGINE)
    monkeypatch.setenv("SESSIONS_TABLE_NAME", "sessions")
    settings = Settings()

    # When the production object graph reads the keys
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    components = Components(settings, httpx2.Client(), dynamodb=dynamodb, secretsmanager=secretsmanager)

    # Then the engine key is the engine secret's and the Avaturn key the broker secret's
    assert settings.engine_secret_id == ENGINE
    assert components.keys.key("openai") == "sk-from-engine"
    assert components.keys.key("avaturn") == "av-from-broker"
