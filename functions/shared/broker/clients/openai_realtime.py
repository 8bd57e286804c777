"""OpenAI Realtime ephemeral client secrets, through the official SDK (openai 3.x on httpx2):
``POST /v1/realtime/client_secrets`` (OpenAI API reference, "Realtime: client secrets").

Only the create function imports this module: the openai SDK is the largest import of the layer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx2
import openai

from broker.errors import UpstreamError, UpstreamTimeoutError
from broker.http import timeout_within
from broker.observability import logger
from broker.timing import Deadline


class OpenAIRealtimeClient:
    """Adapter of OpenAI's client-secret endpoint; raises ``broker.errors`` domain errors only."""

    def __init__(self, http: httpx2.Client, base_url: str, api_key: Callable[[], str]) -> None:
        # One retry: minting is safe to repeat. The SDK's defaults (10 min, 2 retries) do not fit
        # API Gateway's 30 s, so every call also passes a timeout clipped to the deadline.
        self._api_key = api_key
        self._http = http
        self._sdk = openai.OpenAI(api_key=api_key, base_url=base_url, http_client=http, max_retries=1)

    def mint_client_secret(
        self, *, model: str, voice: str, instructions: str, ttl: int, deadline: Deadline, share: float = 1.0
    ) -> str:
        """An ephemeral client secret (``ek_...``) for a realtime session of ``model`` that
        expires ``ttl`` seconds (10 to 7200) after creation.

        Raises ``ConfigurationError`` when the key is missing, ``UpstreamTimeoutError`` on a
        timeout and ``UpstreamError`` on an error status or an off-contract answer.
        """
        self._api_key()  # fail fast (503) on a missing key, before any network call
        session: dict[str, Any] = {"type": "realtime", "model": model, "audio": {"output": {"voice": voice}}}
        if instructions:
            session["instructions"] = instructions
        try:
            secret = self._sdk.realtime.client_secrets.create(
                expires_after={"anchor": "created_at", "seconds": ttl},
                session=session,  # type: ignore[arg-type]
                timeout=timeout_within(self._http, deadline, share),
            )
        except openai.APITimeoutError as exc:
            logger.warning("upstream timed out", extra={"upstream": "openai"})
            raise UpstreamTimeoutError("openai", "openai did not answer in time") from exc
        except openai.APIStatusError as exc:
            logger.warning("upstream refused", extra={"upstream": "openai", "status": exc.status_code})
            raise UpstreamError("openai", f"openai refused to mint a client secret (HTTP {exc.status_code})") from None
        except (openai.OpenAIError, ValueError) as exc:
            logger.warning("upstream failed", extra={"upstream": "openai", "error": type(exc).__name__})
            raise UpstreamError("openai", "openai sent an unexpected response") from None
        value = getattr(secret, "value", None)
        if not isinstance(value, str) or not value:
            logger.warning("upstream answered off contract", extra={"upstream": "openai"})
            raise UpstreamError("openai", "openai sent an unexpected response")
        return value
