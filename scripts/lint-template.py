#!/usr/bin/env python3
"""Lint the SAM template as CloudFormation will receive it - offline.

`sam validate --lint` runs cfn-lint on the SAM template itself, where the serverless resources are
checked only against SAM's own schema: a bad runtime, a timeout above 900 s or a broken policy in
the *generated* Lambda/IAM/API Gateway resources goes unnoticed until deploy time. This script:

  1. lints the SAM template with cfn-lint (the same check as `sam validate --lint`);
  2. transforms it with samtranslator, offline (local CodeUri/ContentUri swapped for a dummy S3
     URI as `sam validate` does; a managed-policy loader that needs no IAM call), once per
     parameter set;
  3. lints each transformed CloudFormation template with cfn-lint.

Parameter sets: by default the template's defaults plus variants that switch on the conditional
branches (JWT authorizer, existing and engine secrets, alarm topic, KMS key, no reserved
concurrency); `-p Name=Value ...` lints just that one.
Exit status: 0 clean; 1 a cfn-lint error or warning (informational matches are printed only) or
a transform error; 2 bad usage.

Usage (runs under .venv-sam/bin/python, the SAM CLI's venv, when it exists):
  scripts/lint-template.py [-t template.yaml] [--region us-east-1]
      [-p Name=Value ...] [--output-dir DIR] [--ignore-checks W1234 ...]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SAM_VENV_PYTHON = REPO / ".venv-sam" / "bin" / "python"

# Use the SAM CLI's own samtranslator and cfn-lint when the repository has its venv.
if (
    SAM_VENV_PYTHON.exists()
    and Path(sys.prefix).resolve() != SAM_VENV_PYTHON.parent.parent.resolve()
    and not os.environ.get("LINT_TEMPLATE_REEXEC")
):
    os.environ["LINT_TEMPLATE_REEXEC"] = "1"
    os.execv(str(SAM_VENV_PYTHON), [str(SAM_VENV_PYTHON), __file__, *sys.argv[1:]])  # noqa: S606 - fixed path

sys.path.insert(0, str(REPO))  # for local.template, the project's one template loader
# cfn-lint and samtranslator ship no type information
try:
    import boto3
    import yaml
    from cfnlint.api import ManualArgs, lint  # type: ignore[import-untyped]
    from samtranslator.metrics.metrics import DummyMetricsPublisher, Metrics  # type: ignore[import-untyped]
    from samtranslator.parser.parser import Parser  # type: ignore[import-untyped]
    from samtranslator.public.exceptions import InvalidDocumentException  # type: ignore[import-untyped]
    from samtranslator.translator.translator import Translator  # type: ignore[import-untyped]

    from local.template import load_template
except ImportError as exc:  # pragma: no cover
    sys.exit(f"lint-template: {exc}; needs samtranslator, cfn-lint, boto3 and PyYAML (pip install aws-sam-cli)")

# Variants that exercise every Condition of the template (name -> parameter overrides).
VARIANTS: dict[str, dict[str, str]] = {
    "defaults": {},
    "every-option": {  # JWT, existing + engine secrets, alarm topic, KMS key, create unreserved
        "JwtIssuer": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example",
        "JwtAudience": "example-client-id",
        "ExistingSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:broker-keys-AbCdEf",
        "AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:alerts",
        "CorsAllowedOrigins": "https://app.example.com,https://staging.example.com",
        "AllowedEngines": "openai-realtime,cartesia,external",
        "CartesiaAgentId": "agent_example",
        "ExternalEngineUrl": "wss://engine.example.com/ws",
        "EngineSecretId": "arn:aws:secretsmanager:us-east-1:123456789012:secret:engine-keys-GhIjKl",
        "KmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/0f0e0d0c-0b0a-0908-0706-050403020100",
        "CreateSessionReservedConcurrency": "0",
    },
}

DUMMY_S3_URI = "s3://bucket/value"
_DEFINITION_URI_TYPES = ("AWS::Serverless::Api", "AWS::Serverless::HttpApi", "AWS::Serverless::StateMachine")


# --- transform -------------------------------------------------------------------------------------
def _is_local(uri: Any) -> bool:
    return isinstance(uri, str) and not uri.startswith("s3://")


def _with_dummy_code_locations(template: dict[str, Any]) -> dict[str, Any]:
    """samtranslator accepts only S3 locations; local build paths are replaced as sam validate does."""
    template = copy.deepcopy(template)
    function_globals = template.get("Globals", {}).get("Function", {})
    if isinstance(function_globals.get("CodeUri"), str):
        function_globals["CodeUri"] = DUMMY_S3_URI
    for resource in template.get("Resources", {}).values():
        props = resource.get("Properties", {}) if isinstance(resource, dict) else {}
        rtype = resource.get("Type") if isinstance(resource, dict) else None
        if rtype == "AWS::Serverless::Function" and props.get("PackageType", "Zip") == "Zip":
            if _is_local(props.get("CodeUri")):
                props["CodeUri"] = DUMMY_S3_URI
        elif rtype == "AWS::Serverless::LayerVersion":
            if _is_local(props.get("ContentUri")):
                props["ContentUri"] = DUMMY_S3_URI
        elif rtype in _DEFINITION_URI_TYPES and isinstance(props.get("DefinitionUri"), str):
            props["DefinitionUri"] = DUMMY_S3_URI
    return template


def _no_managed_policies() -> dict[str, str]:
    """Offline stand-in for ManagedPolicyLoader: AWS managed policies must be given as ARNs."""
    return {}


def parameter_values(template: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    """Values as CloudFormation hands them to the SAM transform: defaults, then overrides, with
    list-typed parameters (CommaDelimitedList, List<...>) as lists. The translator adds the
    pseudo parameters itself."""
    values: dict[str, Any] = {}
    for name, spec in template.get("Parameters", {}).items():
        raw = overrides.get(name, spec.get("Default"))
        if raw is None:
            continue
        ptype = str(spec.get("Type", "String"))
        is_list = ptype == "CommaDelimitedList" or ptype.startswith("List<")
        values[name] = [item.strip() for item in str(raw).split(",")] if is_list else str(raw)
    return values


def transform(template: dict[str, Any], overrides: dict[str, str], region: str) -> dict[str, Any]:
    metrics = Metrics("ServerlessTransform", DummyMetricsPublisher())
    translator = Translator(
        managed_policy_map=None,
        sam_parser=Parser(),
        boto_session=boto3.Session(region_name=region),
        metrics=metrics,
    )
    try:
        cfn: dict[str, Any] = translator.translate(
            sam_template=_with_dummy_code_locations(template),
            parameter_values=parameter_values(template, overrides),
            get_managed_policy_map=_no_managed_policies,
        )
    finally:
        metrics.publish()
    return cfn


def apply_parameters(cfn: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    """Make the overrides the transformed template's defaults, so cfn-lint sees that variant."""
    cfn = copy.deepcopy(cfn)
    declared = cfn.get("Parameters", {})
    for name, value in parameters.items():
        if name in declared:
            declared[name]["Default"] = value
    return cfn


