"""POST /sessions through the real handler: engines, exact upstream requests, every status code."""

from __future__ import annotations

import json

import pytest

from tests.unit.fakes import KEYS, FakeUpstreams
from tests.unit.support import Api, body_of


def problem(response: dict, status: int) -> dict:
    assert response["statusCode"] == status, response
    assert response["headers"]["Content-Type"] == "application/problem+json"
    body = body_of(response)
    assert set(body) >= {"type", "title", "status", "detail", "request_id"}
    assert body["status"] == status
    assert "Traceback" not in response["body"]
    return body


class TestEngines:
    def test_openai_realtime_mints_a_client_secret_and_binds_it_to_the_avaturn_session(self, api: Api) -> None:
        # Given the default engine (openai-realtime)
        # When a browser asks for a session with an empty body
        response = api.create(None)
        # Then it gets 201 with only the Avaturn token, not the engine secret
        assert response["statusCode"] == 201
        created = body_of(response)
        assert set(created) == {"session_id", "token", "engine", "avatar_id", "expires_at", "profile", "api_host"}
        assert (created["engine"], created["profile"]) == ("openai-realtime", "default")
        assert created["api_host"] == "https://avaturn.test"  # AVATURN_SDK_API_HOST unset: AVATURN_API_URL
        assert created["expires_at"].endswith("Z")
        upstreams = api.broker.upstreams
        mint = upstreams.seen("openai")[0]
        assert mint.url == "https://openai.test/v1/realtime/client_secrets"
        assert mint.headers["authorization"] == f"Bearer {KEYS['openai_api_key']}"
        assert mint.body == {
            "expires_after": {"anchor": "created_at", "seconds": 600},
            "session": {"type": "realtime", "model": "gpt-realtime", "audio": {"output": {"voice": "marin"}}},
        }
        create = upstreams.seen("avaturn.create")[0]
        assert create.url == "https://avaturn.test/api/v1/sessions"
        assert create.headers["authorization"] == f"Bearer {KEYS['avaturn_api_key']}"
        assert create.body == {
            "conversation_engine": {"type": "openai-realtime", "client_secret": upstreams.issued[0]},
            "max_duration": 900,
            "user_absent_timeout": 60,
        }
        assert created["token"] == upstreams.sessions[next(iter(upstreams.sessions))]
        assert upstreams.issued[0] not in response["body"]

    def test_the_client_secret_ttl_comes_from_configuration(self, make_broker, handlers) -> None:
        broker = make_broker(openai_client_secret_ttl=120)
        assert Api(broker, handlers).create({"engine": "openai-realtime"})["statusCode"] == 201
        assert broker.upstreams.seen("openai")[0].body["expires_after"]["seconds"] == 120

    def test_the_sdk_api_host_is_its_own_setting(self, make_broker, handlers) -> None:
        # Given functions that reach Avaturn by another address than browsers do
        broker = make_broker(avaturn_sdk_api_host="http://127.0.0.1:4010/")
        # Then the 201 names the browsers' one (the functions still call AVATURN_API_URL)
        assert body_of(Api(broker, handlers).create(None))["api_host"] == "http://127.0.0.1:4010"
        assert broker.upstreams.seen("avaturn.create")[0].url == "https://avaturn.test/api/v1/sessions"

    def test_cartesia_mints_an_agent_token_with_version_header(self, api: Api) -> None:
        response = api.create({"engine": "cartesia", "avatar_id": "anna"})
        assert response["statusCode"] == 201
        assert body_of(response)["avatar_id"] == "anna"
        mint = api.broker.upstreams.seen("cartesia")[0]
        assert mint.url == "https://cartesia.test/access-token"
        assert mint.headers["authorization"] == f"Bearer {KEYS['cartesia_api_key']}"
        assert mint.headers["cartesia-version"] == "2025-04-16"
        assert mint.body == {"grants": {"agent": True}, "expires_in": 600}
        create = api.broker.upstreams.seen("avaturn.create")[0]
        assert create.body == {
            "conversation_engine": {
                "type": "cartesia",
                "access_token": api.broker.upstreams.issued[0],
                "agent_id": "agent_123",
            },
            "avatar_id": "anna",
            "max_duration": 900,
            "user_absent_timeout": 60,
        }

    def test_external_engine_needs_no_credential(self, api: Api) -> None:
        response = api.create({"engine": "external"})
        assert response["statusCode"] == 201
        assert api.broker.upstreams.seen("openai") == []
        assert api.broker.upstreams.seen("cartesia") == []
        assert api.broker.upstreams.seen("avaturn.create")[0].body["conversation_engine"] == {
            "type": "external",
            "url": "wss://engine.example.test/ws",
            "audio": {"user": {"sample_rate": 24000}},
        }

    def test_the_registry_keeps_only_a_digest_of_the_token(self, api: Api) -> None:
        created = body_of(api.create(None))
        [row] = api.broker.sessions()
        assert row["status"]["S"] == "active"
        assert created["token"] not in json.dumps(row)
        assert row["owner"]["S"] == "ip:198.51.100.7"


