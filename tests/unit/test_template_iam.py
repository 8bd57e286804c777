"""Each function's IAM scope, read from the template as CloudFormation receives it: ``template.yaml``
transformed offline by samtranslator (as ``sam deploy`` would), its conditions evaluated for a
parameter set. A function may use exactly the table actions, index and secrets listed here: one
more (or one fewer) fails, and so does the engine secret showing up in any role but create's."""

from __future__ import annotations

import copy
import re
from functools import cache
from typing import Any

import boto3
import pytest
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

from local.template import load_template

REGION = "us-east-1"
BROKER = "arn:aws:secretsmanager:us-east-1:123456789012:secret:broker-keys-AbCdEf"
ENGINE = "arn:aws:secretsmanager:us-east-1:123456789012:secret:engine-keys-GhIjKl"
KEY = "arn:aws:kms:us-east-1:123456789012:key/0f0e0d0c-0b0a-0908-0706-050403020100"
FUNCTIONS = (
    "CreateSessionFunction",
    "TerminateSessionFunction",
    "GetSessionFunction",
    "CleanupSessionsFunction",
    "AdminFunction",
)
MANAGED = {  # what SAM attaches for logs and Tracing: Active, nothing else
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
}
TABLE, QUEUE = "SessionsTable.Arn", "CleanupDeadLetterQueue.Arn"
INDEX, OWNER_INDEX = "SessionsTable.Arn/index/sweep-index", "SessionsTable.Arn/index/owner-index"
USAGE_INDEX = "SessionsTable.Arn/index/usage-index"
EVENTS = {("events:PutEvents", "arn:aws:events:us-east-1:123456789012:event-bus/default")}
PROFILES = "/shop/profiles"  # an existing profiles parameter (ProfilesParameterName)
NO_VALUE = object()

Grant = tuple[str, str]  # (action, resource); resources of the stack by logical id, e.g. "SessionsTable.Arn"


# --- the template as CloudFormation sees it -----------------------------------------------------------
@cache
def transformed() -> dict[str, Any]:
    """template.yaml through the SAM transform (local code locations swapped for S3 ones, as
    ``sam validate`` does; parameters stay unresolved, like in CloudFormation)."""
    template = copy.deepcopy(load_template())
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        for uri in ("CodeUri", "ContentUri"):
            if isinstance(props.get(uri), str):
                props[uri] = "s3://bucket/key"
    translator = Translator(None, Parser(), boto_session=boto3.Session(region_name=REGION))
    return translator.translate(template, parameter_values={}, get_managed_policy_map=dict)  # type: ignore[no-any-return]


def resolve(node: Any, params: dict[str, Any], conditions: dict[str, bool]) -> Any:
    """``node`` with Ref, Fn::If, Fn::GetAtt and Fn::Sub evaluated; a resource reads as its
    logical id (``BrokerSecret``, ``SessionsTable.Arn``); ``AWS::NoValue`` drops the item."""
    if isinstance(node, list):
        items = (resolve(item, params, conditions) for item in node)
        return [item for item in items if item is not NO_VALUE]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((function, arg),) = node.items()
        if function == "Ref":
            return NO_VALUE if arg == "AWS::NoValue" else params.get(arg, arg)
        if function == "Fn::If":
            return resolve(arg[1] if conditions[arg[0]] else arg[2], params, conditions)
        if function == "Fn::GetAtt":
            return ".".join(arg)
        if function == "Fn::Sub":
            text, names = (arg, {}) if isinstance(arg, str) else (arg[0], resolve(arg[1], params, conditions))
            return re.sub(r"\$\{([^}]+)\}", lambda m: str({**params, **names}.get(m[1], m[1])), text)
    resolved = {key: resolve(value, params, conditions) for key, value in node.items()}
    return {key: value for key, value in resolved.items() if value is not NO_VALUE}


