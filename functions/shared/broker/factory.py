"""Builds the real dependencies once per container (warm invocations reuse clients, pools and
the secret cache). Handlers accept replacements, so tests pass fakes without patching."""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any

import boto3
import httpx2
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from botocore.config import Config
from pydantic import ValidationError

from broker.cleanup import Sweeper
from broker.clients.avaturn import AvaturnClient
from broker.config import Settings
from broker.errors import ConfigurationError
from broker.http import make_http_client
from broker.observability import logger
from broker.secrets import KeyStore
from broker.service import SessionCreator, SessionReader, SessionTerminator
from broker.store import SessionStore

AWS_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3})


@lru_cache(maxsize=1)
def settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"]) or "settings" for e in exc.errors()})
        logger.error("invalid configuration", extra={"fields": fields})
        raise ConfigurationError("the broker is misconfigured; see its logs") from None


@lru_cache(maxsize=1)
def http_client() -> httpx2.Client:
    return make_http_client(settings())


@cache
def aws_client(service: str) -> Any:
    """boto3 honours AWS_ENDPOINT_URL (and per-service variants) itself; empty means AWS."""
    return boto3.client(service, config=AWS_CONFIG)  # type: ignore[call-overload]


@lru_cache(maxsize=1)
def keys() -> KeyStore:
    s = settings()
    return KeyStore(s.broker_secret_id, s.secret_cache_seconds, aws_client("secretsmanager"))


@lru_cache(maxsize=1)
def store() -> SessionStore:
    s = settings()
    return SessionStore(aws_client("dynamodb"), s.sessions_table_name, s.finished_retention_days * 86400)


def avaturn() -> AvaturnClient:
    return AvaturnClient(http_client(), settings().avaturn_api_url, keys().getter("avaturn"))


@lru_cache(maxsize=1)
def creator() -> SessionCreator:
    from broker.clients.cartesia import CartesiaClient
    from broker.clients.openai_realtime import OpenAIRealtimeClient
    from broker.engines import EngineMinters

    s = settings()
    minters = EngineMinters(
        settings=s,
        openai=OpenAIRealtimeClient(http_client(), s.openai_base_url, keys().getter("openai")),
        cartesia=CartesiaClient(http_client(), s.cartesia_api_url, s.cartesia_version, keys().getter("cartesia")),
    )
    idempotency = DynamoDBPersistenceLayer(
        table_name=s.sessions_table_name, key_attr="pk", boto3_client=aws_client("dynamodb")
    )
    return SessionCreator(
        settings=s,
        store=store(),
        avaturn=avaturn(),
        mint=minters,
        idempotency_store=idempotency,
        replay_secret=keys().getter("avaturn"),
    )


@lru_cache(maxsize=1)
def terminator() -> SessionTerminator:
    return SessionTerminator(settings=settings(), store=store(), avaturn=avaturn())


@lru_cache(maxsize=1)
def reader() -> SessionReader:
    return SessionReader(settings=settings(), store=store())


@lru_cache(maxsize=1)
def sweeper() -> Sweeper:
    return Sweeper(settings=settings(), store=store(), terminator=terminator())