class TestBadInput:
    @pytest.mark.parametrize(
        ("raw", "content_type", "status"),
        [
            ("{not json", "application/json", 400),
            ('{"engine": "cartesia"', "application/json", 400),
            ("[" * 3000, "application/json", 400),
            ("x" * 4097, "application/json", 413),
            ('{"engine": "openai-realtime"}', "text/plain", 415),
            ('{"engine": "openai-realtime"}', "application/x-www-form-urlencoded", 415),
            ('{"model": "gpt-4o"}', "application/json", 422),
            ('{"engine": "whisper"}', "application/json", 422),
            ('{"engine": 1}', "application/json", 422),
            ('{"avatar_id": ""}', "application/json", 422),
            ('{"avatar_id": "../../etc"}', "application/json", 422),
            ("[]", "application/json", 422),
            ('"text"', "application/json", 422),
            ("null", "application/json", 422),
        ],
    )
    def test_bad_bodies_get_a_4xx_problem_and_no_upstream_call(self, api: Api, raw, content_type, status) -> None:
        response = api.create(raw=raw, headers={"content-type": content_type})
        problem(response, status)
        assert api.broker.upstreams.requests == []

    def test_unknown_field_is_named_but_not_echoed(self, api: Api) -> None:
        body = problem(api.create({"instructions": "SECRET-PROMPT"}), 422)
        assert body["errors"][0]["loc"] == "instructions"
        assert "SECRET-PROMPT" not in json.dumps(body)

    def test_base64_encoded_body_is_decoded(self, api: Api) -> None:
        from tests.unit.support import http_event

        event = http_event(
            "create_session", body="eyJlbmdpbmUiOiAiZXh0ZXJuYWwifQ==", headers={"content-type": "application/json"}
        )
        event["isBase64Encoded"] = True
        response = api.call("create_session", event)
        assert response["statusCode"] == 201
        assert body_of(response)["engine"] == "external"

    def test_non_utf8_body_is_400(self, api: Api) -> None:
        from tests.unit.support import http_event

        # API Gateway hands a body that is not text to the function base64-encoded
        event = http_event("create_session", body="7il9jQ==", headers={"content-type": "application/json"})
        event["isBase64Encoded"] = True
        response = api.call("create_session", event)
        problem(response, 400)

    def test_engine_outside_the_allow_list_is_422(self, make_broker, handlers) -> None:
        api = Api(make_broker(allowed_engines=("openai-realtime",)), handlers)
        assert problem(api.create({"engine": "cartesia"}), 422)["detail"].startswith("engine 'cartesia'")

    def test_avatar_outside_the_allow_list_is_422(self, make_broker, handlers) -> None:
        api = Api(make_broker(allowed_avatar_ids=("anna", "ben")), handlers)
        problem(api.create({"avatar_id": "carl"}), 422)
        assert api.create({"avatar_id": "ben"})["statusCode"] == 201

    def test_overlong_idempotency_key_is_422(self, api: Api) -> None:
        problem(api.create(None, headers={"idempotency-key": "k" * 129}), 422)


