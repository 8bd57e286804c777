"""Anonymous mode is an abuse boundary (DESIGN v2, "Spend control"): everyone behind one address
is one owner, so an Idempotency-Key must be unguessable there; an IPv6 owner is its /64 (one
subscriber's network, not one of its 2^64 addresses); and in JWT mode any subject, ASCII or not,
is an identity and never a 500."""

from __future__ import annotations

import uuid

import pytest

from broker import factory
from broker.config import Settings
from broker.errors import ConfigurationError
from tests.unit.support import Api, body_of

JWT = {"jwt_issuer": "https://issuer.example.test/"}


class TestIdempotencyKeyRandomness:
    @pytest.mark.parametrize(
        "key",
        [
            str(uuid.uuid4()),
            str(uuid.uuid4()).upper(),
            f'"{uuid.uuid4()}"',  # the sf-string form
            "Zm9vYmFyYmF6cXV4MTIzNDU2",  # 24 base64url characters
            "abcdefghij-_KLMNOPQRST",  # exactly 22
            "q83vEjRWeJASNFZ4kBI0Vg==",  # 16 random bytes, base64url with padding
        ],
    )
    def test_a_key_with_at_least_122_random_bits_is_accepted(self, api: Api, key: str) -> None:
        first = api.create(None, headers={"idempotency-key": key})
        again = api.create(None, headers={"idempotency-key": key})
        assert first["statusCode"] == 201, first
        assert again["body"] == first["body"]

    @pytest.mark.parametrize(
        "key",
        [
            "order-42",
            "k",
            "abcdefghij-_KLMNOPQRS",  # 21 base64url characters: 126 bits at most, below the rule
            "abc+def/ghi+jkl/mno+pqr/stu",  # base64, not base64url
            "0b9e6f4c 2d1a 4c8e b7f3 5a6d9e8c1f20",  # spaces
            '"order-42"',
        ],
    )
    def test_a_guessable_key_is_422_in_anonymous_mode(self, api: Api, key: str) -> None:
        # Given anonymous mode, where everyone behind one address shares an owner
        # When a create carries a key that could be guessed (or simply reused by a neighbour)
        response = api.create(None, headers={"idempotency-key": key})
        # Then it is refused before anything is created, so no replay can hand out a token
        assert response["statusCode"] == 422, response
        problem = body_of(response)
        assert problem["type"].endswith(":invalid-request")
        assert [e["loc"] for e in problem["errors"]] == ["header:Idempotency-Key"]
        assert "UUID" in problem["detail"]
        assert api.broker.upstreams.seen("avaturn.create") == []
        assert api.broker.items() == []

    def test_jwt_mode_keeps_the_v1_rule(self, make_broker, handlers) -> None:
        # Given JWT mode (the owner is a verified subject, nobody shares it)
        api = Api(make_broker(**JWT), handlers)
        # When a short, readable key is used twice
        first = api.create(None, headers={"idempotency-key": "order-42"}, sub="alice")
        again = api.create(None, headers={"idempotency-key": "order-42"}, sub="alice")
        # Then it is an ordinary idempotent create
        assert first["statusCode"] == 201
        assert again["body"] == first["body"]


