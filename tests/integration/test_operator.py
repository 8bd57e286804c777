"""The operator plane through the real SAM CLI: ``avaturn-broker`` (the dev venv's console script,
as a subprocess) against ``sam local start-api``; a bulk end of 500 sessions; and one ``Session
Ended`` event per end, for every end path, read back from moto's EventBridge through an SQS queue.

``sam local`` does not enforce the /admin/ routes' IAM authorization (the template test proves
it is declared); the local stack listens on 127.0.0.1 only and sets ``ADMIN_REQUIRE_IAM=false``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, assume, settings
from schemathesis import checks as st_checks

from broker.models import Session, Status, token_digest
from broker.store import Limits, SessionStore
from local.paths import ROOT, TABLE
from tests.support.stack import Local, problem

pytestmark = pytest.mark.integration

CLI = Path(sys.executable).with_name("avaturn-broker")  # the dev venv installs the project (-e .)
LOCAL_OWNER = "ip:127.0.0.1"  # every request through sam local comes from 127.0.0.1
DETAIL_FIELDS = {
    "session_id", "owner", "profile", "engine", "avatar_id", "created_at", "ended_at", "duration_seconds", "end_reason",
}  # fmt: skip


def broker_cli(local: Local, *args: str) -> subprocess.CompletedProcess[str]:
    """``avaturn-broker --api-url <the local stack> ARGS``, signing with dummy credentials
    (``sam local`` does not check them)."""
    env = os.environ | {
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
        "COLUMNS": "200",
        "NO_COLOR": "1",
    }
    return subprocess.run(
        [str(CLI), "--api-url", local.stack.api_url, *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )


def cli_json(local: Local, *args: str) -> Any:
    result = broker_cli(local, "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


class EndedEvents:
    """``Session Ended`` events as a consumer sees them: an EventBridge rule on moto's default bus
    (source ``avaturn-session-broker``) with an SQS queue as its target."""

    def __init__(self, local: Local) -> None:
        self.events = local.stack.aws_client("events")
        self.sqs = local.stack.aws_client("sqs")
        self.queue = self.sqs.create_queue(QueueName="session-ended-events")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        pattern = {"source": ["avaturn-session-broker"], "detail-type": ["Session Ended"]}
        self.events.put_rule(Name="session-ended", EventBusName="default", EventPattern=json.dumps(pattern))
        self.events.put_targets(Rule="session-ended", EventBusName="default", Targets=[{"Id": "q", "Arn": arn}])
        self.drain()  # what earlier tests left

    def drain(self) -> list[dict[str, Any]]:
        """Every event delivered since the last drain (the whole envelope)."""
        found: list[dict[str, Any]] = []
        while True:
            out = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = out.get("Messages", [])
            if not messages:
                return found
            for message in messages:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def ended(local: Local) -> EndedEvents:
    return EndedEvents(local)


def create(local: Local, n: int = 1) -> list[dict[str, Any]]:
    created = []
    for _ in range(n):
        response = local.create({"engine": "cartesia"})
        assert response.status_code == 201, response.text
        created.append(response.json())
    return created


# -- the CLI through the local stack -------------------------------------------------------------


def test_sessions_list_shows_the_open_sessions_with_owner_and_no_token(local: Local) -> None:
    created = create(local, 2)
    listed = cli_json(local, "sessions", "list")
    assert sorted(s["session_id"] for s in listed["sessions"]) == sorted(c["session_id"] for c in created)
    assert {s["owner"] for s in listed["sessions"]} == {LOCAL_OWNER}
    table = broker_cli(local, "sessions", "list")
    assert table.returncode == 0, table.stderr
    assert all(c["session_id"] in table.stdout for c in created)
    assert all(c["token"] not in table.stdout + json.dumps(listed) for c in created)


def test_end_ends_one_session_upstream_with_reason_admin(local: Local) -> None:
    [session] = create(local)
    result = broker_cli(local, "end", session["session_id"])
    assert result.returncode == 0, result.stderr
    assert "ended" in result.stdout
    assert local.upstream_active() == set()
    view = local.get(session["session_id"], session["token"]).json()
    assert (view["status"], view["end_reason"]) == ("terminated", "admin")
    assert broker_cli(local, "end", str(uuid.uuid4())).returncode == 1  # unknown: 404, said and exit 1


def test_end_all_of_an_owner_and_status_afterwards(local: Local) -> None:
    create(local, 2)
    totals = cli_json(local, "end-all", "--owner", LOCAL_OWNER, "--yes")
    assert (totals["ended"], totals["failed"]) == (2, 0)
    assert local.upstream_active() == set()
    status = cli_json(local, "status")
    assert status["active_sessions"] == 0
    assert status["creates"]["paused"] is False


def test_pause_makes_creates_answer_503_until_resume(local: Local) -> None:
    paused = broker_cli(local, "pause", "--reason", "incident drill")
    assert paused.returncode == 0, paused.stderr
    assert "PAUSED" in paused.stdout
    # every create function sees the flag within CONTROL_CACHE_SECONDS (10 s by default)
    refused = until(lambda: local.create({"engine": "cartesia"}), lambda r: r.status_code == 503, seconds=20)
    assert problem(refused, 503)["type"].endswith(":creates-paused")
    assert cli_json(local, "status")["creates"]["reason"] == "incident drill"
    cli_json(local, "end-all", "--yes")  # the creates admitted before the flag reached every container
    assert broker_cli(local, "resume").returncode == 0
    admitted = until(lambda: local.create({"engine": "cartesia"}), lambda r: r.status_code != 503, seconds=20)
    assert admitted.status_code == 201, admitted.text


def test_usage_by_owner_counts_the_ended_sessions(local: Local) -> None:
    sessions = create(local, 2)
    for s in sessions:
        assert local.delete(s["session_id"], s["token"]).status_code == 204
    report = cli_json(local, "usage", "--group-by", "owner")
    [row] = report["rows"]
    assert (row["key"], row["sessions"]) == (LOCAL_OWNER, 2)
    assert report["total"]["sessions"] == 2
    table = broker_cli(local, "usage", "--group-by", "owner")
    assert LOCAL_OWNER in table.stdout


def test_sam_local_does_not_enforce_iam_so_the_local_stack_answers_unsigned_admin_requests(local: Local) -> None:
    # (the deployed API requires SigV4 on /admin/: tests/unit/test_template_operator.py)
    response = requests.get(f"{local.stack.api_url}/admin/creates", timeout=30)
    assert response.status_code == 200
    assert response.json()["paused"] is False


# -- the admin routes against their OpenAPI description ---------------------------------------------


def admin_spec() -> Any:
    """The /admin/ operations of docs/openapi.yaml as ``sam local`` serves them: without their SigV4
    requirement (it does not enforce IAM; the template test proves the deployed API does), and
    without the kill switch's PUT (a pause would reach the creates of the tests after this one
    through the functions' cached flag). test_contract.py fuzzes the other routes."""
    spec = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text())
    for path, operations in spec["paths"].items():
        if path.startswith("/admin/"):
            for operation in operations.values():
                if isinstance(operation, dict):
                    operation.pop("security", None)
    return schemathesis.openapi.from_dict(spec).include(path_regex="^/admin/").exclude(method="PUT")


