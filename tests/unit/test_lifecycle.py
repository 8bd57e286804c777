"""Client lifecycle (issue 11): the page's beacon (POST /sessions/{id}/end), the lease
(POST /sessions/{id}/keepalive, SESSION_LEASE_SECONDS), the computed Retry-After of a 429 and,
in JWT mode, GET /sessions?status=active."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx2
import pytest

from broker.models import iso
from tests.unit.fakes import FakeUpstreams
from tests.unit.support import Api, body_of, client_error, http_event

ISSUER = "https://issuer.example.test/"
LEASE = 60


def problem(response: dict[str, Any], status: int, slug: str) -> dict[str, Any]:
    assert response["statusCode"] == status, response.get("body")
    assert response["headers"]["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = json.loads(response["body"])
    assert body["type"].endswith(f":{slug}"), body
    return body


def status_of(api: Api, created: dict[str, Any]) -> tuple[str, str | None]:
    view = body_of(api.get(created["session_id"], created["token"]))
    return view["status"], view.get("end_reason")


@pytest.fixture
def created(api: Api) -> dict[str, Any]:
    return body_of(api.create(None))


@pytest.fixture
def leased(make_broker, handlers) -> Api:
    """One session per owner and a lease of ``LEASE`` seconds."""
    return Api(make_broker(max_active_sessions_per_owner=1, session_lease_seconds=LEASE), handlers)


class TestEndRoute:
    """POST /sessions/{id}/end: the beacon on pagehide, and the page's report of an SDK error."""

    @pytest.mark.parametrize("reason", [None, "page_closed", "user"])
    def test_the_beacon_ends_the_session_upstream(self, api: Api, created: dict, reason: str | None) -> None:
        # Given an active session; when the page sends its beacon (text/plain, the token in the body)
        body = {"token": created["token"]} | ({"reason": reason} if reason else {})
        response = api.end(created["session_id"], body)
        # Then it is ended upstream and in the registry, like a DELETE by the owner
        assert (response["statusCode"], response["body"]) == (204, "")
        assert len(api.broker.upstreams.seen("avaturn.delete")) == 1
        assert api.broker.upstreams.sessions == {}
        assert status_of(api, created) == ("terminated", "owner")
        assert api.broker.active_count("ip:198.51.100.7") == 0

    def test_a_client_error_is_recorded_with_its_code(self, api: Api, created: dict) -> None:
        body = {"token": created["token"], "reason": "client_error", "error": "limits_exceeded"}
        assert api.end(created["session_id"], body)["statusCode"] == 204
        view = body_of(api.get(created["session_id"], created["token"]))
        assert (view["status"], view["end_reason"], view["client_error"]) == (
            "terminated",
            "client_error",
            "limits_exceeded",
        )
        [event] = api.broker.bus.ended()
        assert event["end_reason"] == "client_error"

    def test_an_error_code_without_the_client_error_reason_is_not_recorded(self, api: Api, created: dict) -> None:
        body = {"token": created["token"], "reason": "user", "error": "limits_exceeded"}
        assert api.end(created["session_id"], body)["statusCode"] == 204
        view = body_of(api.get(created["session_id"], created["token"]))
        assert view["end_reason"] == "owner"
        assert "client_error" not in view

    def test_it_is_idempotent(self, api: Api, created: dict) -> None:
        for _ in range(3):
            assert api.end(created["session_id"], {"token": created["token"]})["statusCode"] == 204
        assert len(api.broker.upstreams.seen("avaturn.delete")) == 1

    def test_after_a_delete_it_is_204_and_the_first_reason_stays(self, api: Api, created: dict) -> None:
        assert api.delete(created["session_id"], created["token"])["statusCode"] == 204
        late = {"token": created["token"], "reason": "client_error", "error": "late"}
        assert api.end(created["session_id"], late)["statusCode"] == 204
        assert status_of(api, created) == ("terminated", "owner")

    @pytest.mark.parametrize("content_type", ["application/json", "text/plain", None])
    def test_json_and_a_missing_content_type_are_accepted(self, api: Api, created: dict, content_type) -> None:
        headers = {"content-type": content_type} if content_type else {}
        response = api.end(created["session_id"], {"token": created["token"]}, headers=headers)
        assert response["statusCode"] == 204

    def test_a_base64_encoded_body_is_decoded(self, api: Api, created: dict) -> None:
        raw = json.dumps({"token": created["token"], "reason": "client_error", "error": "sdk_http_429"})
        event = http_event(
            "end_session",
            body=base64.b64encode(raw.encode()).decode(),
            headers={"content-type": "text/plain;charset=UTF-8"},
            session_id=created["session_id"],
        )
        event["isBase64Encoded"] = True
        assert api.call("terminate_session", event)["statusCode"] == 204
        assert status_of(api, created) == ("terminated", "client_error")

    def test_a_body_of_exactly_1024_bytes_is_accepted(self, api: Api, created: dict) -> None:
        text = json.dumps({"token": created["token"]})
        padded = text + " " * (1024 - len(text.encode()))
        assert len(padded.encode()) == 1024
        assert api.end(created["session_id"], raw=padded)["statusCode"] == 204

    @pytest.mark.parametrize("token", ["wrong-token", "x" * 900])
    def test_a_wrong_token_is_404_and_nothing_is_called(self, api: Api, created: dict, token: str) -> None:
        response = api.end(created["session_id"], {"token": token})
        problem(response, 404, "session-not-found")
        assert api.broker.upstreams.seen("avaturn.delete") == []
        assert status_of(api, created) == ("active", None)

    def test_the_token_of_another_session_is_404(self, api: Api, created: dict) -> None:
        other = body_of(api.create(None, source_ip="203.0.113.9"))
        problem(api.end(created["session_id"], {"token": other["token"]}), 404, "session-not-found")
        assert status_of(api, created) == ("active", None)

    @pytest.mark.parametrize("session_id", ["3f2b8a4e-6c1d-4e8f-9a7b-2d5c0e1f4a6b", "not-a-uuid"])
    def test_an_unknown_session_is_404(self, api: Api, session_id: str) -> None:
        problem(api.end(session_id, {"token": "whatever"}), 404, "session-not-found")

    @pytest.mark.parametrize(
        ("raw", "content_type", "status", "slug"),
        [
            ('{"token": "' + "x" * 1100 + '"}', "text/plain", 413, "body-too-large"),
            ("token=abc", "text/plain", 400, "malformed-body"),
            ('{"token": ', "text/plain", 400, "malformed-body"),
            ('["token"]', "text/plain", 422, "invalid-request"),
            ('"token"', "text/plain", 422, "invalid-request"),
            ("{}", "text/plain", 422, "invalid-request"),  # no token
            ('{"reason": "user"}', "text/plain", 422, "invalid-request"),  # no token
            ("", "text/plain", 422, "invalid-request"),  # no body at all
            ('{"token": ""}', "text/plain", 422, "invalid-request"),
            ('{"token": 42}', "text/plain", 422, "invalid-request"),
            ('{"token": "t", "extra": 1}', "text/plain", 422, "invalid-request"),
            ('{"token": "t", "reason": "bored"}', "text/plain", 422, "invalid-request"),
            ('{"token": "t", "reason": null}', "text/plain", 422, "invalid-request"),
            ('{"token": "t", "reason": "client_error", "error": "has spaces"}', "text/plain", 422, "invalid-request"),
            ('{"token": "t", "reason": "client_error", "error": ""}', "text/plain", 422, "invalid-request"),
            ('{"token": "t", "error": "' + "e" * 129 + '"}', "text/plain", 422, "invalid-request"),
            ('{"token": "t", "error": 7}', "text/plain", 422, "invalid-request"),
            ('{"token": "t"}', "application/x-www-form-urlencoded", 415, "unsupported-media-type"),
            ('{"token": "t"}', "multipart/form-data; boundary=x", 415, "unsupported-media-type"),
            ('{"token": "t"}', "text/html", 415, "unsupported-media-type"),
        ],
    )
    def test_bad_input_is_a_problem_and_ends_nothing(
        self, api: Api, created: dict, raw: str, content_type: str, status: int, slug: str
    ) -> None:
        # Given an active session; when its end route gets a bad body
        response = api.end(created["session_id"], raw=raw, headers={"content-type": content_type})
        # Then a problem of the right kind, and the session is untouched
        body = problem(response, status, slug)
        assert "Traceback" not in response["body"]
        assert body["status"] == status
        assert api.broker.upstreams.seen("avaturn.delete") == []
        assert status_of(api, created) == ("active", None)

    def test_a_body_that_is_not_base64_is_400(self, api: Api, created: dict) -> None:
        event = http_event("end_session", body="%%%", session_id=created["session_id"])
        event["isBase64Encoded"] = True
        problem(api.call("terminate_session", event), 400, "malformed-body")

    def test_in_jwt_mode_the_token_alone_proves_ownership(self, make_broker, handlers) -> None:
        # Given JWT mode: a beacon carries no Authorization header
        api = Api(make_broker(jwt_issuer=ISSUER), handlers)
        created = body_of(api.create(None, sub="alice"))
        # When another signed-in user sends the beacon with a wrong token, then 404
        problem(api.end(created["session_id"], {"token": "guess"}, sub="alice"), 404, "session-not-found")
        # When the page sends it with the token and no JWT, then the session ends
        assert api.end(created["session_id"], {"token": created["token"]})["statusCode"] == 204
        view = body_of(api.get(created["session_id"], sub="alice"))
        assert (view["status"], view["end_reason"]) == ("terminated", "owner")

    def test_upstream_failure_is_502_and_the_sweep_finishes_it(self, api: Api, created: dict) -> None:
        api.broker.upstreams.fail["avaturn.delete"] = 500
        problem(api.end(created["session_id"], {"token": created["token"]}), 502, "upstream-error")
        assert status_of(api, created) == ("terminating", None)
        api.broker.upstreams.fail.clear()
        api.broker.fake_clock.advance(api.broker.settings.cleanup_grace_seconds + 1)
        assert api.cleanup()["terminated"] == 1
        assert status_of(api, created) == ("terminated", "owner")


