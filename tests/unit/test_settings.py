"""Settings load from the environment exactly as the template (and sam local) sets it: all strings."""

from __future__ import annotations

import json

import pytest

from broker import factory
from broker.config import Settings
from broker.errors import ConfigurationError
from local.aws_resources import _CfnLoader
from tests.unit.support import FakeContext, http_event

TEMPLATE_ENV_DEFAULTS = {
    "SESSIONS_TABLE_NAME": "table",
    "BROKER_SECRET_ID": "arn:aws:secretsmanager:us-east-1:1:secret:x",
    "AVATURN_API_URL": "https://api.avaturn.live",
    "OPENAI_BASE_URL": "https://api.openai.com/v1",
    "CARTESIA_API_URL": "https://api.cartesia.ai",
    "AWS_ENDPOINT_URL": "",
}


def template_defaults() -> dict[str, str]:
    """Each env var the template declares, with its parameter's default as a string."""
    import yaml

    from local.aws_resources import TEMPLATE

    doc = yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)
    params = doc["Parameters"]
    env: dict[str, str] = {}
    for name, value in doc["Globals"]["Function"]["Environment"]["Variables"].items():
        if isinstance(value, dict) and "Ref" in value and value["Ref"] in params:
            env[name] = str(params[value["Ref"]].get("Default", ""))
        elif isinstance(value, str | int):
            env[name] = str(value)
    return env | TEMPLATE_ENV_DEFAULTS


def test_the_template_defaults_are_a_valid_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    env = template_defaults()
    assert {"EXTERNAL_SAMPLE_RATE", "MAX_ACTIVE_SESSIONS_PER_OWNER", "ALLOWED_ENGINES"} <= set(env)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.allowed_engines == ("openai-realtime",)
    assert settings.external_sample_rate == 24000
    assert not settings.jwt_mode


def test_lists_and_numbers_come_as_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOWED_ENGINES", "openai-realtime, cartesia ,external")
    monkeypatch.setenv("CARTESIA_AGENT_ID", "agent")
    monkeypatch.setenv("EXTERNAL_ENGINE_URL", "wss://x.test/ws")
    monkeypatch.setenv("EXTERNAL_SAMPLE_RATE", "16000")
    monkeypatch.setenv("ALLOWED_AVATAR_IDS", "a,b")
    settings = Settings()
    assert settings.allowed_engines == ("openai-realtime", "cartesia", "external")
    assert settings.allowed_avatar_ids == ("a", "b")
    assert settings.external_sample_rate == 16000


@pytest.mark.parametrize(
    "env",
    [
        {"ALLOWED_ENGINES": "cartesia", "DEFAULT_ENGINE": "cartesia"},  # no agent id
        {"ALLOWED_ENGINES": "openai-realtime,external"},  # no external URL
        {"EXTERNAL_ENGINE_URL": "http://plain.test"},
        {"EXTERNAL_SAMPLE_RATE": "8000"},
        {"OPENAI_CLIENT_SECRET_TTL": "5"},
        {"SESSION_MAX_DURATION": "30"},
        {"DEFAULT_ENGINE": "cartesia"},  # not allowed
    ],
)
def test_a_bad_configuration_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError):
        factory.load_settings()


def test_the_log_names_the_variable_that_is_wrong(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    # Given a session length below Avaturn's minimum
    monkeypatch.setenv("SESSION_MAX_DURATION", "30")
    # When the settings load
    with pytest.raises(ConfigurationError):
        factory.load_settings()
    # Then the log line names the environment variable, not the value
    record = next(r for r in caplog.records if r.getMessage() == "invalid configuration")
    assert record.fields == ["SESSION_MAX_DURATION"]
    assert "30" not in str(record.fields)


@pytest.mark.parametrize(
    ("function", "name", "kwargs"),
    [
        ("create_session", "create_session", {}),
        ("get_session", "get_session", {"session_id": "6f9619ff-8b86-4d01-b42d-00cf4fc964ff"}),
        ("terminate_session", "terminate_session", {"session_id": "6f9619ff-8b86-4d01-b42d-00cf4fc964ff"}),
    ],
)
def test_a_bad_configuration_answers_503_problem_json_through_the_real_dependencies(
    monkeypatch: pytest.MonkeyPatch, handlers, function: str, name: str, kwargs: dict[str, str]
) -> None:
    # Given an invalid setting and no dependency overrides (the production wiring)
    monkeypatch.setenv("SESSION_MAX_DURATION", "30")
    factory.components.cache_clear()
    try:
        # When a request arrives
        response = handlers[function].lambda_handler(http_event(name, **kwargs), FakeContext())
    finally:
        factory.components.cache_clear()
    # Then the dependency's ConfigurationError is a 503 problem, not the resolver's 500
    assert response["statusCode"] == 503
    assert response["headers"]["Content-Type"] == "application/problem+json"
    assert json.loads(response["body"])["type"].endswith(":not-configured")


def test_the_sweep_with_a_bad_configuration_raises_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, handlers
) -> None:
    monkeypatch.setenv("SESSION_MAX_DURATION", "30")
    factory.components.cache_clear()
    try:
        with pytest.raises(ConfigurationError):
            handlers["cleanup_sessions"].lambda_handler({}, FakeContext())
    finally:
        factory.components.cache_clear()