ADMIN_SPEC = admin_spec()


@pytest.fixture(scope="module")
def admin_target(stack: Any) -> str:
    return str(stack.api_url)


@ADMIN_SPEC.parametrize()
@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), database=None)
def test_generated_admin_requests_conform(case: Any, admin_target: str) -> None:
    # sam local answers 502 itself to a body that is not UTF-8 (AWS would base64-encode it); the
    # broker's handling of such bodies is the unit tier's (as in test_contract.py)
    assume(not isinstance(case.body, bytes) or _utf8(case.body))
    checks = [
        st_checks.not_a_server_error,
        st_checks.status_code_conformance,
        st_checks.content_type_conformance,
        st_checks.response_schema_conformance,
        st_checks.negative_data_rejection,
    ]
    case.call_and_validate(base_url=admin_target, checks=checks, timeout=40)


# -- 500 sessions --------------------------------------------------------------------------------

BULK = 500


def seed(local: Local, n: int) -> list[str]:
    """``n`` active sessions of 50 owners, each created at the Avaturn simulator and recorded in
    the registry as the broker records them (``SessionStore.reserve`` then ``activate``): faster than
    500 creates through the API, and the same rows. Returns their session ids."""
    store = SessionStore(local.stack.aws_client("dynamodb"), TABLE, 86400)
    avaturn = f"http://127.0.0.1:{local.stack.port_base}/api/v1/sessions"
    key = local.stack.sim_keys["avaturn_api_key"]
    engine = {"type": "external", "url": "wss://engine.invalid/ws", "audio": {"user": {"sample_rate": 24000}}}
    now = int(time.time())

    def upstream(_: int) -> dict[str, Any]:
        body = {"conversation_engine": engine, "max_duration": 900, "user_absent_timeout": 900}
        answer = requests.post(avaturn, json=body, headers={"authorization": f"Bearer {key}"}, timeout=30)
        answer.raise_for_status()
        return dict(answer.json())

    def record(i: int, created: dict[str, Any]) -> str:
        session = Session(
            session_id=str(uuid.uuid4()),
            owner=f"ip:198.51.100.{i % 50}",
            engine="external",
            avatar_id=None,
            status=Status.PENDING,
            created_at=now,
            expires_at=now + 900,
            due_at=now + 120,
            counted_total=True,
            profile="default",
        )
        store.reserve(session, Limits(owner=0), now)
        active = replace(
            session,
            status=Status.ACTIVE,
            due_at=session.expires_at,
            avaturn_session_id=created["session_id"],
            token_sha256=token_digest(created["token"]),
        )
        assert store.activate(active)
        return session.session_id

    with ThreadPoolExecutor(max_workers=16) as pool:
        upstreams = list(pool.map(upstream, range(n)))
    # one writer: moto server's transactions are not safe under concurrent writers (DynamoDB's are)
    return [record(i, created) for i, created in enumerate(upstreams)]


