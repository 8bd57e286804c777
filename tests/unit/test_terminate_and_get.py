"""DELETE and GET /sessions/{id}: ownership, idempotency, upstream outcomes."""

from __future__ import annotations

import uuid

import pytest

from tests.unit.support import Api, body_of


@pytest.fixture
def created(api: Api) -> dict:
    return body_of(api.create({"engine": "cartesia", "avatar_id": "anna"}))


class TestTerminate:
    def test_owner_ends_the_session(self, api: Api, created: dict) -> None:
        response = api.delete(created["session_id"], created["token"])
        assert response["statusCode"] == 204
        assert response["body"] == ""
        [delete] = api.broker.upstreams.seen("avaturn.delete")
        assert delete.url.startswith("https://avaturn.test/api/v1/sessions/")
        assert delete.headers["authorization"].startswith("Bearer ")
        assert api.broker.upstreams.sessions == {}
        view = body_of(api.get(created["session_id"], created["token"]))
        assert (view["status"], view["end_reason"]) == ("terminated", "owner")
        assert view["terminated_at"].endswith("Z")

    def test_it_is_idempotent(self, api: Api, created: dict) -> None:
        for _ in range(3):
            assert api.delete(created["session_id"], created["token"])["statusCode"] == 204
        assert len(api.broker.upstreams.seen("avaturn.delete")) == 1
        assert api.broker.active_count("ip:198.51.100.7") == 0

    @pytest.mark.parametrize("status", [404, 410])
    def test_avaturn_already_gone_counts_as_ended(self, api: Api, created: dict, status: int) -> None:
        api.broker.upstreams.fail["avaturn.delete"] = status
        assert api.delete(created["session_id"], created["token"])["statusCode"] == 204
        assert body_of(api.get(created["session_id"], created["token"]))["end_reason"] == "owner"

    @pytest.mark.parametrize(("failure", "status"), [(500, 502), (503, 502), ("timeout", 504), ("drop", 502)])
    def test_upstream_failure_keeps_it_marked_for_the_sweep(self, api: Api, created: dict, failure, status) -> None:
        api.broker.upstreams.fail["avaturn.delete"] = failure
        response = api.delete(created["session_id"], created["token"])
        assert response["statusCode"] == status
        assert response["headers"]["Content-Type"] == "application/problem+json"
        assert body_of(api.get(created["session_id"], created["token"]))["status"] == "terminating"
        # When the upstream recovers, a retry by the owner finishes it
        api.broker.upstreams.fail.clear()
        assert api.delete(created["session_id"], created["token"])["statusCode"] == 204
        assert body_of(api.get(created["session_id"], created["token"]))["status"] == "terminated"

    @pytest.mark.parametrize("token", [None, "wrong-token"])
    def test_without_the_token_it_is_404_and_nothing_is_called(self, api: Api, created: dict, token) -> None:
        response = api.delete(created["session_id"], token)
        assert response["statusCode"] == 404
        assert api.broker.upstreams.seen("avaturn.delete") == []
        assert body_of(api.get(created["session_id"], created["token"]))["status"] == "active"

    def test_a_token_of_another_session_does_not_work(self, api: Api, created: dict) -> None:
        other = body_of(api.create(None, source_ip="203.0.113.9"))
        assert api.delete(created["session_id"], other["token"])["statusCode"] == 404

    @pytest.mark.parametrize("session_id", [str(uuid.uuid4()), "not-a-uuid", "x" * 3000, "%00"])
    def test_unknown_session_is_404(self, api: Api, session_id: str) -> None:
        assert api.delete(session_id, "whatever")["statusCode"] == 404
        assert api.broker.upstreams.seen("avaturn.delete") == []

    def test_jwt_mode_uses_the_subject(self, make_broker, handlers) -> None:
        api = Api(make_broker(jwt_issuer="https://issuer.example.test/"), handlers)
        created = body_of(api.create(None, sub="alice"))
        assert api.delete(created["session_id"], created["token"], sub="mallory")["statusCode"] == 404
        assert api.delete(created["session_id"], sub="alice")["statusCode"] == 204


class TestGet:
    def test_owner_reads_the_state(self, api: Api, created: dict) -> None:
        response = api.get(created["session_id"], created["token"])
        assert response["statusCode"] == 200
        view = body_of(response)
        assert view == {
            "session_id": created["session_id"],
            "status": "active",
            "engine": "cartesia",
            "avatar_id": "anna",
            "created_at": view["created_at"],
            "expires_at": created["expires_at"],
            "profile": "default",
        }
        assert created["token"] not in response["body"]

    def test_others_get_404(self, api: Api, created: dict) -> None:
        assert api.get(created["session_id"], "nope")["statusCode"] == 404
        assert api.get(created["session_id"])["statusCode"] == 404
