"""Cartesia access tokens for its voice agents (``POST /access-token`` with a
``Cartesia-Version`` header; see Cartesia's API reference). Minting is safe to retry once."""

from __future__ import annotations

from collections.abc import Callable

import httpx2
from pydantic import BaseModel, ConfigDict, Field

from broker.clients._http import parse, reject, send
from broker.errors import UpstreamError
from broker.timing import Deadline

RETRYABLE = {408, 409, 429, 500, 502, 503, 504}


class CartesiaToken(BaseModel):
    """The part of Cartesia's answer the broker uses: ``{token}``."""

    model_config = ConfigDict(extra="ignore")

    token: str = Field(min_length=1, max_length=8192)


class CartesiaClient:
    """Adapter of Cartesia's access-token endpoint; raises ``broker.errors`` domain errors only."""

    def __init__(self, http: httpx2.Client, base_url: str, version: str, api_key: Callable[[], str]) -> None:
        self._http = http
        self._url = f"{base_url.rstrip('/')}/access-token"
        self._version = version
        self._api_key = api_key

    def mint_agent_token(self, *, expires_in: int, deadline: Deadline, share: float = 1.0, attempts: int = 2) -> str:
        """A token granting agent access for ``expires_in`` seconds (at most 3600).

        Each attempt may use ``share`` of the deadline's time left. Raises
        ``UpstreamTimeoutError`` / ``UpstreamError`` when the last attempt fails.
        """
        headers = {"Authorization": f"Bearer {self._api_key()}", "Cartesia-Version": self._version}
        body = {"grants": {"agent": True}, "expires_in": expires_in}
        for attempt in range(1, attempts + 1):
            try:
                response = send(
                    self._http,
                    "cartesia",
                    "POST",
                    self._url,
                    json=body,
                    headers=headers,
                    deadline=deadline,
                    share=share,
                )
            except UpstreamError:
                if attempt == attempts:
                    raise
                continue
            if response.status_code in RETRYABLE and attempt < attempts:
                continue
            if response.status_code != 200:
                raise reject("cartesia", response, "mint an access token")
            return parse("cartesia", response, CartesiaToken).token
        raise AssertionError("unreachable")  # pragma: no cover
