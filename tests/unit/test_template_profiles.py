"""The profiles document the stack creates (``ProfilesParameter`` in template.yaml), evaluated for
parameter sets as CloudFormation would: it must be a valid document and the broker's pre-profiles
behaviour for those parameters, whatever characters the parameters allow."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from broker.profiles import ProfilesDocument
from tests.unit.test_template_iam import evaluate, resolve, transformed


def created_document(overrides: dict[str, str]) -> dict[str, Any] | None:
    """The Value of ``ProfilesParameter`` for the template's defaults plus ``overrides`` (None when
    the stack does not create it), validated as the broker validates it."""
    template = transformed()
    params, conditions = evaluate(template, overrides)
    resource = template["Resources"].get("ProfilesParameter")
    if resource is None or not conditions[resource["Condition"]]:
        return None
    value = resolve(resource["Properties"]["Value"], params, conditions)
    separator, parts = value["Fn::Join"]
    text = separator.join(parts)
    ProfilesDocument.model_validate_json(text)
    document: dict[str, Any] = json.loads(text)
    return document


def test_the_defaults_make_todays_openai_profile() -> None:
    # Given no parameter set, when the stack's document is evaluated
    # Then it is one default profile: gpt-realtime with marin, as the broker behaved before profiles
    assert created_document({}) == {
        "default_profile": "default",
        "profiles": {"default": {"engine": "openai-realtime", "openai": {"model": "gpt-realtime", "voice": "marin"}}},
    }


def test_every_engine_parameter_reaches_the_default_profile() -> None:
    # Given every engine parameter set, with the characters their patterns allow
    overrides = {
        "DefaultEngine": "cartesia",
        "DefaultAvatarId": "jane_20240829",
        "OpenAIRealtimeModel": "gpt-realtime-2025-08-28",
        "OpenAIVoice": "cedar",
        "OpenAIInstructions": "Be brief; it's the front desk - ask {who} & offer <tea> à 5 €.",
        "CartesiaAgentId": "agent_Ab-9",
        "ExternalEngineUrl": "wss://engine.example.com:8443/ws?tenant=a&x=%20",
        "ExternalEngineSampleRate": "16000",
    }
    # When the stack's document is evaluated, then the default profile holds each of them exactly
    assert created_document(overrides) == {
        "default_profile": "default",
        "profiles": {
            "default": {
                "engine": "cartesia",
                "avatar_id": "jane_20240829",
                "openai": {
                    "model": "gpt-realtime-2025-08-28",
                    "voice": "cedar",
                    "instructions": "Be brief; it's the front desk - ask {who} & offer <tea> à 5 €.",
                },
                "cartesia": {"agent_id": "agent_Ab-9"},
                "external": {"url": "wss://engine.example.com:8443/ws?tenant=a&x=%20", "sample_rate": 16000},
            }
        },
    }


def test_an_existing_parameter_is_used_and_none_is_created() -> None:
    assert created_document({"ProfilesParameterName": "/shop/profiles"}) is None


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("OpenAIInstructions", 'Say "hi"'),
        ("OpenAIInstructions", "C:\\path"),
        ("OpenAIInstructions", "two\nlines"),
        ("ExternalEngineUrl", 'wss://x.test/"'),
        ("ExternalEngineUrl", "wss://x.test/\\"),
        ("DefaultAvatarId", 'a"b'),
        ("CartesiaAgentId", 'a"b'),
        ("OpenAIVoice", 'a"b'),
        ("OpenAIRealtimeModel", 'a"b'),
    ],
)
def test_cloudformation_refuses_what_would_break_the_json(parameter: str, value: str) -> None:
    # Given a value that would end a JSON string early or escape out of it
    pattern = transformed()["Parameters"][parameter]["AllowedPattern"]
    # Then the parameter's AllowedPattern (Java regex; these constructs read the same in Python) refuses it
    assert re.fullmatch(pattern, value) is None
