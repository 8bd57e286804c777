"""Cartesia access tokens for its voice agents (``POST /access-token`` with a
``Cartesia-Version`` header; see Cartesia's API reference). Minting is safe to repeat, so
transient failures are retried within the deadline."""

from __future__ import annotations

import httpx2
from pydantic import BaseModel, ConfigDict, Field

from broker.clients._http import Credential, exchange, parse, reject
from broker.timing import Deadline


class CartesiaToken(BaseModel):
    """The part of Cartesia's answer the broker uses: ``{token}``."""

    model_config = ConfigDict(extra="ignore")

    token: str = Field(min_length=1, max_length=8192)


class CartesiaClient:
    """Adapter of Cartesia's access-token endpoint; raises ``broker.errors`` domain errors only."""

    def __init__(self, http: httpx2.Client, base_url: str, version: str, api_key: Credential) -> None:
        self._http = http
        self._url = f"{base_url.rstrip('/')}/access-token"
        self._version = version
        self._api_key = api_key

    def _authorize(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}", "Cartesia-Version": self._version}

    def mint_agent_token(self, *, expires_in: int, deadline: Deadline) -> str:
        """A token granting agent access for ``expires_in`` seconds (at most 3600).

        Raises ``UpstreamTimeoutError``, ``UpstreamUnavailableError`` (429/503 with no time to
        wait) or ``UpstreamError`` when the last attempt fails, ``ConfigurationError`` when the
        key is missing.
        """
        response = exchange(
            self._http,
            "cartesia",
            "POST",
            self._url,
            credential=self._api_key,
            authorize=self._authorize,
            deadline=deadline,
            idempotent=True,
            json={"grants": {"agent": True}, "expires_in": expires_in},
        )
        if response.status_code != 200:
            raise reject("cartesia", response, "mint an access token")
        return parse("cartesia", response, CartesiaToken).token
