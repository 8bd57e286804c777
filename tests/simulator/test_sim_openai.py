"""OpenAI simulator: POST /v1/realtime/client_secrets."""

from typing import Any

import httpx2
import openai
import pytest

from tests.simulator.support import OPENAI_KEY, Sim


def post(sim: Sim, body: Any, key: str | None = OPENAI_KEY, content: bytes | None = None) -> httpx2.Response:
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    url = f"{sim.openai_url}/realtime/client_secrets"
    if content is not None:
        return sim.http.post(url, content=content, headers={**headers, "Content-Type": "application/json"}, timeout=5)
    return sim.http.post(url, json=body, headers=headers, timeout=5)


VALID: dict[str, Any] = {
    "expires_after": {"anchor": "created_at", "seconds": 120},
    "session": {"type": "realtime", "model": "gpt-realtime"},
}


def test_mints_a_client_secret_and_echoes_the_session(sim: Sim) -> None:
    # Given a valid request with a voice and instructions
    body = {
        "expires_after": {"anchor": "created_at", "seconds": 300},
        "session": {
            "type": "realtime",
            "model": "gpt-realtime",
            "instructions": "Be brief.",
            "audio": {"output": {"voice": "marin"}},
        },
    }
    now = sim.get("/clock")["now"]
    # When it is posted
    response = post(sim, body)
    # Then a secret comes back with an expiry anchored at creation and the effective session
    assert response.status_code == 200, response.text
    data = response.json()
    assert set(data) == {"value", "expires_at", "session"}
    assert data["value"].startswith("ek_")
    assert len(data["value"]) > 20
    assert int(now) + 300 <= data["expires_at"] <= int(now) + 301
    session = data["session"]
    assert session["id"].startswith("sess_")
    assert session["object"] == "realtime.session"
    assert session["type"] == "realtime"
    assert session["model"] == "gpt-realtime"
    assert session["instructions"] == "Be brief."
    assert session["audio"]["output"]["voice"] == "marin"
    # And the simulator lists the secret as issued
    issued = sim.get("/secrets")["openai_client_secrets"]
    assert [s["value"] for s in issued] == [data["value"]]
    assert issued[0]["expired"] is False


def test_expires_after_defaults_to_600_seconds(sim: Sim) -> None:
    now = sim.get("/clock")["now"]
    response = post(sim, {"session": {"type": "realtime", "model": "gpt-realtime"}})
    assert response.status_code == 200
    assert int(now) + 600 <= response.json()["expires_at"] <= int(now) + 601


@pytest.mark.parametrize(("key", "code"), [(None, None), ("wrong-key", "invalid_api_key")])
def test_rejects_missing_or_wrong_api_key(sim: Sim, key: str | None, code: str | None) -> None:
    response = post(sim, VALID, key=key)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == code
    assert error["param"] is None
    assert "wrong-key" not in response.text
    assert sim.get("/secrets")["openai_client_secrets"] == []


def test_rejects_a_non_bearer_scheme(sim: Sim) -> None:
    response = sim.http.post(
        f"{sim.openai_url}/realtime/client_secrets",
        json=VALID,
        headers={"Authorization": f"Basic {OPENAI_KEY}"},
        timeout=5,
    )
    assert response.status_code == 401


