"""The operator plane through the real admin handler: listing, ending one or many sessions (end
reason ``admin``, one event each), the kill switch, usage, and IAM as the only way in."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import httpx2
import pytest

from tests.unit.fakes import FakeUpstreams
from tests.unit.operator_support import OPERATOR_ARN, Admin, admin_event
from tests.unit.support import Api, body_of, load_handler

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
PROBLEM = "tag:avaturn-session-broker,2026:problem:"


@pytest.fixture(scope="module")
def admin_module() -> ModuleType:
    return load_handler("admin")


@pytest.fixture
def admin(api: Api, admin_module: ModuleType) -> Iterator[Admin]:
    yield Admin(api.broker, admin_module)
    admin_module.app.dependency_overrides = {}


def create(api: Api, owners: dict[str, int], engine: str = "openai-realtime") -> list[dict[str, Any]]:
    """Sessions created through the real create handler: ``owners[ip]`` for each source address."""
    created = []
    for ip, n in owners.items():
        for _ in range(n):
            response = api.create({"engine": engine}, source_ip=ip)
            assert response["statusCode"] == 201, response["body"]
            created.append(body_of(response))
    return created


def list_all(admin: Admin, **query: str) -> list[dict[str, Any]]:
    """Every page of GET /admin/sessions, following the cursor."""
    sessions: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {**query, **({"cursor": cursor} if cursor else {})}
        status, page = admin.request("GET", "/admin/sessions", query=params)
        assert status == 200, page
        sessions += page["sessions"]
        cursor = page["cursor"]
        if cursor is None:
            return sessions


def problem(status_and_body: tuple[int, Any], status: int, slug: str) -> dict[str, Any]:
    got, body = status_and_body
    assert got == status, body
    assert body["type"] == PROBLEM + slug
    return dict(body)


class TestListing:
    def test_pages_list_every_active_session_once_with_its_owner_and_never_a_token(
        self, api: Api, admin: Admin
    ) -> None:
        # Given five sessions of three owners
        created = create(api, {"203.0.113.1": 2, "203.0.113.2": 2, "203.0.113.3": 1})
        # When the operator lists them two at a time
        status, first = admin.request("GET", "/admin/sessions", query={"limit": "2"})
        listed = list_all(admin, limit="2")
        # Then pages hold two each, and together every session exactly once, with its owner
        assert status == 200
        assert len(first["sessions"]) == 2
        assert first["cursor"]
        assert sorted(s["session_id"] for s in listed) == sorted(c["session_id"] for c in created)
        assert {s["owner"] for s in listed} == {"ip:203.0.113.1", "ip:203.0.113.2", "ip:203.0.113.3"}
        assert {s["status"] for s in listed} == {"active"}
        # And no token, nor its hash, is ever shown
        text = json.dumps(listed)
        assert all(c["token"] not in text for c in created)
        assert "token" not in text

    def test_one_owners_sessions(self, api: Api, admin: Admin) -> None:
        mine = create(api, {"203.0.113.1": 2})
        create(api, {"203.0.113.2": 2})
        listed = list_all(admin, owner="ip:203.0.113.1", limit="1")
        assert sorted(s["session_id"] for s in listed) == sorted(c["session_id"] for c in mine)

    def test_sessions_being_ended_are_listed_by_their_own_status(self, api: Api, admin: Admin) -> None:
        # Given a session whose end Avaturn failed (it stays terminating) and one still active
        stuck, active = create(api, {"203.0.113.1": 2})
        api.broker.upstreams.fail["avaturn.delete"] = 500
        assert api.delete(stuck["session_id"], stuck["token"], source_ip="203.0.113.1")["statusCode"] == 502
        # When the operator lists each status, then each session is where it is
        assert [s["session_id"] for s in list_all(admin, status="terminating")] == [stuck["session_id"]]
        assert [s["session_id"] for s in list_all(admin, status="active")] == [active["session_id"]]
        assert list_all(admin, status="pending") == []

    @pytest.mark.parametrize(
        ("query", "loc"),
        [
            ({"status": "terminated"}, "query:status"),
            ({"limit": "0"}, "query:limit"),
            ({"limit": "501"}, "query:limit"),
            ({"limit": "ten"}, "query:limit"),
            ({"cursor": "not-a-cursor"}, "query:cursor"),
            ({"cursor": base64.urlsafe_b64encode(b'{"id": "x", "due": 1}').decode()}, "query:cursor"),
            ({"owner": ""}, "query:owner"),
            ({"sort": "owner"}, "query:sort"),
        ],
    )
    def test_bad_queries_are_422_and_never_reach_the_registry(
        self, admin: Admin, query: dict[str, str], loc: str
    ) -> None:
        calls = dict(admin.broker.dynamodb.calls)
        body = problem(admin.request("GET", "/admin/sessions", query=query), 422, "invalid-request")
        assert loc in {e["loc"] for e in body["errors"]}
        assert admin.broker.dynamodb.calls.get("query", 0) == calls.get("query", 0)


class TestEndOne:
    def test_ends_any_owners_session_with_reason_admin_and_one_event(self, api: Api, admin: Admin) -> None:
        [session] = create(api, {"203.0.113.1": 1})
        # When the operator ends it (no token needed: IAM is the proof)
        status, result = admin.request("POST", f"/admin/sessions/{session['session_id']}/end")
        # Then it is over upstream and in the registry, the owner's slot is free, and one event says why
        assert status == 200
        assert result["outcome"] == "ended"
        assert (result["session"]["status"], result["session"]["end_reason"]) == ("terminated", "admin")
        assert api.broker.upstreams.sessions == {}
        assert api.broker.active_count("ip:203.0.113.1") == 0
        [event] = api.broker.bus.ended()
        assert (event["session_id"], event["end_reason"]) == (session["session_id"], "admin")
        # And ending it again changes nothing
        status, again = admin.request("POST", f"/admin/sessions/{session['session_id']}/end")
        assert (status, again["outcome"]) == (200, "already_ended")
        assert len(api.broker.upstreams.seen("avaturn.delete")) == 1
        assert len(api.broker.bus.ended()) == 1

    @pytest.mark.parametrize("session_id", ["0b6f7e0a-3c1d-4e2f-8a9b-0c1d2e3f4a5b", "not-a-session"])
    def test_unknown_session_is_404(self, admin: Admin, session_id: str) -> None:
        problem(admin.request("POST", f"/admin/sessions/{session_id}/end"), 404, "session-not-found")

    def test_avaturn_failing_is_502_and_the_session_stays_for_the_sweep(self, api: Api, admin: Admin) -> None:
        [session] = create(api, {"203.0.113.1": 1})
        api.broker.upstreams.fail["avaturn.delete"] = 500
        problem(admin.request("POST", f"/admin/sessions/{session['session_id']}/end"), 502, "upstream-error")
        assert [s["session_id"] for s in list_all(admin, status="terminating")] == [session["session_id"]]
        # the sweep finishes it after the claim's grace period, still as the operator's end
        api.broker.upstreams.fail.clear()
        api.broker.fake_clock.advance(api.broker.settings.cleanup_grace_seconds + 1)
        assert api.cleanup() == {"examined": 1, "terminated": 1, "failed": 0}
        assert [e["end_reason"] for e in api.broker.bus.ended()] == ["admin"]


class TestBulkEnd:
    def test_ends_every_active_session_of_every_owner(self, api: Api, admin: Admin) -> None:
        created = create(api, {"203.0.113.1": 2, "203.0.113.2": 2, "203.0.113.3": 1})
        status, summary = admin.request("POST", "/admin/end-sessions")
        assert status == 200
        assert summary == {"examined": 5, "ended": 5, "failed": 0, "skipped": 0, "more": False}
        assert api.broker.upstreams.sessions == {}
        ended = api.broker.bus.ended()
        assert sorted(e["session_id"] for e in ended) == sorted(c["session_id"] for c in created)
        assert {e["end_reason"] for e in ended} == {"admin"}
        assert list_all(admin) == []

    def test_one_owner_only(self, api: Api, admin: Admin) -> None:
        create(api, {"203.0.113.1": 2})
        others = create(api, {"203.0.113.2": 2})
        status, summary = admin.request("POST", "/admin/end-sessions", {"owner": "ip:203.0.113.1"})
        assert (status, summary["ended"], summary["more"]) == (200, 2, False)
        assert sorted(s["session_id"] for s in list_all(admin)) == sorted(c["session_id"] for c in others)
        assert {e["end_reason"] for e in api.broker.bus.ended()} == {"admin"}

    def test_a_limit_stops_early_and_running_again_goes_on_without_ending_any_twice(
        self, make_broker, handlers, admin_module: ModuleType
    ) -> None:
        broker = make_broker(max_active_sessions_per_owner=20)
        api, admin = Api(broker, handlers), Admin(broker, admin_module)
        created = create(api, {"203.0.113.1": 12})
        # When the operator ends at most 5 per call until nothing more is left
        runs: list[dict[str, Any]] = []
        while not runs or runs[-1]["more"]:
            status, summary = admin.request("POST", "/admin/end-sessions", {"limit": 5})
            assert status == 200
            runs.append(summary)
        # Then the calls ended 5, 5, 2, each session exactly once
        assert [r["ended"] for r in runs] == [5, 5, 2]
        assert [r["more"] for r in runs] == [True, True, False]
        ended = [e["session_id"] for e in broker.bus.ended()]
        assert sorted(ended) == sorted(c["session_id"] for c in created)
        assert len(broker.upstreams.seen("avaturn.delete")) == 12

    def test_it_stops_within_its_time_budget_and_resumes_cleanly(
        self, make_broker, handlers, admin_module: ModuleType
    ) -> None:
        # Given 40 sessions, an Avaturn that takes 0.25 s per DELETE, 2 ends at a time, and an
        # invocation with 4.5 s left of which 3 s are kept back for the ends in flight
        upstreams = FakeUpstreams()
        broker = make_broker(
            upstreams,
            max_active_sessions_per_owner=40,
            cleanup_concurrency=2,
            upstream_connect_timeout=0.5,
            upstream_read_timeout=0.5,
        )
        api, admin = Api(broker, handlers), Admin(broker, admin_module)
        created = create(api, {"203.0.113.1": 40})
        slow = upstreams.handle

        def handle(request: httpx2.Request) -> httpx2.Response:
            if request.method == "DELETE":
                time.sleep(0.25)
            return slow(request)

        upstreams.handle = handle  # type: ignore[method-assign]
        # When the operator runs the bulk end until it says there is no more
        runs: list[dict[str, Any]] = []
        started = time.monotonic()
        while not runs or runs[-1]["more"]:
            event = admin_event("POST", "/admin/end-sessions", body="{}")
            t0 = time.monotonic()
            response = admin.call(event, remaining_ms=4_500)
            runs.append(json.loads(response["body"]) | {"seconds": time.monotonic() - t0})
            assert len(runs) < 20
            assert time.monotonic() - started < 60
        # Then each run answered within its budget, the first could not end them all, and
        # together they ended every session exactly once
        assert all(r["seconds"] < 4.5 for r in runs), runs
        assert runs[0]["more"]
        assert 0 < runs[0]["ended"] < 40
        assert sum(r["ended"] for r in runs) == 40
        assert sum(r["failed"] + r["skipped"] for r in runs) == 0
        ended = [e["session_id"] for e in broker.bus.ended()]
        assert sorted(ended) == sorted(c["session_id"] for c in created)

    def test_failed_ends_are_counted_left_to_the_sweep_and_not_retried_in_a_loop(self, api: Api, admin: Admin) -> None:
        create(api, {"203.0.113.1": 2, "203.0.113.2": 1})
        api.broker.upstreams.fail["avaturn.delete"] = 503
        status, summary = admin.request("POST", "/admin/end-sessions")
        assert (status, summary) == (200, {"examined": 3, "ended": 0, "failed": 3, "skipped": 0, "more": False})
        # running it again finds no active session: the three wait, claimed, for the sweep
        assert admin.request("POST", "/admin/end-sessions")[1]["examined"] == 0
        assert len(list_all(admin, status="terminating")) == 3
        api.broker.upstreams.fail.clear()
        api.broker.fake_clock.advance(api.broker.settings.cleanup_grace_seconds + 1)
        assert api.cleanup() == {"examined": 3, "terminated": 3, "failed": 0}
        assert [e["end_reason"] for e in api.broker.bus.ended()] == ["admin"] * 3

    def test_two_bulk_ends_at_once_end_each_session_once(self, make_broker, handlers, admin_module: ModuleType) -> None:
        broker = make_broker(max_active_sessions_per_owner=30)
        api, admin = Api(broker, handlers), Admin(broker, admin_module)
        created = create(api, {"203.0.113.1": 30})
        results: list[dict[str, Any]] = []

        def run() -> None:
            results.append(admin.request("POST", "/admin/end-sessions")[1])

        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(r["ended"] for r in results) == 30
        assert sorted(e["session_id"] for e in broker.bus.ended()) == sorted(c["session_id"] for c in created)

    @pytest.mark.parametrize(
        ("body", "content_type", "status", "slug"),
        [
            ('{"owner": "ip:1.2.3.4", "all": true}', "application/json", 422, "invalid-request"),
            ('{"limit": 0}', "application/json", 422, "invalid-request"),
            ('{"owner": 7}', "application/json", 422, "invalid-request"),
            ("{", "application/json", 400, "malformed-body"),
            ("{}", "text/plain", 415, "unsupported-media-type"),
        ],
    )
    def test_bad_bodies_are_4xx_and_end_nothing(
        self, api: Api, admin: Admin, body: str, content_type: str, status: int, slug: str
    ) -> None:
        create(api, {"203.0.113.1": 1})
        event = admin_event("POST", "/admin/end-sessions", body=body, headers={"content-type": content_type})
        response = admin.call(event)
        assert response["statusCode"] == status
        assert json.loads(response["body"])["type"] == PROBLEM + slug
        assert api.broker.upstreams.seen("avaturn.delete") == []


class TestKillSwitch:
    def test_pause_refuses_creates_until_resumed(self, api: Api, admin: Admin) -> None:
        assert admin.request("GET", "/admin/creates") == (200, {"paused": False, "reason": None, "updated_at": None})
        # When the operator pauses creates
        status, state = admin.request("PUT", "/admin/creates", {"paused": True, "reason": "incident 42"})
        # Then the switch says so, and creates answer 503 creates-paused without calling anyone
        assert status == 200
        assert (state["paused"], state["reason"]) == (True, "incident 42")
        assert state["updated_at"].endswith("Z")
        assert admin.request("GET", "/admin/creates")[1] == state
        refused = api.create(None)
        assert refused["statusCode"] == 503
        assert body_of(refused)["type"] == PROBLEM + "creates-paused"
        assert api.broker.upstreams.requests == []
        # And after a resume (which forgets the reason) creates work again
        assert admin.request("PUT", "/admin/creates", {"paused": False})[1]["reason"] is None
        assert api.create(None)["statusCode"] == 201

    @pytest.mark.parametrize("body", ["{}", '{"paused": "yes"}', '{"paused": true, "reason": ""}', "[]"])
    def test_bad_bodies_are_422_and_change_nothing(self, admin: Admin, body: str) -> None:
        response = admin.call(admin_event("PUT", "/admin/creates", body=body))
        assert response["statusCode"] == 422
        assert admin.request("GET", "/admin/creates")[1]["paused"] is False


class TestUsage:
    def test_usage_by_owner_engine_profile_and_day(self, api: Api, admin: Admin) -> None:
        # Given sessions of two owners and engines, ended after 100 s and 300 s, on two UTC days
        clock = api.broker.fake_clock
        day1 = time.strftime("%Y-%m-%d", time.gmtime(clock()))
        a = create(api, {"203.0.113.1": 2}, engine="cartesia")
        b = create(api, {"203.0.113.2": 1})
        clock.advance(100)
        for s in a:
            assert api.delete(s["session_id"], s["token"], source_ip="203.0.113.1")["statusCode"] == 204
        clock.advance(200)
        admin.request("POST", f"/admin/sessions/{b[0]['session_id']}/end")
        clock.advance(86_400)
        day2 = time.strftime("%Y-%m-%d", time.gmtime(clock()))
        [c] = create(api, {"203.0.113.1": 1}, engine="cartesia")
        clock.advance(60)
        api.delete(c["session_id"], c["token"], source_ip="203.0.113.1")

        def usage(**query: str) -> dict[str, Any]:
            status, report = admin.request("GET", "/admin/usage", query={"from": day1, "to": day2, **query})
            assert status == 200, report
            return dict(report)

        # Then each grouping adds up the same sessions and seconds
        by_owner = usage(group_by="owner")
        assert (by_owner["from"], by_owner["to"], by_owner["group_by"]) == (day1, day2, "owner")
        assert by_owner["rows"] == [
            {"key": "ip:203.0.113.2", "sessions": 1, "seconds": 300},
            {"key": "ip:203.0.113.1", "sessions": 3, "seconds": 260},
        ]
        assert by_owner["total"] == {"sessions": 4, "seconds": 560}
        assert usage(group_by="engine")["rows"] == [
            {"key": "openai-realtime", "sessions": 1, "seconds": 300},
            {"key": "cartesia", "sessions": 3, "seconds": 260},
        ]
        assert usage(group_by="day")["rows"] == [
            {"key": day1, "sessions": 3, "seconds": 500},
            {"key": day2, "sessions": 1, "seconds": 60},
        ]
        assert [r["key"] for r in usage(group_by="profile")["rows"]] == ["default"]  # every create's profile
        # And one day alone is that day's share; the default range is today
        assert admin.request("GET", "/admin/usage", query={"from": day2})[1]["total"] == {"sessions": 1, "seconds": 60}
        assert admin.request("GET", "/admin/usage")[1]["from"] == day2

    @pytest.mark.parametrize(
        "query",
        [
            {"from": "2026-03-02", "to": "2026-03-01"},
            {"from": "2026-01-01", "to": "2026-04-04"},
            {"from": "2026-02-30"},
            {"from": "20260101"},
            {"group_by": "avatar"},
        ],
    )
    def test_bad_ranges_are_422(self, admin: Admin, query: dict[str, str]) -> None:
        problem(admin.request("GET", "/admin/usage", query=query), 422, "invalid-request")

    def test_a_quarter_is_one_query_per_day(self, admin: Admin) -> None:
        before = admin.broker.dynamodb.calls.get("query", 0)
        status, _ = admin.request("GET", "/admin/usage", query={"from": "2026-01-01", "to": "2026-04-03"})
        assert status == 200
        assert admin.broker.dynamodb.calls["query"] - before == 93


class TestIamOnly:
    @pytest.mark.parametrize(
        ("method", "path", "body"),
        [
            ("GET", "/admin/sessions", None),
            ("POST", "/admin/end-sessions", "{}"),
            ("PUT", "/admin/creates", '{"paused": true}'),
            ("GET", "/admin/usage", None),
        ],
    )
    def test_a_request_api_gateway_did_not_authorize_with_iam_is_refused(
        self, api: Api, admin: Admin, method: str, path: str, body: str | None
    ) -> None:
        # Given a session, and a request without the IAM authorizer's context (a route that lost
        # its authorization, or a direct invocation)
        create(api, {"203.0.113.1": 1})
        response = admin.call(admin_event(method, path, body=body, iam=False))
        # Then it is 401 and nothing changed
        assert response["statusCode"] == 401
        assert json.loads(response["body"])["type"] == PROBLEM + "unauthenticated"
        assert api.broker.upstreams.seen("avaturn.delete") == []
        assert api.broker.creates_switch.state()["paused"] is False

    def test_sam_local_which_enforces_no_iam_can_switch_the_check_off(
        self, make_broker, handlers, admin_module: ModuleType
    ) -> None:
        admin = Admin(make_broker(admin_require_iam=False), admin_module)
        response = admin.call(admin_event("GET", "/admin/creates", iam=False))
        assert response["statusCode"] == 200

    def test_the_operator_is_in_the_audit_log(self, api: Api, admin: Admin, caplog) -> None:
        create(api, {"203.0.113.1": 1})
        admin.request("POST", "/admin/end-sessions")
        [audit] = [r for r in caplog.records if r.getMessage() == "operator bulk end"]
        assert (audit.operator, audit.ended) == (OPERATOR_ARN, 1)
