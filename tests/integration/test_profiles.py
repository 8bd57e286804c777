"""Profiles through the real local API (sam local start-api): one session per profile of
profiles.example.json with the exact bodies the simulators record, GET /profiles, and edits of the
document (a new profile, an invalid one) taking effect within the cache period, without a deploy."""

from __future__ import annotations

import contextlib
import copy
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from local.paths import PROFILES, PROFILES_EXAMPLE, SECRET
from tests.support.stack import Local, problem

pytestmark = pytest.mark.integration

EXAMPLE: dict[str, Any] = json.loads(PROFILES_EXAMPLE.read_text())
CACHE_SECONDS = 5  # PROFILES_CACHE_SECONDS of the local stack


def engine_headers(local: Local, field: str) -> dict[str, str]:
    """The headers the local stack put into the secret's ``field`` (a random bearer token)."""
    secret = local.stack.aws_client("secretsmanager").get_secret_value(SecretId=SECRET)["SecretString"]
    headers: dict[str, str] = json.loads(secret)[field]
    return headers


def issued(local: Local, kind: str) -> list[str]:
    """The credentials the simulators issued: OpenAI client secrets or Cartesia tokens."""
    found = local.control("GET", "/secrets")
    if kind == "openai":
        return [s["value"] for s in found["openai_client_secrets"]]
    return [t["token"] for t in found["cartesia_tokens"]]


def profiles(local: Local) -> requests.Response:
    return local.http.get(f"{local.stack.api_url}/profiles", timeout=40)