def _with(path: str, value: Any) -> dict[str, Any]:
    """VALID with one dotted path set (or removed when value is ...)."""
    import copy

    body = copy.deepcopy(VALID)
    target: Any = body
    parts = path.split(".")
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    if value is ...:
        target.pop(parts[-1], None)
    else:
        target[parts[-1]] = value
    return body


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        (_with("expires_after.seconds", 9), "integer_below_min_value", "expires_after.seconds"),
        (_with("expires_after.seconds", 7201), "integer_above_max_value", "expires_after.seconds"),
        (_with("expires_after.seconds", "60"), "invalid_type", "expires_after.seconds"),
        (_with("expires_after.seconds", 60.5), "invalid_type", "expires_after.seconds"),
        (_with("expires_after.anchor", "now"), "invalid_value", "expires_after.anchor"),
        (_with("expires_after.anchor", ...), "missing_required_parameter", "expires_after.anchor"),
        (_with("expires_after.extra", 1), "unknown_parameter", "expires_after.extra"),
        (_with("foo", 1), "unknown_parameter", "foo"),
        (_with("session", ...), "missing_required_parameter", "session"),
        (_with("session.type", ...), "missing_required_parameter", "session.type"),
        (_with("session.type", "transcription"), "invalid_value", "session.type"),
        (_with("session.model", ...), "missing_required_parameter", "session.model"),
        (_with("session.model", 123), "invalid_type", "session.model"),
        (_with("session.model", ""), "string_below_min_length", "session.model"),
        (_with("session.voice", "alloy"), "unknown_parameter", "session.voice"),
        (_with("session.audio", {"output": {"voice": 5}}), "invalid_type", "session.audio.output.voice"),
        (_with("session.audio", {"output": {"volume": 1}}), "unknown_parameter", "session.audio.output.volume"),
        (_with("session.audio", {"output": {"speed": 3}}), "integer_above_max_value", "session.audio.output.speed"),
        (_with("session.max_output_tokens", 5000), "integer_above_max_value", "session.max_output_tokens"),
        (_with("session.instructions", ["x"]), "invalid_type", "session.instructions"),
        (_with("session.tools", ["x"]), "invalid_type", "session.tools[0]"),
        (_with("session.output_modalities", ["video"]), "invalid_value", "session.output_modalities[0]"),
        # the voice is a built-in one or {"id": ...}; user transcription is an AudioTranscription object
        (_with("session.audio", {"output": {"voice": "nova-deep"}}), "invalid_value", "session.audio.output.voice"),
        (
            _with("session.audio", {"input": {"transcription": {"model": "gpt-4o-transcriber"}}}),
            "invalid_value",
            "session.audio.input.transcription.model",
        ),
        (
            _with("session.audio", {"input": {"transcription": {"model": "whisper-1", "lang": "en"}}}),
            "unknown_parameter",
            "session.audio.input.transcription.lang",
        ),
        (
            _with("session.audio", {"input": {"transcription": {"language": "english"}}}),
            "invalid_value",
            "session.audio.input.transcription.language",
        ),
        (
            _with("session.audio", {"input": {"transcription": "whisper-1"}}),
            "invalid_type",
            "session.audio.input.transcription",
        ),
        (
            _with("session.audio", {"input": {"transcription": {"delay": "slow"}}}),
            "invalid_value",
            "session.audio.input.transcription.delay",
        ),
    ],
)
def test_validation_errors_use_openai_format(sim: Sim, body: dict[str, Any], code: str, param: str) -> None:
    response = post(sim, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == code
    assert error["param"] == param
    assert param in error["message"] or code == "invalid_value"
    assert sim.get("/secrets")["openai_client_secrets"] == []


def test_user_transcription_is_accepted_and_echoed(sim: Sim) -> None:
    # Given a session that transcribes the user's audio (what Avaturn needs for user transcripts)
    transcription = {"model": "gpt-4o-mini-transcribe", "language": "en", "prompt": "hotel words"}
    response = post(sim, _with("session.audio", {"input": {"transcription": transcription}}))
    # Then the effective session carries it
    assert response.status_code == 200, response.text
    assert response.json()["session"]["audio"]["input"]["transcription"] == transcription


@pytest.mark.parametrize(
    "voice", ["alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"]
)
def test_every_built_in_voice_is_accepted(sim: Sim, voice: str) -> None:
    assert post(sim, _with("session.audio", {"output": {"voice": voice}})).status_code == 200


def test_voice_may_be_an_object_with_an_id(sim: Sim) -> None:
    response = post(sim, _with("session.audio", {"output": {"voice": {"id": "voice_123"}}}))
    assert response.status_code == 200
    assert response.json()["session"]["audio"]["output"]["voice"] == {"id": "voice_123"}


@pytest.mark.parametrize("content", [b"{not json", b""])
def test_unparseable_body_is_400(sim: Sim, content: bytes) -> None:
    response = post(sim, None, content=content)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] is None
    assert error["param"] is None
    assert "parse the JSON body" in error["message"]


def test_non_object_body_is_400(sim: Sim) -> None:
    response = post(sim, [1, 2])
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_type"


def test_unknown_path_is_404_in_openai_format(sim: Sim) -> None:
    response = sim.http.get(f"{sim.openai_url}/realtime/client_secrets", timeout=5)
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Invalid URL (GET /v1/realtime/client_secrets)"


def test_the_openai_sdk_works_against_the_simulator(sim: Sim) -> None:
    # Given the real SDK pointed at the simulator, with explicit timeout and retries
    client = openai.OpenAI(api_key=OPENAI_KEY, base_url=sim.openai_url, max_retries=0, timeout=5)
    # When it mints a client secret
    result = client.realtime.client_secrets.create(
        expires_after={"anchor": "created_at", "seconds": 60},
        session={"type": "realtime", "model": "gpt-realtime", "audio": {"output": {"voice": "marin"}}},
    )
    # Then the SDK parses the response
    assert result.value.startswith("ek_")
    assert result.session.type == "realtime"
    assert result.session.id.startswith("sess_")
    # And the simulator saw exactly what the SDK sent, with the key redacted
    (record,) = sim.requests("openai.client_secrets")
    assert record["body"] == {
        "expires_after": {"anchor": "created_at", "seconds": 60},
        "session": {"type": "realtime", "model": "gpt-realtime", "audio": {"output": {"voice": "marin"}}},
    }
    assert record["headers"]["authorization"] == "REDACTED"
    assert record["auth_valid"] is True
    assert record["headers"]["x-stainless-retry-count"] == "0"
    assert record["headers"]["user-agent"].startswith("OpenAI/Python")
    assert record["status"] == 200


def test_the_openai_sdk_maps_simulator_errors(sim: Sim) -> None:
    bad_key = openai.OpenAI(api_key="nope", base_url=sim.openai_url, max_retries=0, timeout=5, http_client=sim.http)
    with pytest.raises(openai.AuthenticationError):
        bad_key.realtime.client_secrets.create(session={"type": "realtime", "model": "gpt-realtime"})
    client = openai.OpenAI(api_key=OPENAI_KEY, base_url=sim.openai_url, max_retries=0, timeout=5, http_client=sim.http)
    with pytest.raises(openai.BadRequestError) as excinfo:
        client.realtime.client_secrets.create(
            expires_after={"anchor": "created_at", "seconds": 5},
            session={"type": "realtime", "model": "gpt-realtime"},
        )
    assert excinfo.value.code == "integer_below_min_value"
    assert excinfo.value.param == "expires_after.seconds"