class TestKeepalive:
    """POST /sessions/{id}/keepalive renews the lease: 200, 404 as GET, 409 pending or ended."""

    def test_it_renews_the_lease_from_now(self, leased: Api) -> None:
        created = body_of(leased.create(None))
        leased.broker.fake_clock.advance(30)
        response = leased.keepalive(created["session_id"], created["token"])
        assert response["statusCode"] == 200
        until = iso(int(leased.broker.fake_clock()) + LEASE)
        assert body_of(response) == {"lease_expires_at": until}
        assert body_of(leased.get(created["session_id"], created["token"]))["lease_expires_at"] == until

    def test_the_lease_never_passes_expires_at(self, make_broker, handlers) -> None:
        api = Api(make_broker(session_lease_seconds=600, session_max_duration=900), handlers)
        created = body_of(api.create(None))
        api.broker.fake_clock.advance(800)
        assert body_of(api.keepalive(created["session_id"], created["token"])) == {
            "lease_expires_at": created["expires_at"]
        }

    def test_with_leases_off_it_answers_expires_at(self, api: Api, created: dict) -> None:
        response = api.keepalive(created["session_id"], created["token"])
        assert (response["statusCode"], body_of(response)) == (200, {"lease_expires_at": created["expires_at"]})

    def test_a_renewed_session_keeps_its_slot(self, leased: Api) -> None:
        # Given a session renewed before its lease lapsed
        created = body_of(leased.create(None))
        leased.broker.fake_clock.advance(LEASE - 10)
        assert leased.keepalive(created["session_id"], created["token"])["statusCode"] == 200
        # When the owner creates again after the first lease would have lapsed
        leased.broker.fake_clock.advance(20)
        response = leased.create(None)
        # Then the slot is still taken: the renewed session counts, and nothing was ended
        body = problem(response, 429, "session-cap-reached")
        assert response["headers"]["Retry-After"] == str(LEASE - 20)
        assert (body["limit"], body["used"]) == (1, 1)
        assert leased.broker.upstreams.seen("avaturn.delete") == []
        assert status_of(leased, created) == ("active", None)

    @pytest.mark.parametrize("token", [None, "wrong-token"])
    def test_without_the_right_token_it_is_404(self, leased: Api, token: str | None) -> None:
        created = body_of(leased.create(None))
        problem(leased.keepalive(created["session_id"], token), 404, "session-not-found")

    @pytest.mark.parametrize("session_id", ["3f2b8a4e-6c1d-4e8f-9a7b-2d5c0e1f4a6b", "not-a-uuid", "x" * 3000])
    def test_an_unknown_session_is_404(self, leased: Api, session_id: str) -> None:
        problem(leased.keepalive(session_id, "whatever"), 404, "session-not-found")

    def test_once_ended_it_is_409(self, leased: Api) -> None:
        created = body_of(leased.create(None))
        assert leased.end(created["session_id"], {"token": created["token"]})["statusCode"] == 204
        problem(leased.keepalive(created["session_id"], created["token"]), 409, "session-ended")

    def test_while_being_ended_it_is_409(self, leased: Api) -> None:
        created = body_of(leased.create(None))
        leased.broker.upstreams.fail["avaturn.delete"] = 503
        assert leased.delete(created["session_id"], created["token"])["statusCode"] == 502
        problem(leased.keepalive(created["session_id"], created["token"]), 409, "session-ended")

    def test_while_pending_it_is_409(self, make_broker, handlers) -> None:
        # Given JWT mode (the owner can name a session before Avaturn answered) and a create
        # that is still waiting for Avaturn
        upstreams = FakeUpstreams()
        api = Api(make_broker(upstreams, jwt_issuer=ISSUER, session_lease_seconds=LEASE), handlers)
        inner = upstreams.handle
        during: list[dict[str, Any]] = []

        def slow(request: httpx2.Request) -> httpx2.Response:
            if request.method == "POST" and "/api/v1/sessions" in str(request.url):
                [row] = api.broker.sessions()
                during.append(api.keepalive(row["session_id"]["S"], sub="alice"))
            return inner(request)

        upstreams.handle = slow  # type: ignore[method-assign]
        # When the owner sends a keepalive meanwhile, then it is 409; the create goes on
        assert api.create(None, sub="alice")["statusCode"] == 201
        problem(during[0], 409, "session-conflict")

    def test_in_jwt_mode_the_subject_proves_ownership(self, make_broker, handlers) -> None:
        api = Api(make_broker(jwt_issuer=ISSUER, session_lease_seconds=LEASE), handlers)
        created = body_of(api.create(None, sub="alice"))
        problem(api.keepalive(created["session_id"], created["token"], sub="mallory"), 404, "session-not-found")
        assert api.keepalive(created["session_id"], sub="alice")["statusCode"] == 200