class TestUpstreamFailures:
    @pytest.mark.parametrize(
        ("endpoint", "failure", "status"),
        [
            ("openai", 500, 502),
            ("openai", 429, 503),
            ("openai", 401, 502),
            ("openai", "timeout", 504),
            ("openai", "malformed", 502),
            ("openai", "schema", 502),
            ("openai", "drop", 502),
            ("avaturn.create", 500, 502),
            ("avaturn.create", 422, 502),
            ("avaturn.create", 429, 503),
            ("avaturn.create", "timeout", 504),
            ("avaturn.create", "malformed", 502),
            ("avaturn.create", "schema", 502),
            ("avaturn.create", "drop", 502),
        ],
    )
    def test_failures_map_to_502_or_504_and_release_the_slot(
        self, make_broker, handlers, endpoint, failure, status
    ) -> None:
        broker = make_broker(FakeUpstreams(fail={endpoint: failure}))
        body = problem(Api(broker, handlers).create(None), status)
        assert "injected" not in body["detail"]
        # Then nothing stays active and the owner's slot is given back
        assert [r["status"]["S"] for r in broker.sessions()] == ["failed"]
        assert broker.active_count("ip:198.51.100.7") == 0

    @pytest.mark.parametrize(("failure", "status", "attempts"), [(500, 502, 3), ("timeout", 504, 3), (400, 502, 1)])
    def test_cartesia_mint_is_retried_within_the_deadline(
        self, make_broker, handlers, failure, status, attempts
    ) -> None:
        broker = make_broker(FakeUpstreams(fail={"cartesia": failure}))
        problem(Api(broker, handlers).create({"engine": "cartesia"}), status)
        assert len(broker.upstreams.seen("cartesia")) == attempts

    def test_openai_mint_is_retried_within_the_deadline(self, make_broker, handlers) -> None:
        broker = make_broker(FakeUpstreams(fail={"openai": 503}))
        problem(Api(broker, handlers).create(None), 502)
        assert len(broker.upstreams.seen("openai")) == 3

    @pytest.mark.parametrize("failure", [500, "timeout", "drop"])
    def test_avaturn_create_is_never_retried(self, make_broker, handlers, failure) -> None:
        broker = make_broker(FakeUpstreams(fail={"avaturn.create": failure}))
        Api(broker, handlers).create(None)
        assert len(broker.upstreams.seen("avaturn.create")) == 1


class TestKeys:
    def test_missing_engine_key_is_503_before_any_upstream_call(self, api: Api) -> None:
        from local.aws_resources import put_secret

        put_secret(api.broker.secretsmanager, api.broker.settings.broker_secret_id, {**KEYS, "openai_api_key": ""})
        problem(api.create(None), 503)
        assert api.broker.upstreams.requests == []
        assert api.broker.active_count("ip:198.51.100.7") == 0

    def test_missing_secret_is_503(self, api: Api) -> None:
        api.broker.secretsmanager.delete_secret(
            SecretId=api.broker.settings.broker_secret_id, ForceDeleteWithoutRecovery=True
        )
        assert problem(api.create(None), 503)["detail"] == "the broker secret does not exist"

    def test_secret_that_is_not_json_is_503(self, api: Api) -> None:
        api.broker.secretsmanager.put_secret_value(
            SecretId=api.broker.settings.broker_secret_id, SecretString="not json"
        )
        problem(api.create(None), 503)

    def test_one_get_secret_value_serves_many_invocations(self, api: Api) -> None:
        calls: list[str] = []
        api.broker.secretsmanager.meta.events.register(
            "before-call.secrets-manager.GetSecretValue", lambda **kw: calls.append("GetSecretValue")
        )
        for i in range(5):
            response = api.create(None, source_ip=f"203.0.113.{i}")
            assert response["statusCode"] == 201
        assert calls == ["GetSecretValue"]


class TestJwtMode:
    def test_without_a_subject_it_is_401(self, make_broker, handlers) -> None:
        api = Api(make_broker(jwt_issuer="https://issuer.example.test/"), handlers)
        problem(api.create(None), 401)

    def test_the_cap_counts_by_subject(self, make_broker, handlers) -> None:
        api = Api(make_broker(jwt_issuer="https://issuer.example.test/", max_active_sessions_per_owner=1), handlers)
        assert api.create(None, sub="user-1", source_ip="203.0.113.1")["statusCode"] == 201
        assert api.create(None, sub="user-1", source_ip="203.0.113.2")["statusCode"] == 429
        assert api.create(None, sub="user-2", source_ip="203.0.113.1")["statusCode"] == 201