# --- lint ------------------------------------------------------------------------------------------
_RESOURCE_LINE = re.compile(r'^    "([^"]+)": \{$')  # a resource key in json.dumps(indent=2)


def _where(lines: list[str], lineno: int, transformed: bool) -> str:
    """`line N`, plus the enclosing resource of the transformed JSON (whose lines are not the source's)."""
    if not transformed:
        return f"line {lineno}"
    for line in reversed(lines[: max(lineno, 1)]):
        if line.startswith('  "') and not line.startswith("    "):
            break  # left the section before finding a resource
        found = _RESOURCE_LINE.match(line)
        if found:
            return f"{found.group(1)} (transformed line {lineno})"
    return f"transformed line {lineno}"


def run_cfn_lint(label: str, text: str, region: str, ignore: list[str], transformed: bool) -> int:
    """Print cfn-lint matches; return how many are errors or warnings."""
    config = ManualArgs(regions=[region], ignore_checks=ignore) if ignore else ManualArgs(regions=[region])
    matches = lint(text, config=config)
    lines = text.splitlines()
    failing = 0
    for match in matches:
        rule_id = match.rule.id
        level = {"E": "error", "W": "warning"}.get(rule_id[:1], "info")
        failing += level != "info"
        message = match.message if len(match.message) <= 240 else match.message[:237] + "..."
        print(f"  {label}: {level} {rule_id} {_where(lines, match.linenumber, transformed)}: {message}")
    return failing