def eventually(check: Callable[[], bool], within: float) -> bool:
    """Whether ``check`` holds within ``within`` seconds (polled twice a second)."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.5)
    return check()


@contextlib.contextmanager
def document(local: Local, edited: dict[str, Any] | str) -> Iterator[None]:
    """The stack's profiles document replaced by ``edited`` while the block runs, then the
    example again, waiting until every function serves it (so later tests see the example)."""
    ssm = local.stack.aws_client("ssm")
    text = edited if isinstance(edited, str) else json.dumps(edited)
    ssm.put_parameter(Name=PROFILES, Value=text, Type="String", Overwrite=True)
    try:
        yield
    finally:
        ssm.put_parameter(Name=PROFILES, Value=PROFILES_EXAMPLE.read_text(), Type="String", Overwrite=True)
        time.sleep(CACHE_SECONDS + 1)


@pytest.mark.parametrize("profile", sorted(EXAMPLE["profiles"]))
def test_a_session_per_example_profile_reaches_the_upstreams_exactly(local: Local, profile: str) -> None:
    recipe = EXAMPLE["profiles"][profile]
    # When a client asks for the profile by its ID
    response = local.create({"profile": profile})
    assert response.status_code == 201, response.text
    created = response.json()
    # Then the 201 names the profile and the host the browser's web SDK must use, nothing of the recipe
    assert (created["profile"], created["engine"]) == (profile, recipe["engine"])
    assert created["avatar_id"] == recipe.get("avatar_id")
    assert created["api_host"] == local.stack.avaturn_api_host
    # And the engine's upstream minted exactly what the profile says
    if recipe["engine"] == "openai-realtime":
        [mint] = local.requests_to("openai.client_secrets")
        openai = recipe["openai"]
        assert mint["body"] == {
            "expires_after": {"anchor": "created_at", "seconds": 600},
            "session": {
                "type": "realtime",
                "model": openai["model"],
                "instructions": openai["instructions"],
                "audio": {
                    "output": {"voice": openai["voice"]},
                    "input": {"transcription": {"model": openai["transcription_model"]}},
                },
            },
        }
        engine: dict[str, Any] = {"type": "openai-realtime", "client_secret": issued(local, "openai")[0]}
    elif recipe["engine"] == "cartesia":
        [mint] = local.requests_to("cartesia.access_token")
        assert mint["body"] == {"grants": {"agent": True}, "expires_in": 600}
        engine = {
            "type": "cartesia",
            "access_token": issued(local, "cartesia")[0],
            "agent_id": recipe["cartesia"]["agent_id"],
        }
    else:
        external = recipe["external"]
        engine = {
            "type": "external",
            "url": external["url"],
            "audio": {"user": {"sample_rate": external["sample_rate"]}},
            "headers": engine_headers(local, external["headers_secret_field"]),
        }
    # And Avaturn got the profile's engine, avatar, background and durations (the broker's defaults
    # where the profile sets none: 900 s and 60 s)
    [create] = local.requests_to("avaturn.create")
    expected = {
        "conversation_engine": engine,
        "max_duration": recipe.get("max_duration", 900),
        "user_absent_timeout": recipe.get("user_absent_timeout", 60),
    }
    expected |= {k: recipe[k] for k in ("avatar_id", "background") if k in recipe}
    assert create["body"] == expected
    assert create["status"] == 200
    # And the session is recorded with its profile, and ends as usual
    assert local.get(created["session_id"], created["token"]).json()["profile"] == profile
    assert local.delete(created["session_id"], created["token"]).status_code == 204
    assert local.upstream_active() == set()


def test_the_profiles_are_listed_with_public_fields_only(local: Local) -> None:
    response = profiles(local)
    assert response.status_code == 200, response.text
    assert response.json() == [
        {"id": pid, "title": EXAMPLE["profiles"][pid]["title"], "engine": EXAMPLE["profiles"][pid]["engine"]}
        for pid in [EXAMPLE["default_profile"], *(p for p in EXAMPLE["profiles"] if p != EXAMPLE["default_profile"])]
    ]
    assert response.headers["cache-control"] == "no-store"


def test_a_legacy_request_is_the_default_profile_and_an_unknown_profile_is_422(local: Local) -> None:
    legacy = local.create({"engine": "external"})
    assert legacy.status_code == 201, legacy.text
    assert legacy.json()["profile"] == EXAMPLE["default_profile"]
    default_external = EXAMPLE["profiles"][EXAMPLE["default_profile"]]["external"]
    [create] = local.requests_to("avaturn.create")
    assert create["body"]["conversation_engine"]["url"] == default_external["url"]
    body = problem(local.create({"profile": "nobody"}), 422)
    assert body["errors"] == [{"loc": "profile", "msg": "unknown profile"}]
    problem(local.create({"profile": "sales", "engine": "cartesia"}), 422)
    assert len(local.requests_to("avaturn.create")) == 1


def test_an_edit_of_the_document_takes_effect_within_the_cache_period(local: Local) -> None:
    # Given the running functions, which have read the example document
    assert [p["id"] for p in profiles(local).json()] == ["concierge", "sales", "support"]
    # When an operator adds a profile and changes a voice in Parameter Store (no deploy)
    edited = copy.deepcopy(EXAMPLE)
    edited["profiles"]["trainer"] = {
        "title": "Trainer",
        "engine": "cartesia",
        "cartesia": {"agent_id": "agent_trainer"},
    }
    edited["profiles"]["concierge"]["openai"]["voice"] = "cedar"
    started = time.monotonic()
    with document(local, edited):
        # Then within the cache period the list shows it and creates follow it
        assert eventually(lambda: "trainer" in [p["id"] for p in profiles(local).json()], CACHE_SECONDS + 5)
        assert eventually(lambda: local.create({"profile": "trainer"}).status_code == 201, CACHE_SECONDS + 5)
        assert time.monotonic() - started < CACHE_SECONDS + 5
        [cartesia] = [r for r in local.requests_to("avaturn.create") if r["status"] == 200]
        assert cartesia["body"]["conversation_engine"]["agent_id"] == "agent_trainer"
        assert local.create({"profile": "concierge"}).status_code == 201
        assert local.requests_to("openai.client_secrets")[-1]["body"]["session"]["audio"]["output"]["voice"] == "cedar"


def test_an_invalid_document_is_503_everywhere_with_a_log_line_naming_the_field(local: Local) -> None:
    # Given an edit that breaks one profile (a sample rate Avaturn does not accept)
    broken = copy.deepcopy(EXAMPLE)
    broken["profiles"]["support"]["external"]["sample_rate"] = 8000
    with document(local, broken):
        # Then no profile is served any more, the good ones included, and nothing reaches an upstream
        assert eventually(lambda: profiles(local).status_code == 503, CACHE_SECONDS + 5)
        # (an unknown profile is 422 while the function still holds the valid copy: no session meanwhile)
        assert eventually(lambda: local.create({"profile": "nobody"}).status_code == 503, CACHE_SECONDS + 5)
        problem(local.create({"profile": "sales"}), 503)
        body = problem(local.create(), 503)
        assert body["type"].endswith(":not-configured")
        assert local.requests_to("avaturn.create") == []
        # And the broker's log names the field, never a value
        logs = local.stack.logs()
        assert "invalid profiles document" in logs
        assert "profiles.support.external.sample_rate" in logs
    # And once it is fixed, sessions are created again
    assert eventually(lambda: local.create({"profile": "sales"}).status_code == 201, CACHE_SECONDS + 5)
