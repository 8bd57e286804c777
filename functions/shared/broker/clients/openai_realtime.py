"""OpenAI Realtime ephemeral client secrets, through the official SDK (openai 3.x on httpx2):
``POST /v1/realtime/client_secrets`` (OpenAI API reference, "Realtime: client secrets").

Only the create function imports this module: the openai SDK is the largest import of the layer.
The call goes through the SDK client's generic ``post`` (its documented way to a raw endpoint:
same auth, errors and timeouts), not ``client.realtime.client_secrets``: that resource imports
every Realtime type on first use, ~200 pydantic models and a sixth of a cold start, for one
field of the answer.
"""

from __future__ import annotations

from typing import Any

import httpx2
import openai

from broker.clients._http import (
    AUTH_STATUSES,
    RETRYABLE_STATUSES,
    Credential,
    is_unavailable,
    retry_after_seconds,
    unavailable,
    wait_to_retry,
)
from broker.errors import UpstreamError, UpstreamTimeoutError
from broker.http import timeout_within
from broker.observability import logger
from broker.timing import Deadline


class OpenAIRealtimeClient:
    """Adapter of OpenAI's client-secret endpoint; raises ``broker.errors`` domain errors only.

    The SDK's own retries are off (its defaults, 2 retries honouring ``Retry-After`` up to two
    minutes, do not fit API Gateway's 30 s): this adapter retries under the broker's policy
    (``broker.clients._http``), every wait bounded by the deadline.
    """

    def __init__(self, http: httpx2.Client, base_url: str, api_key: Credential) -> None:
        self._api_key = api_key
        self._http = http
        self._sdk = openai.OpenAI(api_key=api_key, base_url=base_url, http_client=http, max_retries=0)

    def mint_client_secret(
        self,
        *,
        model: str,
        voice: str,
        instructions: str | None,
        transcription_model: str | None,
        ttl: int,
        deadline: Deadline,
    ) -> str:
        """An ephemeral client secret (``ek_...``) for a realtime session of ``model`` that
        expires ``ttl`` seconds (10 to 7200) after creation. The session speaks with ``voice``
        (``session.audio.output.voice``), follows ``instructions`` and, with a
        ``transcription_model``, transcribes the user's audio (``session.audio.input.transcription``,
        which Avaturn needs to forward user transcripts).

        Raises ``ConfigurationError`` when the key is missing, ``UpstreamTimeoutError`` on a
        timeout, ``UpstreamUnavailableError`` on a 429/503 with no time left to wait, and
        ``UpstreamError`` on any other error status or an off-contract answer.
        """
        audio: dict[str, Any] = {"output": {"voice": voice}}
        if transcription_model:
            audio["input"] = {"transcription": {"model": transcription_model}}
        session: dict[str, Any] = {"type": "realtime", "model": model, "audio": audio}
        if instructions:
            session["instructions"] = instructions
        refreshed = False
        attempt = 1
        with deadline.applies():
            while True:
                key = self._api_key()  # fails fast (503) on a missing key, before any network call
                try:
                    secret = self._sdk.post(
                        "/realtime/client_secrets",
                        cast_to=object,  # the JSON answer as it came
                        body={"expires_after": {"anchor": "created_at", "seconds": ttl}, "session": session},
                        options={"timeout": timeout_within(self._http, deadline)},
                    )
                except openai.APIStatusError as exc:
                    status = exc.status_code
                    if status in AUTH_STATUSES and not refreshed:
                        refreshed = True
                        if self._api_key.refresh(key):
                            continue
                    wait = retry_after_seconds(exc.response)
                    if status in RETRYABLE_STATUSES and wait_to_retry(attempt, wait):
                        attempt += 1
                        continue
                    if is_unavailable(status, wait):
                        raise unavailable("openai", status, wait) from None
                    logger.warning("upstream refused", extra={"upstream": "openai", "status": status})
                    raise UpstreamError("openai", "openai refused to mint a client secret") from None
                except openai.APIConnectionError as exc:  # APITimeoutError included
                    if wait_to_retry(attempt, None):
                        attempt += 1
                        continue
                    logger.warning("upstream failed", extra={"upstream": "openai", "error": type(exc).__name__})
                    if isinstance(exc, openai.APITimeoutError):
                        raise UpstreamTimeoutError("openai", "openai did not answer in time") from exc
                    raise UpstreamError("openai", "could not talk to openai") from exc
                except (openai.OpenAIError, ValueError) as exc:
                    logger.warning("upstream failed", extra={"upstream": "openai", "error": type(exc).__name__})
                    raise UpstreamError("openai", "openai sent an unexpected response") from None
                break
        value = secret.get("value") if isinstance(secret, dict) else None
        if not isinstance(value, str) or not value:
            logger.warning("upstream answered off contract", extra={"upstream": "openai"})
            raise UpstreamError("openai", "openai sent an unexpected response")
        return value
