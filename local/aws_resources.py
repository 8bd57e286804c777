"""Create the broker's AWS resources (sessions table, secret, profiles document) in moto, the table
from template.yaml itself, so the local stack and the tests can never drift from what is deployed.

Usage: python local/aws_resources.py --endpoint http://HOST:PORT --table NAME --secret NAME
       [--profiles NAME --profiles-file PATH]
(the secret's keys come from AVATURN_API_KEY, OPENAI_API_KEY and CARTESIA_API_KEY; absent = empty)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # run as `python local/aws_resources.py`: import `local.*` from the repository
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from local.paths import TEMPLATE
from local.template import load_template

TABLE_PROPERTIES = ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "BillingMode")


def table_definition(template: Path = TEMPLATE) -> dict[str, Any]:
    """The SessionsTable's CreateTable arguments and TTL attribute, as the template declares them."""
    props = load_template(template)["Resources"]["SessionsTable"]["Properties"]
    create = {k: props[k] for k in TABLE_PROPERTIES if k in props}
    ttl = props.get("TimeToLiveSpecification", {})
    return {"create": create, "ttl_attribute": ttl.get("AttributeName") if ttl.get("Enabled") else None}


def create_table(dynamodb: Any, name: str, template: Path = TEMPLATE) -> None:
    definition = table_definition(template)
    try:
        dynamodb.create_table(TableName=name, **definition["create"])
    except dynamodb.exceptions.ResourceInUseException:
        return
    dynamodb.get_waiter("table_exists").wait(TableName=name)
    if definition["ttl_attribute"]:
        dynamodb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": definition["ttl_attribute"]},
        )


def put_secret(secretsmanager: Any, name: str, keys: dict[str, Any]) -> str:
    """Create or overwrite the broker secret (a JSON object of ``keys``); returns its ARN."""
    value = json.dumps(keys)
    try:
        return str(secretsmanager.create_secret(Name=name, SecretString=value)["ARN"])
    except secretsmanager.exceptions.ResourceExistsException:
        return str(secretsmanager.put_secret_value(SecretId=name, SecretString=value)["ARN"])


def put_profiles(ssm: Any, name: str, document: str) -> None:
    """Create or overwrite the profiles document: SSM String parameter ``name`` holding
    ``document`` (JSON text, docs/profiles.md)."""
    ssm.put_parameter(Name=name, Value=document, Type="String", Overwrite=True)


def main(argv: list[str]) -> int:
    import boto3

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--profiles", help="SSM parameter name of the profiles document")
    parser.add_argument("--profiles-file", type=Path, help="the profiles document (e.g. profiles.example.json)")
    parser.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    args = parser.parse_args(argv)
    session = boto3.session.Session(region_name=args.region, aws_access_key_id="local", aws_secret_access_key="local")  # noqa: S106 - moto
    create_table(session.client("dynamodb", endpoint_url=args.endpoint), args.table)
    keys = {
        "avaturn_api_key": os.environ.get("AVATURN_API_KEY", ""),
        "openai_api_key": os.environ.get("OPENAI_API_KEY", ""),
        "cartesia_api_key": os.environ.get("CARTESIA_API_KEY", ""),
    }
    arn = put_secret(session.client("secretsmanager", endpoint_url=args.endpoint), args.secret, keys)
    if args.profiles and args.profiles_file:
        put_profiles(session.client("ssm", endpoint_url=args.endpoint), args.profiles, args.profiles_file.read_text())
    print(arn)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