def test_a_bulk_end_of_500_sessions_ends_them_all_in_one_invocation_or_resumes_cleanly(
    local: Local, ended: EndedEvents
) -> None:
    # Given 500 active sessions of 50 owners, live at the Avaturn simulator
    seeded = seed(local, BULK)
    assert len(local.upstream_active()) == BULK
    # When the operator ends every active session: a first call limited to 200 (so that every run
    # resumes at least once), then calls without a limit while the broker says "more"
    runs: list[dict[str, Any]] = []
    while not runs or runs[-1]["more"]:
        started = time.monotonic()
        body = {} if runs else {"limit": 200}
        response = requests.post(f"{local.stack.api_url}/admin/end-sessions", json=body, timeout=60)
        assert response.status_code == 200, response.text
        runs.append(response.json() | {"seconds": round(time.monotonic() - started, 1)})
        assert len(runs) <= 10, runs
    # Then each call answered within API Gateway's 30 s, the first stopped at its limit, and
    # together they ended all 500, each exactly once
    assert all(run["seconds"] < 30 for run in runs), runs
    assert (runs[0]["examined"], runs[0]["more"]) == (200, True), runs
    assert sum(run["ended"] for run in runs) == BULK, runs
    assert sum(run["failed"] + run["skipped"] for run in runs) == 0, runs
    assert local.upstream_active() == set()
    rows = {r["session_id"]["S"]: r for r in local.rows()}
    assert all((rows[s]["status"]["S"], rows[s]["end_reason"]["S"]) == ("terminated", "admin") for s in seeded)
    # And the owners' slots and the broker-wide count are all given back
    db = local.stack.aws_client("dynamodb")
    total = db.get_item(TableName=TABLE, Key={"pk": {"S": "TOTAL#active"}}, ConsistentRead=True)["Item"]
    assert int(total["active"]["N"]) == 0
    # And there is exactly one admin event per session
    details = [e["detail"] for e in ended.drain()]
    assert sorted(d["session_id"] for d in details) == sorted(seeded)
    assert {d["end_reason"] for d in details} == {"admin"}
    print(f"bulk end of {BULK}: {[(r['ended'], r['more'], r['seconds']) for r in runs]}")


