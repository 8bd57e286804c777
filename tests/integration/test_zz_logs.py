"""Runs last in the session: no planted key, engine secret or session token of the whole run
appears, raw or base64-encoded, in any log of the run or in any item the registry stored."""

from __future__ import annotations

import base64
import json

import pytest

from local.stack import TABLE
from tests.integration.conftest import CANARY_KEYS, ISSUED, STORED_ITEMS, Local, issued_credentials

pytestmark = pytest.mark.integration


def test_no_planted_key_engine_secret_or_token_in_logs_or_stored_items(local: Local) -> None:
    # a few more flows, so this test holds on its own too
    created = local.create({"engine": "openai-realtime"}, headers={"idempotency-key": "leak-check"}).json()
    local.create({"engine": "cartesia"})
    local.delete(created["session_id"], created["token"])
    canaries = [*CANARY_KEYS.values(), *ISSUED, *issued_credentials(local)]
    logs = local.stack.logs()
    items = json.dumps(STORED_ITEMS + local.stack.aws_client("dynamodb").scan(TableName=TABLE)["Items"])
    assert "create_session#" in items  # idempotency records were made and kept for this check
    assert "session created" in logs
    assert "REPORT RequestId" in logs  # the function logs are in there
    assert len(canaries) > 20
    for canary in canaries:
        for form in (canary, base64.b64encode(canary.encode()).decode()):
            assert form not in logs
            assert form not in items