def evaluate(template: dict[str, Any], overrides: dict[str, str]) -> tuple[dict[str, Any], dict[str, bool]]:
    """Parameter values (defaults, then ``overrides``, then pseudo parameters) and every condition."""
    params: dict[str, Any] = {name: str(spec.get("Default", "")) for name, spec in template["Parameters"].items()}
    params |= overrides | {"AWS::Region": REGION, "AWS::AccountId": "123456789012", "AWS::Partition": "aws"}
    conditions: dict[str, bool] = {}

    def holds(expr: dict[str, Any]) -> bool:
        ((function, arg),) = expr.items()
        if function == "Fn::Equals":
            left, right = (resolve(side, params, conditions) for side in arg)
            return str(left) == str(right)
        if function == "Fn::Not":
            return not holds(arg[0])
        if function in ("Fn::And", "Fn::Or"):
            return (all if function == "Fn::And" else any)(holds(item) for item in arg)
        assert function == "Condition", f"unexpected condition function {function}"
        return conditions.setdefault(arg, holds(template["Conditions"][arg]))

    for name, expr in template["Conditions"].items():
        conditions[name] = holds(expr)
    return params, conditions


def scope(overrides: dict[str, str]) -> dict[str, set[Grant]]:
    """Each function's inline grants as (action, resource) pairs, a KMS grant's resource carrying
    the services it is limited to (``<key> via dynamodb,secretsmanager``)."""
    template = transformed()
    params, conditions = evaluate(template, overrides)
    out: dict[str, set[Grant]] = {}
    for function in FUNCTIONS:
        role = resolve(template["Resources"][f"{function}Role"]["Properties"], params, conditions)
        assert set(role["ManagedPolicyArns"]) == MANAGED, f"{function}: {role['ManagedPolicyArns']}"
        grants: set[Grant] = set()
        for policy in role["Policies"]:
            for statement in policy["PolicyDocument"]["Statement"]:
                assert statement["Effect"] == "Allow"
                actions, resources = statement["Action"], statement["Resource"]
                via = statement.get("Condition", {}).get("StringEquals", {}).get("kms:ViaService")
                if via:
                    services = sorted(v.split(".")[0] for v in via)
                    resources = [f"{resources} via {','.join(services)}"]
                for action in [actions] if isinstance(actions, str) else actions:
                    grants |= {(action, r) for r in ([resources] if isinstance(resources, str) else resources)}
        out[function] = grants
    return out


def table(*actions: str) -> set[Grant]:
    return {(f"dynamodb:{action}", TABLE) for action in actions}


def query(*indexes: str) -> set[Grant]:
    return {("dynamodb:Query", index) for index in indexes}


def secrets(*arns: str) -> set[Grant]:
    return {("secretsmanager:GetSecretValue", arn) for arn in arns}


def kms(*services: str, actions: tuple[str, ...] = ("kms:Decrypt",)) -> set[Grant]:
    return {(action, f"{KEY} via {','.join(sorted(services))}") for action in actions}


def parameter(name: str) -> set[Grant]:
    """GetParameter on the SSM parameter ``name`` (the stack's own reads as ``ProfilesParameter``)."""
    return {("ssm:GetParameter", f"arn:aws:ssm:us-east-1:123456789012:parameter{name}")}


# --- what each function's code uses (broker/store.py, broker/secrets.py, Powertools idempotency) --------
# rows, counters, the creates flag, idempotency records; admission reads the owner's open and the due sessions
CREATE_TABLE = {*table("GetItem", "PutItem", "UpdateItem", "DeleteItem"), *query(OWNER_INDEX, INDEX)} | EVENTS
TERMINATE_TABLE = table("GetItem", "UpdateItem") | EVENTS  # read, claim or renew, finish (a transaction)
GET_TABLE = table("GetItem") | query(OWNER_INDEX)  # a session, the caller's open sessions
# the sparse index, then claim and finish; the count of open sessions (SessionsOpen)
CLEANUP_TABLE = query(INDEX) | table("GetItem", "UpdateItem") | EVENTS
# a session, claim and finish, the creates flag; open sessions by status or owner, usage by day
ADMIN_TABLE = table("GetItem", "PutItem", "UpdateItem") | query(INDEX, OWNER_INDEX, USAGE_INDEX) | EVENTS
DESTINATION = {("sqs:SendMessage", QUEUE)}  # the on-failure destination


