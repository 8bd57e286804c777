"""Planted canary keys, engine secrets and session tokens never reach a log line or an error body;
nor do a profile's instructions, agent id, engine URL or header values reach a log line or any
response."""

from __future__ import annotations

import base64
import json
import logging
import uuid

from local.aws_resources import put_secret
from tests.unit.fakes import KEYS
from tests.unit.support import Api, body_of

KEY = str(uuid.uuid4())


def logged(capsys, caplog) -> str:
    """Everything logged so far: the captured output, and every log record with its extra fields
    (Powertools writes them as JSON keys of the line)."""
    output = capsys.readouterr()
    records = [json.dumps(vars(r), default=str) for r in caplog.records]
    return "\n".join([output.out, output.err, caplog.text, *records])


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
    logs = logged(capsys, caplog)
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


PROFILE_CANARIES = {
    "instructions": "Speak as CANARY-INSTRUCTIONS-7f3a, never reveal it.",
    "transcription": "canary-transcribe-model-2b",
    "agent_id": "agent_CANARY_9c1e",
    "url": "wss://canary-engine-5d2b.example.test/ws",
    "header": "Bearer CANARY-HEADER-VALUE-e8a4",
    "field": "canary_headers_field",
}
C = PROFILE_CANARIES
CANARY_DOC = {
    "default_profile": "voice",
    "profiles": {
        "voice": {
            "engine": "openai-realtime",
            "openai": {
                "model": "gpt-realtime",
                "voice": "marin",
                "instructions": C["instructions"],
                "transcription_model": C["transcription"],
            },
            "cartesia": {"agent_id": C["agent_id"]},
        },
        "agent": {"title": "Agent", "engine": "cartesia", "cartesia": {"agent_id": C["agent_id"]}},
        "own": {
            "engine": "external",
            "external": {"url": C["url"], "sample_rate": 16000, "headers_secret_field": C["field"]},
        },
    },
}


def test_no_profile_recipe_in_any_log_line_or_response(make_broker, handlers, capsys, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    api = Api(make_broker(profiles=CANARY_DOC), handlers)
    secret_id = api.broker.settings.broker_secret_id
    put_secret(api.broker.secretsmanager, secret_id, {**KEYS, C["field"]: {"Authorization": C["header"]}})
    upstreams = api.broker.upstreams
    responses = []
    # Given every flow that touches a profile: each kind, legacy requests, the list, replays,
    # upstream refusals, missing headers, an invalid document, ends and the sweep
    for i, body in enumerate([{"profile": "voice"}, {"profile": "agent"}, {"profile": "own"}, {"engine": "cartesia"}]):
        key = {"idempotency-key": str(uuid.uuid4())}
        source = f"10.1.0.{i}"
        created = api.create(body, headers=key, source_ip=source)
        responses += [created, api.create(body, headers=key, source_ip=source)]
        session = body_of(created)
        responses.append(api.get(session["session_id"], session["token"]))
        responses.append(api.delete(session["session_id"], session["token"]))
    responses.append(api.profiles())
    for endpoint, body in (("openai", {"profile": "voice"}), ("cartesia", {"profile": "agent"})):
        for failure in (400, 500, "timeout"):
            upstreams.fail[endpoint] = failure
            responses.append(api.create(body, source_ip="10.9.9.9"))
            upstreams.fail.clear()
    upstreams.fail["avaturn.create"] = 422
    responses.append(api.create({"profile": "own"}, source_ip="10.9.9.9"))
    upstreams.fail.clear()
    put_secret(api.broker.secretsmanager, secret_id, {**KEYS, C["field"]: {"Bad Header": C["header"]}})
    api.broker.keys._provider.clear_cache()
    responses.append(api.create({"profile": "own"}, source_ip="10.9.9.8"))
    assert responses[-1]["statusCode"] == 503, responses[-1]
    broken = {
        **CANARY_DOC,
        "profiles": {
            **CANARY_DOC["profiles"],
            "bad": {"engine": "external", "external": {"url": C["url"].replace("wss", "ws"), "sample_rate": 1}},
        },
    }
    api.broker.set_profiles(broken)
    api.broker.profiles._provider.clear_cache()
    responses += [api.create({"profile": "voice"}, source_ip="10.9.9.7"), api.profiles()]
    api.broker.clock.advance(10_000)
    api.cleanup()
    # Then the upstreams got the recipe (the check has something to find) ...
    sent = json.dumps([r.body for r in upstreams.requests])
    assert all(value in sent for key, value in C.items() if key != "field")
    # ... and no log line and no response holds any of it, raw or base64-encoded
    logs = logged(capsys, caplog)
    assert "session created" in logs
    assert "invalid profiles document" in logs
    texts = [json.dumps(r) for r in responses]
    assert len(texts) > 20
    for canary in (C["instructions"], C["transcription"], C["agent_id"], C["url"], C["header"], C["field"]):
        for form in (canary, base64.b64encode(canary.encode()).decode()):
            assert form not in logs or canary == C["field"], canary  # a log line may name the secret field
            assert all(form not in text for text in texts), canary
