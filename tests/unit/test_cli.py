"""``avaturn-broker`` end to end in-process: the real commands (typer's CliRunner), SigV4-signed
by botocore with the environment's AWS credentials, through a fake API Gateway that checks the
signature, to the real admin handler over moto; the stack's outputs from moto's CloudFormation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
import requests
from botocore.credentials import Credentials
from typer.testing import CliRunner, Result

from avaturn_broker_cli.main import Runtime, app
from tests.unit.operator_support import Admin, ApiGatewayAdapter, sigv4_valid
from tests.unit.support import Api, body_of, load_handler

API_URL = "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/"
OWNER = "ip:198.51.100.7"


@pytest.fixture(scope="module")
def admin_module() -> ModuleType:
    return load_handler("admin")


@pytest.fixture
def gateway(api: Api, admin_module: ModuleType) -> Iterator[ApiGatewayAdapter]:
    yield ApiGatewayAdapter(Admin(api.broker, admin_module), credentials=environment_credentials())
    admin_module.app.dependency_overrides = {}


def environment_credentials() -> Credentials:
    """The credentials boto3 finds in this test's environment (moto's, while it mocks AWS)."""
    found = boto3.Session().get_credentials()
    assert found is not None
    frozen = found.get_frozen_credentials()
    return Credentials(frozen.access_key, frozen.secret_key, frozen.token)


def cli(
    gateway: ApiGatewayAdapter, *args: str, url: str | None = API_URL, env: dict[str, str] | None = None, **kw: Any
) -> Result:
    """Run ``avaturn-broker [--api-url URL] ARGS`` with its HTTP going to ``gateway``."""
    http = requests.Session()
    http.mount("https://", gateway)
    http.mount("http://", gateway)
    argv = [*(["--api-url", url] if url else []), *args]
    return CliRunner().invoke(app, argv, obj=Runtime(http=http), env=env, **kw)


def create(api: Api, n: int, ip: str = "198.51.100.7") -> list[dict[str, Any]]:
    return [body_of(api.create(None, source_ip=ip)) for _ in range(n)]


def test_every_request_is_sigv4_signed_for_execute_api_in_the_apis_region(api: Api, gateway: ApiGatewayAdapter) -> None:
    create(api, 1)
    result = cli(gateway, "sessions", "list", "--owner", OWNER, "--limit", "5")
    assert result.exit_code == 0, result.output
    [request] = gateway.seen
    assert "/execute-api/aws4_request" in request.headers["authorization"]
    assert "owner=ip%3A198.51.100.7" in str(request.url)  # the query is part of what is signed
    assert sigv4_valid(request, gateway.credentials, "us-east-1")
    assert not sigv4_valid(request, Credentials(gateway.credentials.access_key, "other-secret"), "us-east-1")
    assert not sigv4_valid(request, gateway.credentials, "eu-west-1")


class TestReading:
    def test_status_shows_the_switch_the_active_sessions_and_todays_usage(
        self, api: Api, gateway: ApiGatewayAdapter
    ) -> None:
        create(api, 2)
        result = cli(gateway, "--json", "status")
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data["active_sessions"] == 2
        assert data["creates"]["paused"] is False
        assert data["today"] == {"sessions": 0, "seconds": 0}
        table = cli(gateway, "status")
        assert table.exit_code == 0
        assert "Active sessions" in table.stdout
        assert "open" in table.stdout

    def test_sessions_list_as_a_table_and_all_pages_as_json(self, api: Api, gateway: ApiGatewayAdapter) -> None:
        created = create(api, 2) + create(api, 2, ip="203.0.113.9")
        table = cli(gateway, "sessions", "list", env={"COLUMNS": "200"})
        assert table.exit_code == 0, table.output
        assert all(c["session_id"] in table.stdout for c in created)
        assert "4 active" in table.stdout
        # --all follows the cursor, one page of one at a time
        every = cli(gateway, "--json", "sessions", "list", "--all", "--limit", "1")
        listed = json.loads(every.stdout)["sessions"]
        assert sorted(s["session_id"] for s in listed) == sorted(c["session_id"] for c in created)
        pages = gateway.seen[1:]  # after the table: one request per page of one, to the last
        assert len(pages) >= 4
        assert all("limit=1" in str(r.url) for r in pages)
        assert all(c["token"] not in table.stdout + every.stdout for c in created)

    def test_usage_by_owner(self, api: Api, gateway: ApiGatewayAdapter) -> None:
        [session] = create(api, 1)
        api.broker.fake_clock.advance(120)
        api.delete(session["session_id"], session["token"])
        result = cli(gateway, "--json", "usage", "--group-by", "owner")
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["rows"] == [{"key": OWNER, "sessions": 1, "seconds": 120}]
        table = cli(gateway, "usage", "--group-by", "owner", env={"COLUMNS": "120"})
        assert OWNER in table.stdout
        assert "total" in table.stdout


class TestActing:
    def test_end_one_session(self, api: Api, gateway: ApiGatewayAdapter) -> None:
        [session] = create(api, 1)
        result = cli(gateway, "end", session["session_id"])
        assert result.exit_code == 0, result.output
        assert "ended" in result.stdout
        assert [e["end_reason"] for e in api.broker.bus.ended()] == ["admin"]
        again = cli(gateway, "--json", "end", session["session_id"])
        assert json.loads(again.stdout)["outcome"] == "already_ended"

    def test_end_all_of_one_owner_in_batches_with_a_progress_bar(
        self, make_broker, handlers, admin_module: ModuleType
    ) -> None:
        broker = make_broker(max_active_sessions_per_owner=30)
        api = Api(broker, handlers)
        gateway = ApiGatewayAdapter(Admin(broker, admin_module), credentials=environment_credentials())
        mine, others = create(api, 25), create(api, 3, ip="203.0.113.9")
        # When the operator ends that owner's sessions, 10 per request, confirming at the prompt
        result = cli(gateway, "end-all", "--owner", OWNER, "--batch", "10", input="y\n")
        # Then it asked, showed progress, ended exactly those 25 in 3 requests, and left the others
        assert result.exit_code == 0, result.output
        assert f"End 25 active session(s) of {OWNER}?" in result.stderr
        assert "25/25" in result.stderr
        assert "Ended 25 session(s)" in result.stdout
        assert "3 request(s)" in result.stdout
        ended = [e["session_id"] for e in broker.bus.ended()]
        assert sorted(ended) == sorted(s["session_id"] for s in mine)
        assert {e["end_reason"] for e in broker.bus.ended()} == {"admin"}
        assert len(broker.upstreams.sessions) == len(others)

    def test_end_all_without_confirmation_ends_nothing(self, api: Api, gateway: ApiGatewayAdapter) -> None:
        create(api, 2)
        result = cli(gateway, "end-all", input="n\n")
        assert result.exit_code == 1
        assert "Aborted" in result.stderr
        assert api.broker.upstreams.seen("avaturn.delete") == []

    def test_end_all_that_leaves_failures_says_so_and_exits_1(self, api: Api, gateway: ApiGatewayAdapter) -> None:
        create(api, 2)
        api.broker.upstreams.fail["avaturn.delete"] = 503
        result = cli(gateway, "--json", "end-all", "--yes")
        assert result.exit_code == 1
        totals = json.loads(result.stdout)
        assert (totals["ended"], totals["failed"]) == (0, 2)
        assert "could not be ended now" in result.stderr

    def test_pause_refuses_creates_until_resume(self, api: Api, gateway: ApiGatewayAdapter) -> None:
        paused = cli(gateway, "pause", "--reason", "incident 42")
        assert paused.exit_code == 0, paused.output
        assert "PAUSED" in paused.stdout
        assert "incident 42" in paused.stdout
        assert api.create(None)["statusCode"] == 503
        assert json.loads(cli(gateway, "--json", "status").stdout)["creates"]["reason"] == "incident 42"
        assert cli(gateway, "resume").exit_code == 0
        assert api.create(None)["statusCode"] == 201


class TestErrors:
    def test_no_broker_named_is_exit_3(self, gateway: ApiGatewayAdapter, monkeypatch) -> None:
        monkeypatch.delenv("AVATURN_BROKER_STACK", raising=False)
        monkeypatch.delenv("AVATURN_BROKER_API_URL", raising=False)
        result = cli(gateway, "status", url=None)
        assert result.exit_code == 3
        assert "--stack-name" in result.stderr

    def test_no_credentials_is_exit_3_and_nothing_is_sent(
        self, gateway: ApiGatewayAdapter, monkeypatch, tmp_path
    ) -> None:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        result = cli(gateway, "status")
        assert result.exit_code == 3
        assert "no AWS credentials" in result.stderr
        assert gateway.seen == []

    def test_the_local_stack_on_loopback_takes_unsigned_requests(self, monkeypatch, tmp_path) -> None:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        seen: list[requests.PreparedRequest] = []

        class Local(requests.adapters.BaseAdapter):
            def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
                seen.append(request)
                response = requests.Response()
                response.status_code, response._content = 200, b'{"paused": false, "reason": null, "updated_at": null}'
                return response

        http = requests.Session()
        http.mount("http://", Local())
        result = CliRunner().invoke(
            app, ["--api-url", "http://127.0.0.1:3000", "--json", "resume"], obj=Runtime(http=http)
        )
        assert result.exit_code == 0, result.output
        assert "authorization" not in seen[0].headers

    def test_credentials_the_api_refuses_are_exit_4(self, gateway: ApiGatewayAdapter) -> None:
        result = cli(gateway, "status", env={"AWS_SECRET_ACCESS_KEY": "not-the-key"})
        assert result.exit_code == 4
        assert "not allowed (403" in result.stderr
        assert "execute-api:Invoke" in result.stderr

    def test_a_refused_request_is_exit_1_with_the_problem(self, gateway: ApiGatewayAdapter) -> None:
        result = cli(gateway, "usage", "--from", "2026-03-02", "--to", "2026-03-01")
        assert result.exit_code == 1
        assert "422 Invalid request" in result.stderr

    def test_an_unreachable_api_is_exit_5(self, gateway: ApiGatewayAdapter) -> None:
        class Down(requests.adapters.BaseAdapter):
            def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
                raise requests.ConnectionError("refused")

        http = requests.Session()
        http.mount("https://", Down())
        result = CliRunner().invoke(app, ["--api-url", API_URL, "status"], obj=Runtime(http=http))
        assert result.exit_code == 5
        assert "cannot reach" in result.stderr


class TestStackOutputs:
    def deploy(self, outputs: dict[str, str]) -> None:
        template = {
            "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
            "Outputs": {k: {"Value": v} for k, v in outputs.items()},
        }
        boto3.client("cloudformation", region_name="us-east-1").create_stack(
            StackName="broker-prod", TemplateBody=json.dumps(template)
        )

    def test_the_api_is_found_in_the_stacks_outputs(self, api: Api, gateway: ApiGatewayAdapter) -> None:
        self.deploy({"ApiUrl": API_URL, "SessionsTableName": "t"})
        create(api, 1)
        result = cli(gateway, "--stack-name", "broker-prod", "--json", "status", url=None)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["active_sessions"] == 1
        assert all(str(r.url).startswith(API_URL + "admin/") for r in gateway.seen)

    def test_a_wrong_stack_is_exit_3(self, api: Api, gateway: ApiGatewayAdapter) -> None:
        result = cli(gateway, "--stack-name", "no-such-stack", "status", url=None)
        assert result.exit_code == 3
        assert "no stack named no-such-stack in us-east-1" in result.stderr
        assert gateway.seen == []

    def test_a_stack_without_the_output_is_exit_3(self, api: Api, gateway: ApiGatewayAdapter) -> None:
        self.deploy({"Something": "else"})
        result = cli(gateway, "--stack-name", "broker-prod", "status", url=None)
        assert result.exit_code == 3
        assert "has no ApiUrl output" in result.stderr
