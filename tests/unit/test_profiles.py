"""Profiles: POST /sessions {"profile"} through the real handler, with the exact upstream requests of
each profile kind; legacy requests against the default profile; GET /profiles; every kind of invalid
document; the cache."""

from __future__ import annotations

import copy
import json
import logging
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from broker.profiles import ProfilesDocument
from local.aws_resources import put_secret
from tests.unit.fakes import KEYS
from tests.unit.support import Api, Broker, body_of

CONCIERGE = {
    "title": "Concierge",
    "engine": "openai-realtime",
    "avatar_id": "jane_20240829",
    "background": "transparent",
    "max_duration": 600,
    "user_absent_timeout": 30,
    "openai": {
        "model": "gpt-realtime-mini",
        "voice": "cedar",
        "instructions": "You are the concierge. Offer a table.",
        "transcription_model": "gpt-4o-mini-transcribe",
    },
}
SALES = {"title": "Sales", "engine": "cartesia", "background": "default", "cartesia": {"agent_id": "agent_sales_9"}}
SUPPORT = {
    "engine": "external",
    "max_duration": 1800,
    "external": {
        "url": "wss://engine.example.test/support",
        "sample_rate": 16000,
        "headers_secret_field": "support_headers",
    },
}
DOC: dict[str, Any] = {
    "default_profile": "concierge",
    "profiles": {"concierge": CONCIERGE, "sales": SALES, "support": SUPPORT},
}
HEADERS = {"Authorization": "Bearer engine-shared-secret-1", "X-Tenant": "harbour"}


@pytest.fixture
def broker(make_broker) -> Broker:
    broker: Broker = make_broker(profiles=DOC)
    put_secret(broker.secretsmanager, broker.settings.broker_secret_id, {**KEYS, "support_headers": HEADERS})
    return broker


@pytest.fixture
def api(broker: Broker, handlers) -> Api:
    return Api(broker, handlers)


def problem(response: dict[str, Any], status: int, slug: str) -> dict[str, Any]:
    assert response["statusCode"] == status, response
    body: dict[str, Any] = body_of(response)
    assert body["type"].endswith(f":{slug}"), body
    return body


def with_change(path: str, value: Any) -> dict[str, Any]:
    """DOC with one dotted path set (``...`` removes it)."""
    doc = copy.deepcopy(DOC)
    *parents, last = path.split(".")
    target: Any = doc
    for part in parents:
        target = target[part]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return doc


