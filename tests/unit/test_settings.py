"""Settings load from the environment exactly as the template (and sam local) sets it: all strings."""

from __future__ import annotations

import importlib
import json

import pytest
from pydantic.fields import FieldInfo

from broker import factory
from broker.config import Settings
from broker.errors import ConfigurationError
from local.template import load_template
from tests.unit.support import FakeContext, http_event

TEMPLATE_ENV_DEFAULTS = {
    "SESSIONS_TABLE_NAME": "table",
    "BROKER_SECRET_ID": "arn:aws:secretsmanager:us-east-1:1:secret:x",
    "PROFILES_PARAMETER_NAME": "/stack/profiles",
    "AVATURN_API_URL": "https://api.avaturn.live",
    "OPENAI_BASE_URL": "https://api.openai.com/v1",
    "CARTESIA_API_URL": "https://api.cartesia.ai",
    "AWS_ENDPOINT_URL": "",
}


def template_defaults() -> dict[str, str]:
    """Each env var the template declares, with its parameter's default as a string."""
    doc = load_template()
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
    assert {"PROFILES_CACHE_SECONDS", "MAX_ACTIVE_SESSIONS_PER_OWNER", "ALLOWED_ENGINES"} <= set(env)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.allowed_engines == ("openai-realtime",)
    assert settings.profiles_cache_seconds == 60
    assert settings.sdk_api_host == "https://api.avaturn.live"  # AvaturnSdkApiHost empty: AvaturnApiUrl
    assert not settings.jwt_mode


def test_lists_and_numbers_come_as_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOWED_ENGINES", "openai-realtime, cartesia ,external")
    monkeypatch.setenv("ALLOWED_AVATAR_IDS", "a,b")
    monkeypatch.setenv("PROFILES_CACHE_SECONDS", "5")
    monkeypatch.setenv("AVATURN_SDK_API_HOST", "http://127.0.0.1:4010/")
    settings = Settings()
    assert settings.allowed_engines == ("openai-realtime", "cartesia", "external")
    assert settings.allowed_avatar_ids == ("a", "b")
    assert settings.profiles_cache_seconds == 5
    assert settings.sdk_api_host == "http://127.0.0.1:4010"


@pytest.mark.parametrize(
    "env",
    [
        {"ALLOWED_ENGINES": "openai-realtime,gemini"},
        {"PROFILES_PARAMETER_NAME": ""},
        {"PROFILES_CACHE_SECONDS": "3601"},
        {"AVATURN_SDK_API_HOST": "ftp://avaturn.test"},
        {"OPENAI_CLIENT_SECRET_TTL": "5"},
        {"SESSION_MAX_DURATION": "30"},
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


@pytest.mark.parametrize(
    ("env", "named"),
    [
        (
            {"AVATURN_SDK_API_HOST": "wss://host-CANARY.test", "USER_ABSENT_TIMEOUT": "9"},
            ["AVATURN_SDK_API_HOST", "USER_ABSENT_TIMEOUT"],
        ),
        ({"USER_ABSENT_TIMEOUT": "86401"}, ["USER_ABSENT_TIMEOUT"]),  # above Avaturn's bound
    ],
)
def test_an_invalid_setting_names_its_variables_never_their_values(
    monkeypatch: pytest.MonkeyPatch, caplog, env: dict[str, str], named: list[str]
) -> None:
    # Given invalid settings
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # When they load
    with pytest.raises(ConfigurationError):
        factory.load_settings()
    # Then the log line names every variable involved, and none of the values
    record = next(r for r in caplog.records if r.getMessage() == "invalid configuration")
    assert record.fields == named
    for value in env.values():
        assert value not in caplog.text


def _bounds(field: FieldInfo) -> tuple[float | None, float | None, float | None, float | None]:
    """``(ge, gt, le, lt)`` of a pydantic field."""
    found: dict[str, float | None] = dict.fromkeys(("ge", "gt", "le", "lt"))
    for constraint in field.metadata:
        for name in found:
            if getattr(constraint, name, None) is not None:
                found[name] = getattr(constraint, name)
    return found["ge"], found["gt"], found["le"], found["lt"]


@pytest.mark.parametrize(
    ("setting", "upstream_model", "upstream_field"),
    [
        ("user_absent_timeout", "avaturn_app.CreateSessionBody", "user_absent_timeout"),
        ("session_max_duration", "avaturn_app.CreateSessionBody", "max_duration"),
        ("openai_client_secret_ttl", "openai_app.ExpiresAfter", "seconds"),
        ("cartesia_token_ttl", "cartesia_app.AccessTokenRequest", "expires_in"),
    ],
)
def test_a_setting_sent_upstream_has_the_upstreams_documented_bounds(
    setting: str, upstream_model: str, upstream_field: str
) -> None:
    # Given a setting the broker passes to an upstream as is, and the upstream's documented bounds
    # (as the project's simulators model them)
    module, model = upstream_model.split(".")
    upstream = getattr(importlib.import_module(f"upstream_sim.{module}"), model).model_fields[upstream_field]
    # Then Settings refuses at start-up exactly what the upstream would refuse on every create
    assert _bounds(Settings.model_fields[setting]) == _bounds(upstream)


def test_every_numeric_parameter_has_the_bounds_of_its_setting() -> None:
    # Given the template's Number parameters that reach a Settings field
    template = load_template()
    parameters = template["Parameters"]
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    fields = {name.upper(): field for name, field in Settings.model_fields.items()}
    differ = {}
    for variable, value in env.items():
        parameter = value.get("Ref") if isinstance(value, dict) else None
        if parameter not in parameters or parameters[parameter]["Type"] != "Number" or variable not in fields:
            continue
        ge, gt, le, lt = _bounds(fields[variable])
        low, high = parameters[parameter].get("MinValue"), parameters[parameter].get("MaxValue")
        # Then CloudFormation refuses what Settings would refuse at start-up, and no more
        low_ok = low == ge if gt is None else (low is not None and low > gt)
        high_ok = high == le if lt is None else (high is not None and high < lt)
        if not (low_ok and high_ok):
            differ[parameter] = {"template": (low, high), "Settings": (ge, gt, le, lt)}
    assert not differ