class TestLeaseLapse:
    """A lapsed lease stops counting: the owner's next create, or the sweep, ends it (abandoned)."""

    def test_the_next_create_frees_the_slot_and_ends_the_old_session_upstream(self, leased: Api) -> None:
        # Given a session whose page stopped renewing (a reload, a closed tab)
        old = body_of(leased.create(None))
        [(avaturn_id, _)] = leased.broker.upstreams.sessions.items()
        # When the lease lapses and the owner creates again
        leased.broker.fake_clock.advance(LEASE)
        response = leased.create(None)
        # Then the create succeeds at once, and the old session was ended upstream as abandoned
        assert response["statusCode"] == 201
        [delete] = leased.broker.upstreams.seen("avaturn.delete")
        assert delete.url.endswith(f"/api/v1/sessions/{avaturn_id}")
        assert avaturn_id not in leased.broker.upstreams.sessions
        assert status_of(leased, old) == ("terminated", "abandoned")
        [event] = leased.broker.bus.ended()
        assert (event["session_id"], event["end_reason"]) == (old["session_id"], "abandoned")
        assert leased.broker.active_count("ip:198.51.100.7") == 1

    def test_retry_after_is_the_real_wait(self, leased: Api) -> None:
        # Given a full cap, 20 s into the session's lease
        body_of(leased.create(None))
        leased.broker.fake_clock.advance(20)
        # When the owner creates, then Retry-After is what is left of the lease
        response = leased.create(None)
        problem(response, 429, "session-cap-reached")
        wait = int(response["headers"]["Retry-After"])
        assert wait == LEASE - 20
        # And one second short of it the slot is still taken; at it, it is free
        leased.broker.fake_clock.advance(wait - 1)
        assert leased.create(None)["headers"]["Retry-After"] == "1"
        leased.broker.fake_clock.advance(1)
        assert leased.create(None)["statusCode"] == 201

    def test_retry_after_names_the_first_slot_to_free(self, make_broker, handlers) -> None:
        api = Api(make_broker(max_active_sessions_per_owner=2, session_lease_seconds=LEASE), handlers)
        first = body_of(api.create(None))
        api.broker.fake_clock.advance(10)
        body_of(api.create(None))
        api.broker.fake_clock.advance(10)
        assert api.create(None)["headers"]["Retry-After"] == str(LEASE - 20)  # the first one's lease
        # Once the first is renewed, the second frees first
        assert api.keepalive(first["session_id"], first["token"])["statusCode"] == 200
        assert api.create(None)["headers"]["Retry-After"] == str(LEASE - 10)

    def test_without_a_lease_retry_after_is_until_expires_at(self, make_broker, handlers) -> None:
        api = Api(make_broker(max_active_sessions_per_owner=1, session_max_duration=900), handlers)
        body_of(api.create(None))
        api.broker.fake_clock.advance(100)
        response = api.create(None)
        body = problem(response, 429, "session-cap-reached")
        assert response["headers"]["Retry-After"] == "800"
        assert (body["limit"], body["used"]) == (1, 1)

    def test_retry_after_is_at_least_a_second_when_a_due_session_cannot_be_ended(self, leased: Api) -> None:
        # Given a lapsed session, and a registry that refuses to let anyone claim it
        body_of(leased.create(None))
        leased.broker.fake_clock.advance(LEASE + 5)
        leased.broker.dynamodb.fail(
            lambda op, kw: op == "update_item" and ":terminating" in kw.get("ExpressionAttributeValues", {}),
            lambda kw: client_error("AccessDeniedException", "UpdateItem"),
        )
        # When the owner creates, then the refusal's Retry-After is a valid, positive wait
        response = leased.create(None)
        problem(response, 429, "session-cap-reached")
        assert int(response["headers"]["Retry-After"]) >= 1

    def test_the_sweep_ends_a_lapsed_lease_and_only_that(self, make_broker, handlers) -> None:
        api = Api(make_broker(max_active_sessions_per_owner=2, session_lease_seconds=LEASE), handlers)
        gone = body_of(api.create(None))
        kept = body_of(api.create(None))
        api.broker.fake_clock.advance(LEASE - 10)
        assert api.keepalive(kept["session_id"], kept["token"])["statusCode"] == 200
        api.broker.fake_clock.advance(10)
        assert api.cleanup() == {"examined": 1, "terminated": 1, "failed": 0}
        assert status_of(api, gone) == ("terminated", "abandoned")
        assert status_of(api, kept) == ("active", None)
        assert len(api.broker.upstreams.seen("avaturn.delete")) == 1
        assert api.broker.active_count("ip:198.51.100.7") == 1

    def test_a_session_past_expires_at_is_expired_not_abandoned(self, make_broker, handlers) -> None:
        api = Api(make_broker(session_lease_seconds=600, session_max_duration=600), handlers)
        created = body_of(api.create(None))
        api.broker.fake_clock.advance(601)
        assert api.cleanup()["terminated"] == 1
        assert status_of(api, created) == ("terminated", "expired")