class TestIpv6Owners:
    def test_an_ipv6_owner_is_its_64(self, api: Api) -> None:
        # Given cap 2 and two sessions from two addresses of one /64
        assert api.create(None, source_ip="2001:db8:1:2::1")["statusCode"] == 201
        assert api.create(None, source_ip="2001:db8:1:2:aaaa::1")["statusCode"] == 201
        # When a third address of the same /64 asks (a subscriber rotates privacy addresses freely)
        third = api.create(None, source_ip="2001:db8:1:2:ffff:ffff:ffff:ffff")
        # Then it is the same owner, at its cap; the neighbouring /64 is another owner
        assert third["statusCode"] == 429
        assert api.create(None, source_ip="2001:db8:1:3::1")["statusCode"] == 201
        assert api.broker.active_count("ip:2001:db8:1:2::/64") == 2

    def test_one_address_written_two_ways_is_one_owner(self, api: Api) -> None:
        api.create(None, source_ip="2001:DB8:0:0:0:0:0:1")
        api.create(None, source_ip="2001:db8::1")
        assert api.broker.active_count("ip:2001:db8::/64") == 2

    def test_the_prefix_is_a_setting(self, make_broker, handlers) -> None:
        api = Api(make_broker(anonymous_ipv6_prefix=48), handlers)
        api.create(None, source_ip="2001:db8:1:2::1")
        api.create(None, source_ip="2001:db8:1:ffff::1")
        assert api.create(None, source_ip="2001:db8:1:abcd::1")["statusCode"] == 429
        assert api.broker.active_count("ip:2001:db8:1::/48") == 2

    def test_ipv4_is_unchanged_and_an_ipv4_mapped_address_is_its_ipv4_owner(self, api: Api) -> None:
        api.create(None, source_ip="198.51.100.7")
        api.create(None, source_ip="::ffff:198.51.100.7")
        assert api.broker.active_count("ip:198.51.100.7") == 2
        assert api.create(None, source_ip="::ffff:c633:6407")["statusCode"] == 429

    def test_the_owner_of_a_session_is_its_network(self, api: Api) -> None:
        created = body_of(api.create(None, source_ip="2001:db8:1:2:aaaa::1"))
        [row] = api.broker.sessions()
        assert row["owner"]["S"] == "ip:2001:db8:1:2::/64"
        # ownership is still proven by the token, from any address
        assert api.delete(created["session_id"], created["token"], source_ip="2001:db8:9::9")["statusCode"] == 204
        assert api.broker.active_count("ip:2001:db8:1:2::/64") == 0

    @pytest.mark.parametrize("value", ["0", "47", "129", "64.5", "x"])
    def test_an_insane_prefix_is_a_configuration_error(self, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
        monkeypatch.setenv("ANONYMOUS_IPV6_PREFIX", value)
        with pytest.raises(ConfigurationError):
            factory.load_settings()

    def test_the_default_is_64(self) -> None:
        assert Settings(sessions_table_name="table", broker_secret_id="s").anonymous_ipv6_prefix == 64


class TestJwtSubjects:
    @pytest.mark.parametrize("sub", ["jösé", "用户-42", "😀", "Zoë\u0301", "a\x00b"])
    def test_any_unicode_subject_owns_its_sessions(self, make_broker, handlers, sub: str) -> None:
        # Given JWT mode and a subject outside ASCII
        api = Api(make_broker(**JWT), handlers)
        # When it creates, reads and ends a session, and another subject tries to
        created = body_of(api.create(None, sub=sub))
        assert api.get(created["session_id"], sub=sub + "x")["statusCode"] == 404
        assert api.get(created["session_id"], sub="jose")["statusCode"] == 404
        assert api.get(created["session_id"], sub=sub)["statusCode"] == 200
        # Then only the owner gets in, and nothing answers 500
        assert api.delete(created["session_id"], sub="用户-43")["statusCode"] == 404
        assert api.delete(created["session_id"], sub=sub)["statusCode"] == 204

    @pytest.mark.parametrize("sub", ["\ud800", "a\udfffb"])
    def test_a_subject_that_is_not_valid_unicode_is_401(self, make_broker, handlers, sub: str) -> None:
        api = Api(make_broker(**JWT), handlers)
        for response in (
            api.create(None, sub=sub),
            api.get(str(uuid.uuid4()), sub=sub),
            api.delete(str(uuid.uuid4()), sub=sub),
        ):
            assert response["statusCode"] == 401, response
            assert body_of(response)["type"].endswith(":unauthenticated")

    def test_a_non_ascii_session_token_is_just_a_wrong_token(self, api: Api) -> None:
        created = body_of(api.create(None))
        for token in ("tökén", "\ud800"):
            assert api.get(created["session_id"], token)["statusCode"] == 404
            assert api.delete(created["session_id"], token)["statusCode"] == 404
