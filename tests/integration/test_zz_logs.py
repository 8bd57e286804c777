"""Runs last in the session: the function logs of the whole run hold no key, secret or token."""

from __future__ import annotations

import base64

import pytest

from tests.integration.conftest import CANARY_KEYS, Local

pytestmark = pytest.mark.integration


def test_no_planted_key_engine_secret_or_token_in_the_function_logs(local: Local) -> None:
    # a few more flows so this test holds on its own too
    created = local.create({"engine": "openai-realtime"}).json()
    local.create({"engine": "cartesia"})
    local.delete(created["session_id"], created["token"])
    issued = local.control("GET", "/secrets")
    canaries = [*CANARY_KEYS.values()]
    canaries += [s["value"] for s in issued["openai_client_secrets"]]
    canaries += [t["token"] for t in issued["cartesia_tokens"]]
    canaries += [t["token"] for t in issued["avaturn_session_tokens"]]
    logs = local.stack.logs()
    assert "session created" in logs
    assert "REPORT RequestId" in logs
    for canary in canaries:
        for form in (canary, base64.b64encode(canary.encode()).decode()):
            assert form not in logs