class TestEachProfileKindReachesTheUpstreamsExactly:
    def test_an_openai_profile(self, api: Api) -> None:
        # When a client asks for the concierge profile
        response = api.create({"profile": "concierge"})
        # Then OpenAI mints a secret for exactly the profile's session, user transcription included
        assert response["statusCode"] == 201, response
        upstreams = api.broker.upstreams
        [mint] = upstreams.seen("openai")
        assert mint.body == {
            "expires_after": {"anchor": "created_at", "seconds": 600},
            "session": {
                "type": "realtime",
                "model": "gpt-realtime-mini",
                "instructions": "You are the concierge. Offer a table.",
                "audio": {
                    "output": {"voice": "cedar"},
                    "input": {"transcription": {"model": "gpt-4o-mini-transcribe"}},
                },
            },
        }
        # And Avaturn gets the profile's avatar, background and durations
        [create] = upstreams.seen("avaturn.create")
        assert create.body == {
            "conversation_engine": {"type": "openai-realtime", "client_secret": upstreams.issued[0]},
            "avatar_id": "jane_20240829",
            "background": "transparent",
            "max_duration": 600,
            "user_absent_timeout": 30,
        }
        # And the 201 names the profile and the host the web SDK must use, and nothing of the recipe
        created = body_of(response)
        assert (created["profile"], created["engine"], created["avatar_id"]) == (
            "concierge",
            "openai-realtime",
            "jane_20240829",
        )
        assert created["api_host"] == "https://avaturn.test"
        assert created["expires_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(api.broker.fake_clock() + 600))
        assert "concierge. Offer" not in response["body"]
        # And the session is recorded with its profile
        assert body_of(api.get(created["session_id"], created["token"]))["profile"] == "concierge"
        assert [r["profile"]["S"] for r in api.broker.sessions()] == ["concierge"]

    def test_a_cartesia_profile(self, api: Api) -> None:
        response = api.create({"profile": "sales"})
        assert response["statusCode"] == 201, response
        upstreams = api.broker.upstreams
        [mint] = upstreams.seen("cartesia")
        assert mint.body == {"grants": {"agent": True}, "expires_in": 600}
        assert upstreams.seen("openai") == []
        [create] = upstreams.seen("avaturn.create")
        # the durations the profile does not set are the broker's (SESSION_MAX_DURATION, USER_ABSENT_TIMEOUT)
        assert create.body == {
            "conversation_engine": {
                "type": "cartesia",
                "access_token": upstreams.issued[0],
                "agent_id": "agent_sales_9",
            },
            "background": "default",
            "max_duration": 900,
            "user_absent_timeout": 60,
        }
        assert "agent_sales_9" not in response["body"]

    def test_an_external_profile_gets_its_headers_from_the_secret(self, api: Api) -> None:
        response = api.create({"profile": "support"})
        assert response["statusCode"] == 201, response
        assert api.broker.upstreams.seen("openai") == api.broker.upstreams.seen("cartesia") == []
        [create] = api.broker.upstreams.seen("avaturn.create")
        assert create.body == {
            "conversation_engine": {
                "type": "external",
                "url": "wss://engine.example.test/support",
                "audio": {"user": {"sample_rate": 16000}},
                "headers": HEADERS,
            },
            "max_duration": 1800,
            "user_absent_timeout": 60,
        }
        body = response["body"]
        assert "engine.example.test" not in body
        assert "engine-shared-secret-1" not in body

    def test_an_external_profile_without_headers_sends_none(self, make_broker, handlers) -> None:
        broker = make_broker(profiles=with_change("profiles.support.external.headers_secret_field", ...))
        assert Api(broker, handlers).create({"profile": "support"})["statusCode"] == 201
        assert "headers" not in broker.upstreams.seen("avaturn.create")[0].body["conversation_engine"]

    def test_with_an_engine_secret_the_headers_come_from_it_alone(self, make_broker, handlers) -> None:
        # Given an engine secret that holds the headers, and a broker secret that holds others
        broker = make_broker(profiles=DOC, engine_secret_id="engine-test-secret")
        put_secret(broker.secretsmanager, "engine-test-secret", {**KEYS, "support_headers": HEADERS})
        put_secret(
            broker.secretsmanager, broker.settings.broker_secret_id, {**KEYS, "support_headers": {"X-Other": "no"}}
        )
        # When the external profile is used, its headers are the engine secret's
        assert Api(broker, handlers).create({"profile": "support"})["statusCode"] == 201
        assert broker.upstreams.seen("avaturn.create")[0].body["conversation_engine"]["headers"] == HEADERS

    @pytest.mark.parametrize(
        "field",
        [None, "not an object", {}, {"Bad Name": "x"}, {"X-Ok": "line\r\nbreak"}, {"X-Ok": 1}, {"X-Ok": " padded "}],
    )
    def test_missing_or_invalid_headers_are_503_and_free_the_slot(self, api: Api, caplog, field: Any) -> None:
        secret = {**KEYS} if field is None else {**KEYS, "support_headers": field}
        put_secret(api.broker.secretsmanager, api.broker.settings.broker_secret_id, secret)
        body = problem(api.create({"profile": "support"}), 503, "not-configured")
        assert body["detail"] == "the external engine's headers are not configured"
        assert api.broker.upstreams.seen("avaturn.create") == []
        assert api.broker.active_count("ip:198.51.100.7") == 0
        assert "line\r\nbreak" not in caplog.text + "".join(json.dumps(vars(r), default=str) for r in caplog.records)

    def test_the_budget_clamps_the_profiles_max_duration_upstream_too(self, make_broker, handlers) -> None:
        # Given a daily budget of 400 s and a profile of 600 s
        broker = make_broker(profiles=DOC, max_session_seconds_per_owner_per_day=400)
        # When the profile is used
        created = body_of(Api(broker, handlers).create({"profile": "concierge"}))
        # Then the session, its row and Avaturn all get the 400 s that are left
        assert broker.upstreams.seen("avaturn.create")[0].body["max_duration"] == 400
        [row] = broker.sessions()
        assert int(row["expires_at"]["N"]) - int(row["created_at"]["N"]) == 400
        assert created["expires_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(broker.fake_clock() + 400))


class TestLegacyRequestsUseTheDefaultProfile:
    def test_an_empty_body_is_the_default_profile(self, api: Api) -> None:
        created = body_of(api.create(None))
        assert (created["profile"], created["engine"]) == ("concierge", "openai-realtime")
        assert api.broker.upstreams.seen("avaturn.create")[0].body["max_duration"] == 600

    def test_a_legacy_engine_picks_that_section_of_the_default_profile(self, make_broker, handlers) -> None:
        # Given a default profile that also configures a Cartesia agent
        broker = make_broker(profiles=with_change("profiles.concierge.cartesia", {"agent_id": "agent_front"}))
        # When a v1 client asks for the cartesia engine and an avatar
        created = body_of(Api(broker, handlers).create({"engine": "cartesia", "avatar_id": "ben"}))
        # Then the default profile's other settings hold, with that engine and avatar
        assert (created["profile"], created["engine"], created["avatar_id"]) == ("concierge", "cartesia", "ben")
        assert broker.upstreams.seen("avaturn.create")[0].body == {
            "conversation_engine": {
                "type": "cartesia",
                "access_token": broker.upstreams.issued[0],
                "agent_id": "agent_front",
            },
            "avatar_id": "ben",
            "background": "transparent",
            "max_duration": 600,
            "user_absent_timeout": 30,
        }

    def test_an_engine_the_default_profile_does_not_configure_is_422(self, api: Api) -> None:
        body = problem(api.create({"engine": "cartesia"}), 422, "invalid-request")
        assert body["errors"] == [{"loc": "engine", "msg": "not in the allow-list"}]
        assert api.broker.upstreams.requests == []

    def test_the_allow_lists_still_apply_to_what_a_client_names(self, make_broker, handlers) -> None:
        api = Api(make_broker(profiles=DOC, allowed_engines=("cartesia",), allowed_avatar_ids=("anna",)), handlers)
        problem(api.create({"engine": "openai-realtime"}), 422, "invalid-request")
        problem(api.create({"avatar_id": "ben"}), 422, "invalid-request")
        assert api.broker.upstreams.requests == []
        # but a profile's own engine and avatar are server configuration
        assert api.create({"profile": "concierge"})["statusCode"] == 201
        assert api.create(None, source_ip="203.0.113.9")["statusCode"] == 201


class TestProfileRequests:
    @pytest.mark.parametrize(
        ("body", "loc"),
        [
            ({"profile": "nobody"}, "profile"),
            ({"profile": "sales", "engine": "cartesia"}, "profile"),
            ({"profile": "sales", "avatar_id": "anna"}, "profile"),
            ({"profile": "Sales"}, "profile"),
            ({"profile": "-sales"}, "profile"),
            ({"profile": "s" * 65}, "profile"),
            ({"profile": 7}, "profile"),
        ],
    )
    def test_a_bad_profile_request_is_422_without_an_upstream_call(self, api: Api, body, loc: str) -> None:
        problem_body = problem(api.create(body), 422, "invalid-request")
        assert [e["loc"] for e in problem_body["errors"]] == [loc]
        assert api.broker.upstreams.requests == []
        assert api.broker.sessions() == []

    def test_an_idempotency_key_replays_its_profile_and_refuses_another(self, api: Api) -> None:
        key = {"idempotency-key": "7b0a4c52-9a0e-4d7e-8c57-2f7f3b1f0a11"}
        first = body_of(api.create({"profile": "sales"}, headers=key))
        assert body_of(api.create({"profile": "sales"}, headers=key)) == first
        problem(api.create({"profile": "support"}, headers=key), 422, "idempotency-key-reused")
        assert len(api.broker.upstreams.seen("avaturn.create")) == 1


class TestListingProfiles:
    def test_only_public_fields_the_default_first(self, api: Api) -> None:
        response = api.profiles()
        assert response["statusCode"] == 200
        assert response["headers"]["Cache-Control"] == "no-store"
        assert body_of(response) == [
            {"id": "concierge", "title": "Concierge", "engine": "openai-realtime"},
            {"id": "sales", "title": "Sales", "engine": "cartesia"},
            {"id": "support", "engine": "external"},
        ]
        for hidden in (
            "concierge. Offer",
            "agent_sales_9",
            "engine.example.test",
            "headers_secret_field",
            "support_headers",
        ):
            assert hidden not in response["body"]

    def test_the_default_profile_is_listed_first_wherever_it_is(self, make_broker, handlers) -> None:
        broker = make_broker(profiles={**DOC, "default_profile": "support"})
        assert [p["id"] for p in body_of(Api(broker, handlers).profiles())] == ["support", "concierge", "sales"]


INVALID = [
    ("not json", "{", "document"),
    ("an array", "[]", "document"),
    ("no default_profile", with_change("default_profile", ...), "default_profile"),
    ("a default that is no profile", with_change("default_profile", "nobody"), "document"),
    ("no profiles", with_change("profiles", {}), "profiles"),
    (
        "a bad profile id",
        with_change("profiles", {**DOC["profiles"], "Front Desk": SALES}),
        "profiles.Front Desk.[key]",
    ),
    ("an unknown field", with_change("profiles.sales.instructions", "hello"), "profiles.sales.instructions"),
    ("an unknown top-level field", with_change("version", 2), "version"),
    ("an unknown engine", with_change("profiles.sales.engine", "gemini"), "profiles.sales.engine"),
    ("an engine without its section", with_change("profiles.sales.cartesia", ...), "profiles.sales"),
    ("no voice", with_change("profiles.concierge.openai.voice", ...), "profiles.concierge.openai.voice"),
    ("a bad voice", with_change("profiles.concierge.openai.voice", "Cedar Deep"), "profiles.concierge.openai.voice"),
    ("a bad model", with_change("profiles.concierge.openai.model", ""), "profiles.concierge.openai.model"),
    (
        "a bad transcription model",
        with_change("profiles.concierge.openai.transcription_model", "x y"),
        "profiles.concierge.openai.transcription_model",
    ),
    (
        "empty instructions",
        with_change("profiles.concierge.openai.instructions", ""),
        "profiles.concierge.openai.instructions",
    ),
    ("a bad background", with_change("profiles.sales.background", "blurred"), "profiles.sales.background"),
    ("max_duration below 60", with_change("profiles.sales.max_duration", 59), "profiles.sales.max_duration"),
    ("max_duration above 86400", with_change("profiles.sales.max_duration", 86401), "profiles.sales.max_duration"),
    ("max_duration as text", with_change("profiles.sales.max_duration", "900"), "profiles.sales.max_duration"),
    (
        "user_absent_timeout below 10",
        with_change("profiles.sales.user_absent_timeout", 9),
        "profiles.sales.user_absent_timeout",
    ),
    ("a bad agent id", with_change("profiles.sales.cartesia.agent_id", "agent 9"), "profiles.sales.cartesia.agent_id"),
    (
        "a ws:// URL",
        with_change("profiles.support.external.url", "ws://engine.test/x"),
        "profiles.support.external.url",
    ),
    (
        "a bad sample rate",
        with_change("profiles.support.external.sample_rate", 8000),
        "profiles.support.external.sample_rate",
    ),
    (
        "no sample rate",
        with_change("profiles.support.external.sample_rate", ...),
        "profiles.support.external.sample_rate",
    ),
    (
        "a bad secret field name",
        with_change("profiles.support.external.headers_secret_field", "a b"),
        "profiles.support.external.headers_secret_field",
    ),
    ("a long title", with_change("profiles.sales.title", "t" * 101), "profiles.sales.title"),
    ("a bad avatar id", with_change("profiles.sales.avatar_id", "../x"), "profiles.sales.avatar_id"),
]


class TestAnInvalidDocument:
    @pytest.mark.parametrize(("case", "document", "loc"), INVALID, ids=[c[0] for c in INVALID])
    def test_is_503_with_a_log_line_naming_the_field_and_never_half_applied(
        self, make_broker, handlers, caplog, case: str, document: Any, loc: str
    ) -> None:
        # Given a document with one thing wrong (every other profile is fine)
        broker = make_broker(profiles=document)
        api = Api(broker, handlers)
        caplog.set_level(logging.INFO)
        # When a client lists the profiles or asks for any of them, the good ones included
        responses = [api.profiles(), api.create(None), api.create({"profile": "sales"})]
        # Then every request is refused, nothing reaches an upstream and no slot is taken
        for response in responses:
            body = problem(response, 503, "not-configured")
            assert body["detail"] == "the profiles document is invalid; see the broker's logs"
        assert broker.upstreams.requests == []
        assert broker.sessions() == []
        # And the log line names what is wrong, never a value of the document
        records = [r for r in caplog.records if r.getMessage() == "invalid profiles document"]
        assert len(records) == len(responses)
        assert loc in [error["loc"] for error in records[0].errors], records[0].errors
        logged = caplog.text + "".join(json.dumps(vars(r), default=str) for r in caplog.records)
        for value in ("concierge. Offer", "agent_sales_9", "engine.example.test", "Cedar Deep", "blurred", "agent 9"):
            assert value not in logged

    def test_is_refused_until_it_is_fixed(self, api: Api) -> None:
        assert api.create({"profile": "sales"})["statusCode"] == 201
        api.broker.set_profiles(with_change("profiles.support.external.sample_rate", 8000))
        api.broker.profiles._provider.clear_cache()
        problem(api.create({"profile": "sales"}, source_ip="203.0.113.2"), 503, "not-configured")
        api.broker.set_profiles(DOC)
        api.broker.profiles._provider.clear_cache()
        assert api.create({"profile": "sales"}, source_ip="203.0.113.2")["statusCode"] == 201

    def test_the_template_default_document_shape_validates(self) -> None:
        # the shape template.yaml's ProfilesParameter builds (tests/unit/test_template_profiles.py evaluates it)
        ProfilesDocument.model_validate_json(
            '{"default_profile":"default","profiles":{"default":{"engine":"openai-realtime",'
            '"openai":{"model":"gpt-realtime","voice":"marin"}}}}'
        )


class TestReadingTheDocument:
    def test_a_missing_parameter_is_503_not_configured(self, api: Api) -> None:
        api.broker.ssm.delete_parameter(Name=api.broker.settings.profiles_parameter_name)
        body = problem(api.create(None), 503, "not-configured")
        assert body["detail"] == "the profiles document does not exist"
        problem(api.profiles(), 503, "not-configured")
        assert api.broker.upstreams.requests == []

    def test_parameter_store_refusing_is_503_dependency_unavailable(self, api: Api) -> None:
        def refuse(**kwargs: Any) -> None:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetParameter")

        api.broker.ssm.meta.events.register("before-call.ssm.GetParameter", refuse)
        problem(api.create(None), 503, "dependency-unavailable")
        assert api.broker.upstreams.requests == []

    def test_one_get_parameter_serves_many_invocations(self, api: Api) -> None:
        calls: list[str] = []
        api.broker.ssm.meta.events.register("before-call.ssm.GetParameter", lambda **kw: calls.append("GetParameter"))
        for i in range(4):
            assert api.create({"profile": "sales"}, source_ip=f"203.0.113.{i}")["statusCode"] == 201
            assert api.profiles()["statusCode"] == 200
        assert calls == ["GetParameter"]

    def test_an_edit_takes_effect_within_the_cache_period_without_a_deploy(self, make_broker, handlers) -> None:
        # Given functions that cache the document for one second
        api = Api(make_broker(profiles=DOC, profiles_cache_seconds=1), handlers)
        assert [p["id"] for p in body_of(api.profiles())] == ["concierge", "sales", "support"]
        # When an operator edits the document (a new profile, another voice)
        edited = with_change("profiles.concierge.openai.voice", "marin")
        edited["profiles"]["trainer"] = {"engine": "cartesia", "cartesia": {"agent_id": "agent_t"}}
        api.broker.set_profiles(edited)
        # Then the cached copy serves until the period ends, and the edit after it
        assert [p["id"] for p in body_of(api.profiles())] == ["concierge", "sales", "support"]
        time.sleep(1.05)
        assert [p["id"] for p in body_of(api.profiles())] == ["concierge", "sales", "support", "trainer"]
        assert api.create({"profile": "trainer"})["statusCode"] == 201
        assert api.create({"profile": "concierge"})["statusCode"] == 201
        assert api.broker.upstreams.seen("openai")[0].body["session"]["audio"]["output"]["voice"] == "marin"


def test_the_example_document_has_one_profile_per_engine() -> None:
    from local.paths import PROFILES_EXAMPLE

    document = ProfilesDocument.model_validate_json(PROFILES_EXAMPLE.read_text())
    assert sorted(p.engine for p in document.profiles.values()) == ["cartesia", "external", "openai-realtime"]
    assert json.loads(PROFILES_EXAMPLE.read_text())["default_profile"] == document.default_profile


def literal_values(annotation: Any) -> set[Any]:
    """The values of every ``Literal`` in ``annotation`` (``Literal["a", "b"] | None`` -> {"a", "b"})."""
    from typing import Literal, get_args, get_origin

    if get_origin(annotation) is Literal:
        return set(get_args(annotation))
    return set().union(*(literal_values(a) for a in get_args(annotation)))


@pytest.mark.parametrize("field", ["max_duration", "user_absent_timeout", "background"])
def test_a_profile_field_sent_to_avaturn_has_its_documented_values(field: str) -> None:
    # Given a profile field the broker passes to Avaturn as is, and Avaturn's documented values
    # (as the project's simulator models them: avaturn_app.CreateSessionBody)
    from broker.profiles import Profile
    from tests.unit.test_settings import _bounds
    from upstream_sim.avaturn_app import CreateSessionBody

    ours, upstream = Profile.model_fields[field], CreateSessionBody.model_fields[field]
    # Then the document refuses exactly what Avaturn would refuse on every create
    assert _bounds(ours) == _bounds(upstream)
    assert literal_values(ours.annotation) == literal_values(upstream.annotation)
    assert field != "background" or literal_values(ours.annotation) == {"transparent", "default"}


def test_an_external_sample_rate_has_its_documented_values() -> None:
    from broker.profiles import ExternalRecipe
    from upstream_sim.avaturn_app import ExternalAudioUser

    ours = literal_values(ExternalRecipe.model_fields["sample_rate"].annotation)
    assert ours == literal_values(ExternalAudioUser.model_fields["sample_rate"].annotation) == {16000, 24000}
