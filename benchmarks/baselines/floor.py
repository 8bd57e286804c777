"""The floor: what ``POST /sessions`` (engine ``openai-realtime``) cannot avoid, and nothing
else. The same upstream calls and registry writes as the broker's create, made by a minimal
client with persistent connections: ``http.client`` keep-alive connections to OpenAI and
Avaturn, one boto3 DynamoDB client, the keys read once per container.

Per call: one ``TransactWriteItems`` (the pending session row and the owner's slot, under the
cap), the client-secret mint, the Avaturn create, one ``UpdateItem`` (pending -> active). No
validation, no idempotency, no retries, no logging: the broker's time minus this one is what
its own code costs. ``make bench`` builds it like a function of the stack
(``functions/function.mk``, byte-compiled) and runs it with no layer.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import boto3

TABLE = os.environ["SESSIONS_TABLE_NAME"]
CAP = os.environ.get("MAX_ACTIVE_SESSIONS_PER_OWNER", "2")
MAX_DURATION = int(os.environ.get("SESSION_MAX_DURATION", "900"))
dynamodb = boto3.client("dynamodb")
keys: dict[str, str] = {}
connections: dict[str, http.client.HTTPConnection] = {}


def post(url: str, key: str, body: dict[str, Any]) -> Any:
    """POST ``body`` as JSON on the keep-alive connection to ``url``'s host; the JSON answer."""
    parts = urlsplit(url)
    host = parts.netloc
    if host not in connections:
        connections[host] = http.client.HTTPConnection(host, timeout=10)
    conn = connections[host]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    conn.request("POST", parts.path, json.dumps(body), headers)
    response = conn.getresponse()
    data = response.read()
    if response.status >= 300:
        raise RuntimeError(f"{host} answered {response.status}")
    return json.loads(data)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if not keys:
        keys.update(read_keys())
    owner = "ip:" + event["requestContext"]["http"]["sourceIp"]
    session_id, now = str(uuid.uuid4()), int(time.time())
    pk = {"S": f"SESSION#{session_id}"}
    row: dict[str, Any] = {
        "pk": pk,
        "session_id": {"S": session_id},
        "owner": {"S": owner},
        "open_owner": {"S": owner},
        "engine": {"S": "openai-realtime"},
        "status": {"S": "pending"},
        "created_at": {"N": str(now)},
        "expires_at": {"N": str(now + MAX_DURATION)},
        "due_at": {"N": str(now + MAX_DURATION)},
    }
    slot: dict[str, Any] = {
        "TableName": TABLE,
        "Key": {"pk": {"S": f"OWNER#{owner}"}},
        "UpdateExpression": "ADD active :one REMOVE expiration",
        "ConditionExpression": "attribute_not_exists(active) OR active < :cap",
        "ExpressionAttributeValues": {":one": {"N": "1"}, ":cap": {"N": CAP}},
    }
    put = {"TableName": TABLE, "Item": row, "ConditionExpression": "attribute_not_exists(pk)"}
    items: list[Any] = [{"Put": put}, {"Update": slot}]
    dynamodb.transact_write_items(TransactItems=items, ClientRequestToken=str(uuid.uuid4()))
    session = {"type": "realtime", "model": "gpt-realtime", "audio": {"output": {"voice": "marin"}}}
    secret = post(
        os.environ["OPENAI_BASE_URL"] + "/realtime/client_secrets",
        keys["openai_api_key"],
        {"expires_after": {"anchor": "created_at", "seconds": 600}, "session": session},
    )
    upstream = post(
        os.environ["AVATURN_API_URL"] + "/api/v1/sessions",
        keys["avaturn_api_key"],
        {
            "conversation_engine": {"type": "openai-realtime", "client_secret": secret["value"]},
            "max_duration": MAX_DURATION,
            "user_absent_timeout": 60,
        },
    )
    dynamodb.update_item(
        TableName=TABLE,
        Key={"pk": pk},
        UpdateExpression="SET #s = :active, avaturn_session_id = :aid, token_sha256 = :th",
        ConditionExpression="#s = :pending",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={
            ":active": {"S": "active"},
            ":pending": {"S": "pending"},
            ":aid": {"S": upstream["session_id"]},
            ":th": {"S": hashlib.sha256(upstream["token"].encode()).hexdigest()},
        },
    )
    body = {"session_id": session_id, "token": upstream["token"], "engine": "openai-realtime"}
    return {"statusCode": 201, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}


def read_keys() -> dict[str, str]:
    """The keys, from the broker secret (once per container, as the broker caches them)."""
    raw = boto3.client("secretsmanager").get_secret_value(SecretId=os.environ["BROKER_SECRET_ID"])
    loaded: dict[str, str] = json.loads(raw["SecretString"])
    return loaded
