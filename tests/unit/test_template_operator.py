"""The operator plane in the template as CloudFormation receives it (``template.yaml`` through the
SAM transform, offline; see ``test_template_iam``): every ``/admin/`` route is authorized by IAM
and nothing else, no other route lost its own authorization, the operators' policy reaches only the
admin routes, and the dashboard and alarms cover what the broker publishes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from local.template import load_template
from tests.unit.test_template_iam import evaluate, resolve, transformed

BROKER = Path(__file__).resolve().parents[2] / "functions" / "shared" / "broker"
JWT = {"JwtIssuer": "https://issuer.example.com/", "JwtAudience": "app-client"}
ADMIN_ROUTES = {
    ("GET", "/admin/sessions"),
    ("POST", "/admin/sessions/{session_id}/end"),
    ("POST", "/admin/end-sessions"),
    ("GET", "/admin/creates"),
    ("PUT", "/admin/creates"),
    ("GET", "/admin/usage"),
}
BEACON = ("POST", "/sessions/{session_id}/end")  # the token in its body proves ownership
SIGV4 = {"type": "apiKey", "name": "Authorization", "in": "header", "x-amazon-apigateway-authtype": "awsSigv4"}


def api_body(overrides: dict[str, str]) -> dict[str, Any]:
    template = transformed()
    params, conditions = evaluate(template, overrides)
    body: dict[str, Any] = resolve(template["Resources"]["Api"]["Properties"]["Body"], params, conditions)
    return body


def routes(body: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(method.upper(), path): op for path, ops in body["paths"].items() for method, op in ops.items()}


@pytest.mark.parametrize("overrides", [{}, JWT], ids=["anonymous", "jwt"])
def test_every_admin_route_is_iam_only_and_no_other_route_lost_its_own(overrides: dict[str, str]) -> None:
    # Given the API as deployed, in anonymous mode and with a JWT issuer
    body = api_body(overrides)
    by_route = routes(body)

    # Then the admin routes are exactly these, each served by the admin function alone
    admin = {route for route in by_route if route[1].startswith("/admin/")}
    assert admin == ADMIN_ROUTES
    for route, op in by_route.items():
        assert ("AdminFunction.Arn" in str(op["x-amazon-apigateway-integration"]["uri"])) == (route in admin), route
    # And each admin route requires SigV4 (IAM) and nothing else, whatever JwtIssuer says
    assert body["components"]["securitySchemes"]["AwsIam"] == SIGV4
    assert "security" not in body  # no API-wide default that could stand in for a route's own
    for route in admin:
        assert by_route[route]["security"] == [{"AwsIam": []}], route
    # And every other route keeps its own rule: the JWT authorizer in JWT mode, none in anonymous
    # mode, and never IAM; the beacon never has an authorizer
    jwt_mode = bool(overrides)
    for route, op in by_route.items():
        if route in admin:
            continue
        expected = [{"JwtAuthorizer": []}] if jwt_mode and route != BEACON else None
        assert op.get("security") == expected, route
    assert ("JwtAuthorizer" in body["components"]["securitySchemes"]) == jwt_mode


def test_the_admin_function_serves_the_admin_routes_and_nothing_else_does() -> None:
    # Given the routes each function declares (its HttpApi events, before the transform)
    declared = {
        (name, (e["Properties"]["Method"].upper(), e["Properties"]["Path"]))
        for name, r in load_template()["Resources"].items()
        for e in r.get("Properties", {}).get("Events", {}).values()
        if e["Type"] == "HttpApi"
    }
    # Then the admin function has the admin routes, no other function has one, and the API's
    # body (where the authorization is) has exactly the routes the functions declare
    assert {route for name, route in declared if name == "AdminFunction"} == ADMIN_ROUTES
    assert all(not route[1].startswith("/admin/") for name, route in declared if name != "AdminFunction")
    assert {route for _, route in declared} == set(routes(api_body({})))


def test_the_operator_policy_reaches_only_the_admin_routes_and_the_stacks_outputs() -> None:
    template = transformed()
    params, conditions = evaluate(template, {})
    policy = resolve(template["Resources"]["OperatorPolicy"]["Properties"], params, conditions)
    assert policy["PolicyDocument"]["Statement"] == [
        {
            "Effect": "Allow",
            "Action": "execute-api:Invoke",
            "Resource": "arn:aws:execute-api:us-east-1:123456789012:Api/*/*/admin/*",
        },
        {"Effect": "Allow", "Action": "cloudformation:DescribeStacks", "Resource": "AWS::StackId"},
    ]


# --- dashboard and alarms -------------------------------------------------------------------------------
def published_metrics() -> set[str]:
    """Every metric name the broker's code publishes (``count("X")`` and ``single_metric(name="X")``)."""
    names: set[str] = set()
    for path in BROKER.rglob("*.py"):
        text = path.read_text()
        names |= set(re.findall(r'\bcount\(\s*"(\w+)"', text))
        names |= set(re.findall(r'single_metric\(\s*name="(\w+)"', text))
        names |= set(re.findall(r'add_metric\(\s*name="(\w+)"', text))
    return names


