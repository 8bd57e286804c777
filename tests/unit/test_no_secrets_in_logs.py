"""Planted canary keys, engine secrets and session tokens never reach a log line or an error body."""

from __future__ import annotations

import base64
import json
import logging
import uuid

from tests.unit.fakes import KEYS
from tests.unit.support import Api, body_of

KEY = str(uuid.uuid4())


def test_no_key_secret_or_token_in_any_log_line(api: Api, capsys, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    bodies: list[str] = []
    upstreams = api.broker.upstreams
    # Given every kind of flow: success per engine, replay, failures, terminate, sweep
    for engine in ("openai-realtime", "cartesia", "external"):
        key = {"idempotency-key": str(uuid.uuid4())}
        response = api.create({"engine": engine}, headers=key, source_ip=f"10.0.0.{len(engine)}")
        api.create({"engine": engine}, headers=key, source_ip=f"10.0.0.{len(engine)}")
        created = body_of(response)
        bodies.append(api.get(created["session_id"], created["token"])["body"])
        upstreams.fail["avaturn.delete"] = 500
        bodies.append(api.delete(created["session_id"], created["token"])["body"])
        upstreams.fail.clear()
    for endpoint in ("openai", "avaturn.create"):
        for failure in (401, 500, "timeout", "malformed"):
            upstreams.fail[endpoint] = failure
            bodies.append(api.create(None, source_ip="10.9.9.9")["body"])
            upstreams.fail.clear()
    api.broker.clock.advance(10_000)
    api.cleanup()
    # Then the captured output holds none of them, raw or base64-encoded
    output = capsys.readouterr()
    logs = output.out + output.err + caplog.text
    assert "session created" in logs  # the logs were captured at all
    canaries = [*KEYS.values(), *upstreams.issued]
    assert len(canaries) > 6
    for canary in canaries:
        for form in (canary, base64.b64encode(canary.encode()).decode()):
            assert form not in logs
            assert all(form not in body for body in bodies)


def test_the_token_is_only_in_the_201_body(api: Api) -> None:
    response = api.create(None, headers={"idempotency-key": KEY})
    replay = api.create(None, headers={"idempotency-key": KEY})
    token = body_of(response)["token"]
    assert body_of(replay)["token"] == token
    assert token not in json.dumps(response["headers"])
    # neither the session row nor the idempotency record holds it, raw or base64-encoded
    stored = json.dumps(api.broker.items())
    assert "create_session#" in stored
    assert token not in stored
    assert base64.b64encode(token.encode()).decode() not in stored


def test_a_replay_after_the_server_secret_changed_is_409(api: Api) -> None:
    from local.aws_resources import put_secret

    assert api.create(None, headers={"idempotency-key": KEY})["statusCode"] == 201
    put_secret(api.broker.secretsmanager, api.broker.settings.broker_secret_id, {**KEYS, "avaturn_api_key": "rotated"})
    api.broker.keys._provider.clear_cache()
    assert api.create(None, headers={"idempotency-key": KEY})["statusCode"] == 409