# -- one event per end, for every end path -------------------------------------------------------


def test_every_end_path_puts_one_session_ended_event_without_a_token(local: Local, ended: EndedEvents) -> None:
    reasons: dict[str, str] = {}
    # the owner's DELETE
    a, b = create(local, 2)
    assert local.delete(a["session_id"], a["token"]).status_code == 204
    reasons[a["session_id"]] = "owner"
    # the page's beacon (POST /sessions/{id}/end, text/plain), reporting an SDK error
    beacon = json.dumps({"token": b["token"], "reason": "client_error", "error": "limits_exceeded"})
    response = local.http.post(
        f"{local.stack.api_url}/sessions/{b['session_id']}/end",
        data=beacon,
        headers={"content-type": "text/plain;charset=UTF-8"},
        timeout=40,
    )
    assert response.status_code == 204, response.text
    reasons[b["session_id"]] = "client_error"
    # the sweep, past max_duration
    [c] = create(local)
    local.fast_forward(901)
    assert local.cleanup()["terminated"] == 1
    reasons[c["session_id"]] = "expired"
    # a create whose Avaturn call fails: the pending session is undone
    local.fault("avaturn.create", "status", status=500)
    failed = local.create({"engine": "cartesia"})
    assert failed.status_code == 502, failed.text
    # the operator: one session, then in bulk
    d, e = create(local, 2)
    assert broker_cli(local, "end", d["session_id"]).returncode == 0
    reasons[d["session_id"]] = "admin"
    assert cli_json(local, "end-all", "--yes")["ended"] == 1
    reasons[e["session_id"]] = "admin"

    events = ended.drain()
    # Then one event per end, with the contract's envelope and detail, and the reason of each path
    assert {ev["source"] for ev in events} == {"avaturn-session-broker"}
    assert {ev["detail-type"] for ev in events} == {"Session Ended"}
    details = [ev["detail"] for ev in events]
    assert all(set(d) == DETAIL_FIELDS for d in details), details
    by_session = {d["session_id"]: d for d in details}
    assert len(by_session) == len(details) == len(reasons) + 1
    assert {s: by_session[s]["end_reason"] for s in reasons} == reasons
    [undone] = [d for s, d in by_session.items() if s not in reasons]
    assert (undone["end_reason"], undone["duration_seconds"]) == ("compensation", 0)
    assert all(d["owner"] == LOCAL_OWNER for d in details)
    # And no event carries a token, a key or an engine secret
    text = json.dumps(events)
    assert not [c for c in local.issued_credentials() if c in text]


def until(call: Any, done: Any, seconds: float) -> Any:
    """``call()`` again every half second until ``done(result)`` or ``seconds`` have passed; the
    last result."""
    deadline = time.monotonic() + seconds
    while True:
        result = call()
        if done(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


@pytest.fixture(autouse=True)
def _creates_resumed(local: Local) -> Iterator[None]:
    """No test leaves creates paused for the next one (the registry is emptied between tests
    anyway; this also clears the create function's cached flag sooner)."""
    yield
    if local.stack.aws_client("dynamodb").get_item(TableName=TABLE, Key={"pk": {"S": "CONTROL#creates"}}).get("Item"):
        broker_cli(local, "resume")


def _utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