class TestListSessions:
    """GET /sessions?status=active: the caller's open sessions, only in JWT mode, never a token."""

    def test_it_lists_only_the_callers_open_sessions(self, make_broker, handlers) -> None:
        api = Api(make_broker(jwt_issuer=ISSUER, session_lease_seconds=LEASE), handlers)
        mine = [body_of(api.create(None, sub="alice")) for _ in range(2)]
        theirs = body_of(api.create(None, sub="bob"))
        assert api.delete(mine[0]["session_id"], sub="alice")["statusCode"] == 204
        response = api.list(sub="alice")
        assert response["statusCode"] == 200
        assert response["headers"]["Cache-Control"] == "no-store"
        sessions = body_of(response)["sessions"]
        assert [s["session_id"] for s in sessions] == [mine[1]["session_id"]]
        assert sessions[0]["status"] == "active"
        assert sessions[0]["lease_expires_at"] == iso(int(api.broker.fake_clock()) + LEASE)
        for created in (*mine, theirs):
            assert created["token"] not in response["body"]
        assert "token" not in sessions[0]
        assert [s["session_id"] for s in body_of(api.list(sub="bob"))["sessions"]] == [theirs["session_id"]]
        assert body_of(api.list(sub="carol")) == {"sessions": []}

    def test_anonymous_mode_is_401(self, api: Api, created: dict) -> None:
        response = api.list()
        problem(response, 401, "unauthenticated")
        assert created["session_id"] not in response["body"]

    @pytest.mark.parametrize("query", [{}, {"status": "ended"}, {"status": "ACTIVE"}, {"status": ""}])
    def test_another_status_is_422(self, make_broker, handlers, query: dict[str, str]) -> None:
        api = Api(make_broker(jwt_issuer=ISSUER), handlers)
        problem(api.list(query, sub="alice"), 422, "invalid-request")
