"""The scheduled sweep: expired, orphaned, failing and overlapping cases."""

from __future__ import annotations

import threading

from tests.unit.support import Api, body_of


def create_many(api: Api, n: int) -> list[dict]:
    return [body_of(api.create(None, source_ip=f"203.0.113.{i}")) for i in range(n)]


def test_nothing_due_means_nothing_done(api: Api) -> None:
    create_many(api, 3)
    assert api.cleanup() == {"examined": 0, "terminated": 0, "failed": 0}
    assert api.broker.upstreams.seen("avaturn.delete") == []


def test_expired_sessions_are_ended_with_a_reason(api: Api) -> None:
    created = create_many(api, 3)
    api.broker.clock.advance(api.broker.settings.session_max_duration + 1)
    assert api.cleanup() == {"examined": 3, "terminated": 3, "failed": 0}
    assert api.broker.upstreams.sessions == {}
    for c in created:
        view = body_of(api.get(c["session_id"], c["token"]))
        assert (view["status"], view["end_reason"]) == ("terminated", "expired")
    assert all(api.broker.active_count(f"ip:203.0.113.{i}") == 0 for i in range(3))
    assert api.cleanup() == {"examined": 0, "terminated": 0, "failed": 0}


def test_sessions_already_gone_upstream_are_closed(api: Api) -> None:
    create_many(api, 2)
    api.broker.upstreams.sessions.clear()  # Avaturn ended them itself (max_duration)
    api.broker.clock.advance(api.broker.settings.session_max_duration + 1)
    assert api.cleanup() == {"examined": 2, "terminated": 2, "failed": 0}


def test_failures_are_counted_and_retried_by_the_next_run(api: Api) -> None:
    create_many(api, 2)
    api.broker.clock.advance(api.broker.settings.session_max_duration + 1)
    api.broker.upstreams.fail["avaturn.delete"] = 500
    assert api.cleanup() == {"examined": 2, "terminated": 0, "failed": 2}
    # the claim holds them for the grace period, so an immediate rerun leaves them alone
    assert api.cleanup() == {"examined": 0, "terminated": 0, "failed": 0}
    api.broker.upstreams.fail.clear()
    api.broker.clock.advance(api.broker.settings.cleanup_grace_seconds + 1)
    assert api.cleanup() == {"examined": 2, "terminated": 2, "failed": 0}
    assert api.broker.upstreams.sessions == {}
    reasons = {r["end_reason"]["S"] for r in api.broker.sessions()}
    assert reasons == {"expired"}


def test_a_failed_client_terminate_is_finished_by_the_sweep(api: Api) -> None:
    [created] = create_many(api, 1)
    api.broker.upstreams.fail["avaturn.delete"] = "timeout"
    assert api.delete(created["session_id"], created["token"], source_ip="203.0.113.0")["statusCode"] == 504
    api.broker.upstreams.fail.clear()
    api.broker.clock.advance(api.broker.settings.cleanup_grace_seconds + 1)
    assert api.cleanup() == {"examined": 1, "terminated": 1, "failed": 0}
    view = body_of(api.get(created["session_id"], created["token"]))
    assert (view["status"], view["end_reason"]) == ("terminated", "owner")


def test_overlapping_runs_end_each_session_once(api: Api) -> None:
    create_many(api, 6)
    api.broker.clock.advance(api.broker.settings.session_max_duration + 1)
    barrier = threading.Barrier(2)
    results: list[dict] = []

    def run() -> None:
        barrier.wait()
        results.append(api.cleanup())

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r["terminated"] for r in results) == 6
    assert sum(r["failed"] for r in results) == 0
    assert len(api.broker.upstreams.seen("avaturn.delete")) == 6


def test_it_stops_before_its_own_timeout(api: Api) -> None:
    create_many(api, 3)
    api.broker.clock.advance(api.broker.settings.session_max_duration + 1)
    # 5 s safety + 15 s reserve for one upstream call: with 10 s left, nothing new is started
    assert api.cleanup(remaining_ms=10_000) == {"examined": 0, "terminated": 0, "failed": 0}
    assert api.cleanup(remaining_ms=60_000)["terminated"] == 3


def test_many_sessions_with_bounded_concurrency(make_broker, handlers) -> None:
    api = Api(make_broker(max_active_sessions_per_owner=100, cleanup_concurrency=4), handlers)
    for _ in range(40):
        api.create(None)
    api.broker.clock.advance(api.broker.settings.session_max_duration + 1)
    assert api.cleanup() == {"examined": 40, "terminated": 40, "failed": 0}
    assert api.broker.active_count("ip:198.51.100.7") == 0
