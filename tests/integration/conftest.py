"""Integration tier: real HTTP to ``sam local start-api`` and ``sam local invoke`` on the project's
Docker engine, with moto server and the upstream simulators. One stack per test session, and at
its end the leak check (``leak_check``): it fails the run if any planted key, engine secret or
session token appears in a log or a stored item. Helpers live in ``tests/support/``."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import pytest

from local.paths import PROFILES, SECRET, TABLE
from local.stack import Stack, running
from tests.support.leaks import LeakCheck, recipe_secrets
from tests.support.stack import Local, clean_slate

CANARY_KEYS = {
    "avaturn_api_key": f"avaturn-canary-{secrets.token_hex(8)}",
    "openai_api_key": f"sk-openai-canary-{secrets.token_hex(8)}",
    "cartesia_api_key": f"cartesia-canary-{secrets.token_hex(8)}",
}
# Short upstream timeouts keep the timeout cases quick; the simulator's "hang" is longer
# (HANG_SECONDS in test_faults.py).
OVERRIDES = {"UPSTREAM_READ_TIMEOUT": "2", "UPSTREAM_CONNECT_TIMEOUT": "1", "MAX_ACTIVE_SESSIONS_PER_OWNER": "2"}


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    stack = Stack(
        name="it", api_port=3100, port_base=4110, overrides=OVERRIDES, sim_keys=CANARY_KEYS, lambda_endpoint=True
    )
    with running(stack):
        yield stack


@pytest.fixture(scope="session", autouse=True)
def leak_check(stack: Stack) -> Iterator[LeakCheck]:
    """Collects every registry item and issued credential of the run; at the end, after a few
    more flows of its own (so that it holds for a run of one test too), no planted key, engine
    secret or session token may appear, raw or base64-encoded, in any log of the run or in any
    item the registry stored, nor a profile's instructions, agent id, engine URL or header value
    there or in any response of the broker."""
    document = json.loads(stack.aws_client("ssm").get_parameter(Name=PROFILES)["Parameter"]["Value"])
    secret = json.loads(stack.aws_client("secretsmanager").get_secret_value(SecretId=SECRET)["SecretString"])
    leaks = LeakCheck(planted=list(CANARY_KEYS.values()), recipes=recipe_secrets(document, secret))
    yield leaks
    with clean_slate(stack, leaks) as local:
        local.http.get(f"{stack.api_url}/profiles", timeout=40)
        for profile in document["profiles"]:
            other = local.create({"profile": profile}).json()
            local.delete(other["session_id"], other["token"])
        key = {"idempotency-key": "3c9d2b7a-5e1f-4a8b-9c6d-7e8f9a0b1c2d"}
        created = local.create({"engine": "openai-realtime"}, headers=key).json()
        local.delete(created["session_id"], created["token"])
        for _ in range(9):  # 18 more credentials: with the keys, more than 20 to look for after any one test
            other = local.create({"engine": "cartesia"}).json()
            local.delete(other["session_id"], other["token"])
    leaks.verify(stack.logs(), stack.aws_client("dynamodb").scan(TableName=TABLE)["Items"])


@pytest.fixture
def local(stack: Stack, leak_check: LeakCheck) -> Iterator[Local]:
    """A clean slate per test: simulators reset, registry emptied (its items kept for the leak check)."""
    with clean_slate(stack, leak_check) as env:
        yield env
