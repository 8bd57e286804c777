"""Identifiers and header values are read as their standards define them: session ids are UUIDs
(RFC 9562: hex digits are case-insensitive), field values lose their optional whitespace (RFC 9110,
section 5.5), ``Idempotency-Key`` is a Structured Field sf-string (RFC 8941) or the bare legacy form,
and a source address names the same owner however it is written (RFC 5952)."""

from __future__ import annotations

import uuid

import pytest

from tests.unit.support import Api, body_of

KEY = "7c1e3a52-5b7f-4f0e-9d2a-6a4c2b8e1f03"  # a UUIDv4: valid in anonymous mode too


@pytest.fixture
def created(api: Api) -> dict:
    return body_of(api.create({"engine": "cartesia"}))


class TestSessionIds:
    @pytest.mark.parametrize("spelling", [str.upper, str.title, lambda s: s[:9].upper() + s[9:]])
    def test_a_session_id_in_any_case_names_the_same_session(self, api: Api, created: dict, spelling) -> None:
        # Given a session, When its id is sent in upper or mixed case
        session_id = spelling(created["session_id"])
        assert session_id != created["session_id"]
        view = api.get(session_id, created["token"])
        # Then it reads and ends the same session, and answers with the canonical (lowercase) id
        assert view["statusCode"] == 200, view
        assert body_of(view)["session_id"] == created["session_id"]
        assert api.delete(session_id, created["token"])["statusCode"] == 204
        assert body_of(api.get(created["session_id"], created["token"]))["status"] == "terminated"

    @pytest.mark.parametrize(
        "session_id",
        [
            "{" + str(uuid.uuid4()) + "}",
            "urn:uuid:" + str(uuid.uuid4()),
            uuid.uuid4().hex,
            str(uuid.uuid1()),  # not a version the broker issues
            " " + str(uuid.uuid4()),
        ],
    )
    def test_other_spellings_are_not_session_ids(self, api: Api, session_id: str) -> None:
        assert api.get(session_id, "t")["statusCode"] == 404
        assert api.delete(session_id, "t")["statusCode"] == 404


class TestFieldValues:
    @pytest.mark.parametrize("padding", [" ", "\t", "  \t "])
    def test_optional_whitespace_around_the_session_token_is_not_part_of_it(
        self, api: Api, created: dict, padding: str
    ) -> None:
        # Given the token with optional whitespace around it (a proxy or client library may add it)
        token = f"{padding}{created['token']}{padding}"
        # When it proves ownership, Then it is the same token
        assert api.get(created["session_id"], token)["statusCode"] == 200
        assert api.delete(created["session_id"], token)["statusCode"] == 204

    def test_optional_whitespace_around_the_idempotency_key_is_not_part_of_it(self, api: Api) -> None:
        # Given a create with the key padded, When it is repeated without the padding
        first = api.create(None, headers={"idempotency-key": f" \t{KEY} "})
        again = api.create(None, headers={"idempotency-key": KEY})
        # Then it is the same key: one session, the same answer
        assert first["statusCode"] == again["statusCode"] == 201
        assert first["body"] == again["body"]
        assert len(api.broker.upstreams.seen("avaturn.create")) == 1

    @pytest.mark.parametrize(
        "content_type",
        ["application/json ; charset=utf-8", " Application/JSON\t", "application/problem+json;charset=UTF-8"],
    )
    def test_the_media_type_is_read_without_whitespace_case_or_parameters(self, api: Api, content_type: str) -> None:
        response = api.create({"engine": "cartesia"}, headers={"content-type": content_type})
        assert response["statusCode"] == 201, response


class TestIdempotencyKeyAsStructuredField:
    def test_the_quoted_sf_string_and_the_bare_form_are_the_same_key(self, api: Api) -> None:
        # Given a create with the key as an RFC 8941 sf-string (the IETF draft's form)
        first = api.create(None, headers={"idempotency-key": f'"{KEY}"'})
        # When the same key arrives in the bare legacy form
        again = api.create(None, headers={"idempotency-key": KEY})
        # Then it is a replay: one upstream session
        assert first["statusCode"] == again["statusCode"] == 201
        assert first["body"] == again["body"]
        assert len(api.broker.upstreams.seen("avaturn.create")) == 1

    def test_escapes_in_an_sf_string_are_unquoted(self, make_broker, handlers) -> None:
        # Given JWT mode (the v1 key rule: any printable ASCII)
        api = Api(make_broker(jwt_issuer="https://issuer.example.test/"), handlers)
        # When the same key is sent quoted with escapes, and bare
        first = api.create(None, headers={"idempotency-key": r'"order \"42\" \\ x"'}, sub="alice")
        again = api.create(None, headers={"idempotency-key": 'order "42" \\ x'}, sub="alice")
        # Then the escapes are undone: the same key
        assert first["statusCode"] == again["statusCode"] == 201
        assert first["body"] == again["body"]

    def test_sf_parameters_are_ignored(self, api: Api) -> None:
        first = api.create(None, headers={"idempotency-key": f'"{KEY}";v=1'})
        again = api.create(None, headers={"idempotency-key": KEY})
        assert first["body"] == again["body"]

    @pytest.mark.parametrize(
        "value",
        [
            f'"{KEY}',  # no closing quote
            f'"{KEY}" trailing',  # characters after the item
            f'"{KEY}", "{KEY}"',  # a list, not an item
            r'"a\nb"',  # backslash before a character other than " or \
            '""',  # the empty string
            '"' + "a" * 129 + '"',  # over 128 characters once unquoted
        ],
    )
    @pytest.mark.parametrize("jwt", [False, True])
    def test_an_invalid_sf_string_is_422(self, make_broker, handlers, value: str, jwt: bool) -> None:
        api = Api(make_broker(jwt_issuer="https://issuer.example.test/" if jwt else ""), handlers)
        response = api.create(None, headers={"idempotency-key": value}, sub="alice" if jwt else None)
        assert response["statusCode"] == 422, response
        assert [e["loc"] for e in body_of(response)["errors"]] == ["header:Idempotency-Key"]
        assert api.broker.upstreams.seen("avaturn.create") == []
