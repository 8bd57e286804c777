"""The seed-style baseline: the Avaturn documentation's backend example (the "Example" page the
project started from) ported to a Lambda handler as a user would, keeping its code as it stands:
a new ``AsyncOpenAI`` client and a new ``httpx.AsyncClient`` per call, the keys read from Secrets
Manager per call, ``asyncio.run`` per call. What the port adds is only what Lambda needs: the
keys from the secret instead of constants, the upstream URLs from the environment (the
simulators), the handler, and a Secrets Manager client made once (as AWS's own examples do).

It records nothing, checks nothing and never terminates a session; it is a yardstick for
``POST /sessions``, not a service. ``make bench`` builds it like a function of the stack
(``functions/function.mk``, byte-compiled) on a layer of its own requirements
(``seed_style.requirements.txt``, installed and compiled like the BrokerLayer).
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import boto3
import httpx  # type: ignore[import-not-found]  # the documentation's client; not in the dev venv
from openai import AsyncOpenAI
from pydantic import BaseModel

secrets = boto3.client("secretsmanager")


class CreateSessionResponse(BaseModel):
    session_id: str
    token: str


class AvaturnClient:
    def __init__(self, api_key: str, base_url: str = "https://api.avaturn.live") -> None:
        self.headers = {"Authorization": f"Bearer {api_key}"}
        self.base_url = base_url

    async def create_session(self, client_secret: str) -> CreateSessionResponse:
        async with httpx.AsyncClient() as http:
            r = await http.post(
                f"{self.base_url}/api/v1/sessions",
                headers=self.headers,
                json={
                    "conversation_engine": {
                        "type": "openai-realtime",
                        "client_secret": client_secret,
                    }
                },
            )
            r.raise_for_status()
            return CreateSessionResponse.model_validate(r.json())


async def main(keys: dict[str, str]) -> CreateSessionResponse:
    # 1. Mint a short-lived OpenAI client secret
    openai = AsyncOpenAI(api_key=keys["openai_api_key"], base_url=os.environ["OPENAI_BASE_URL"])
    secret = await openai.realtime.client_secrets.create(
        expires_after={"seconds": 600, "anchor": "created_at"},
        session={"type": "realtime", "model": "gpt-realtime"},
    )

    # 2. Create an Avaturn session bound to the OpenAI secret
    avaturn = AvaturnClient(keys["avaturn_api_key"], os.environ["AVATURN_API_URL"])
    return await avaturn.create_session(client_secret=secret.value)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    keys = json.loads(secrets.get_secret_value(SecretId=os.environ["BROKER_SECRET_ID"])["SecretString"])
    session = asyncio.run(main(keys))
    return {"statusCode": 201, "headers": {"content-type": "application/json"}, "body": session.model_dump_json()}