def constraint_errors(template: dict[str, Any], overrides: dict[str, str]) -> list[str]:
    """Check override values against the parameters' constraints, as CloudFormation would."""
    errors = []
    for name, value in overrides.items():
        spec = template["Parameters"][name]
        is_list = spec.get("Type") == "CommaDelimitedList" or str(spec.get("Type", "")).startswith("List<")
        items = [v.strip() for v in value.split(",")] if is_list else [value]
        allowed = spec.get("AllowedValues")
        pattern = spec.get("AllowedPattern")
        for item in items:
            if allowed is not None and item not in [str(a) for a in allowed]:
                errors.append(f"{name}={item!r} is not one of {allowed}")
            if pattern is not None and not re.fullmatch(pattern, item):
                errors.append(f"{name}={item!r} does not match {pattern}")
            if "MaxLength" in spec and len(item) > int(spec["MaxLength"]):
                errors.append(f"{name} is longer than {spec['MaxLength']}")
            if spec.get("Type") == "Number":
                try:
                    number = float(item)
                except ValueError:
                    errors.append(f"{name}={item!r} is not a number")
                    continue
                if "MinValue" in spec and number < float(spec["MinValue"]):
                    errors.append(f"{name}={item} is below {spec['MinValue']}")
                if "MaxValue" in spec and number > float(spec["MaxValue"]):
                    errors.append(f"{name}={item} is above {spec['MaxValue']}")
    return errors


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    overrides: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"lint-template: bad parameter override {pair!r} (want Name=Value)")
        overrides[name] = value
    return overrides


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-t", "--template", type=Path, default=REPO / "template.yaml")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION") or "us-east-1")
    parser.add_argument("-p", "--parameter-overrides", nargs="+", default=[], metavar="NAME=VALUE")
    parser.add_argument("--output-dir", type=Path, help="write each transformed template here as JSON")
    parser.add_argument("--ignore-checks", nargs="+", default=[], metavar="RULE")
    args = parser.parse_args(argv)

    if not args.template.is_file():
        print(f"lint-template: {args.template} not found", file=sys.stderr)
        return 2
    try:
        template = load_template(args.template)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        print(f"lint-template: cannot parse {args.template}: {exc}", file=sys.stderr)
        return 1

    variants = {"overrides": parse_overrides(args.parameter_overrides)} if args.parameter_overrides else VARIANTS
    unknown = [n for v in variants.values() for n in v if n not in template.get("Parameters", {})]
    if unknown:
        print(f"lint-template: unknown parameter(s): {', '.join(sorted(set(unknown)))}", file=sys.stderr)
        return 2

    failures = 0
    print(f"cfn-lint {args.template.name} (SAM)")
    failures += run_cfn_lint(
        "sam", args.template.read_text(encoding="utf-8"), args.region, args.ignore_checks, transformed=False
    )

    for name, overrides in variants.items():
        print(f"transform + cfn-lint [{name}]")
        bad_values = constraint_errors(template, overrides)
        for error in bad_values:
            print(f"  {name}: parameter error: {error}")
        failures += len(bad_values)
        try:
            cfn = transform(template, overrides, args.region)
        except InvalidDocumentException as exc:
            for cause in exc.causes:
                print(f"  {name}: transform error: {cause.message}")
            failures += max(1, len(exc.causes))
            continue
        cfn = apply_parameters(cfn, overrides)
        text = json.dumps(cfn, indent=2, sort_keys=False)
        if args.output_dir:
            args.output_dir.mkdir(parents=True, exist_ok=True)
            (args.output_dir / f"{args.template.stem}.{name}.json").write_text(text + "\n", encoding="utf-8")
        failures += run_cfn_lint(name, text, args.region, args.ignore_checks, transformed=True)

    print("OK" if not failures else f"FAILED: {failures} problem(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