def dashboard() -> dict[str, Any]:
    body = transformed()["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    parsed: dict[str, Any] = json.loads(body)  # ${...} stand inside JSON strings
    return parsed


def globals_env() -> dict[str, str]:
    env: dict[str, str] = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    return env


def test_the_dashboard_shows_every_metric_the_broker_publishes() -> None:
    # Given the metric names in the code (the list among them)
    published = published_metrics()
    assert {
        "SessionsCreated",
        "SessionsEnded",
        "SecondsUsed",
        "SecondsReserved",
        "Rejections",
        "UpstreamFailures",
        "CleanupExamined",
        "CleanupTerminated",
        "CleanupFailed",
        "AwsRetries",
        "RegistryRowsSkipped",
        "EventsFailed",
        "SessionsEndedUnconfirmed",
        "SessionsOpen",
    } <= published
    # When the dashboard's widgets are read
    shown: set[str] = set()
    env = globals_env()
    for widget in dashboard()["widgets"]:
        for metric in widget["properties"].get("metrics", []):
            if isinstance(metric[0], dict):  # a SEARCH expression: MetricName="X" in its namespace
                expression = metric[0]["expression"]
                assert "{" + env["POWERTOOLS_METRICS_NAMESPACE"] + "," in expression
                shown |= set(re.findall(r'MetricName="(\w+)"', expression))
            elif metric[0] == env["POWERTOOLS_METRICS_NAMESPACE"]:
                assert metric[2:4] == ["service", env["POWERTOOLS_SERVICE_NAME"]]  # Powertools' dimension
                shown.add(metric[1])
    # Then every one of them is on it, under the namespace and service the functions publish with
    assert published - shown == set()


def test_every_alarm_is_on_the_dashboard_and_the_broker_metrics_they_watch_exist() -> None:
    template = transformed()
    resources = template["Resources"]
    alarms = {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    [widget] = [w for w in dashboard()["widgets"] if w["type"] == "alarm"]
    assert {a.removeprefix("${").removesuffix(".Arn}") for a in widget["properties"]["alarms"]} == set(alarms)
    env = globals_env()
    own = {name: a for name, a in alarms.items() if a["Namespace"] == env["POWERTOOLS_METRICS_NAMESPACE"]}
    assert {a["MetricName"] for a in own.values()} == {"CleanupFailed", "SessionsEndedUnconfirmed"}
    for alarm in own.values():
        assert alarm["MetricName"] in published_metrics()
        assert alarm["Dimensions"] == [{"Name": "service", "Value": env["POWERTOOLS_SERVICE_NAME"]}]


def test_every_function_has_an_errors_alarm() -> None:
    template = transformed()
    functions = {name for name, r in template["Resources"].items() if r["Type"] == "AWS::Lambda::Function"}
    watched = {
        r["Properties"]["Dimensions"][0]["Value"]["Ref"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"]["MetricName"] == "Errors"
    }
    assert functions == watched
    assert "AdminFunction" in functions