def test_single_secret_defaults_grant_each_function_only_what_it_uses() -> None:
    # Given the template's defaults (the stack creates the one secret; no customer managed key)
    # When the transformed template's roles are read
    granted = scope({})

    # Then each function has exactly its own table actions and secret, nothing else
    assert granted == {
        "CreateSessionFunction": CREATE_TABLE | secrets("BrokerSecret") | parameter("ProfilesParameter"),
        "TerminateSessionFunction": TERMINATE_TABLE | secrets("BrokerSecret"),
        "GetSessionFunction": GET_TABLE | parameter("ProfilesParameter"),
        "CleanupSessionsFunction": CLEANUP_TABLE | secrets("BrokerSecret") | DESTINATION,
        "AdminFunction": ADMIN_TABLE | secrets("BrokerSecret"),
    }


def test_with_an_engine_secret_and_a_key_only_create_can_read_the_engine_keys() -> None:
    # Given an existing broker secret, a separate engine secret, a customer managed key and an
    # existing profiles parameter
    overrides = {
        "ExistingSecretArn": BROKER,
        "EngineSecretId": ENGINE,
        "KmsKeyArn": KEY,
        "ProfilesParameterName": PROFILES,
    }

    # When the transformed template's roles are read
    granted = scope(overrides)

    # Then only create may read the engine secret, and each may use the key only through its services
    assert granted == {
        "CreateSessionFunction": CREATE_TABLE
        | secrets(BROKER, ENGINE)
        | parameter(PROFILES)
        | kms("dynamodb", "secretsmanager"),
        "TerminateSessionFunction": TERMINATE_TABLE | secrets(BROKER) | kms("dynamodb", "secretsmanager"),
        "GetSessionFunction": GET_TABLE | parameter(PROFILES) | kms("dynamodb"),
        "CleanupSessionsFunction": CLEANUP_TABLE
        | secrets(BROKER)
        | DESTINATION
        | kms("dynamodb", "secretsmanager")
        | kms("sqs", actions=("kms:GenerateDataKey", "kms:Decrypt")),
        "AdminFunction": ADMIN_TABLE | secrets(BROKER) | kms("dynamodb", "secretsmanager"),
    }


@pytest.mark.parametrize("overrides", [{}, {"ExistingSecretArn": BROKER, "EngineSecretId": ENGINE}])
def test_no_function_scans_the_table_or_queries_it_outside_its_sparse_indexes(overrides: dict[str, str]) -> None:
    # Given any parameter set, when every grant of every function is listed
    grants = set().union(*scope(overrides).values())

    # Then nothing may Scan, and the only Queries are on the sparse sweep, owner and usage indexes
    assert not {g for g in grants if g[0] == "dynamodb:Scan"}
    assert {g for g in grants if g[0] == "dynamodb:Query"} == query(INDEX, OWNER_INDEX, USAGE_INDEX)
    assert all(not r.startswith(TABLE) or r in (TABLE, INDEX, OWNER_INDEX, USAGE_INDEX) for _, r in grants)


def test_the_engine_secret_reaches_the_create_function_and_nothing_else() -> None:
    # Given an engine secret, when the whole transformed template is evaluated
    template = transformed()
    params, conditions = evaluate(template, {"EngineSecretId": ENGINE})
    resources = resolve(template["Resources"], params, conditions)

    # Then the only role that names it is create's (the others see only ENGINE_SECRET_ID's value)
    naming = {name for name, r in resources.items() if r["Type"] == "AWS::IAM::Role" and ENGINE in str(r)}
    assert naming == {"CreateSessionFunctionRole"}


def test_the_api_functions_have_their_concurrency_ceiling_and_zero_means_none() -> None:
    # Given the defaults, and a deployer who opts create out of its reservation
    template = transformed()
    ceilings = {}
    for overrides in ({}, {"CreateSessionReservedConcurrency": "0"}):
        params, conditions = evaluate(template, overrides)
        ceilings[bool(overrides)] = {
            f: resolve(template["Resources"][f]["Properties"], params, conditions).get("ReservedConcurrentExecutions")
            for f in FUNCTIONS
        }

    # Then create, terminate and get are capped by their parameters; 0 removes the cap
    assert ceilings[False] == {
        "CreateSessionFunction": "10",
        "TerminateSessionFunction": "5",
        "GetSessionFunction": "5",
        "CleanupSessionsFunction": None,
        "AdminFunction": None,
    }
    assert ceilings[True]["CreateSessionFunction"] is None
