"""Avaturn Live REST API: create and delete sessions (``POST /api/v1/sessions``,
``DELETE /api/v1/sessions/{id}``, ``Authorization: Bearer <key>``; see the Avaturn Live API
reference). A create is never retried after a timeout or an error status: it may have succeeded
upstream (and be billed). A refused key (401/403) is re-read once and the call repeated."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx2
from pydantic import BaseModel, ConfigDict, Field

from broker.clients._http import Credential, exchange, parse, reject
from broker.errors import UpstreamGoneError
from broker.timing import Deadline


class AvaturnSession(BaseModel):
    """The part of Avaturn's create answer the broker uses: ``{session_id, token}``."""

    model_config = ConfigDict(extra="ignore")

    session_id: str = Field(min_length=1, max_length=256)
    token: str = Field(min_length=1, max_length=8192)


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class AvaturnClient:
    """Adapter of the Avaturn Live REST API; raises ``broker.errors`` domain errors only."""

    def __init__(self, http: httpx2.Client, base_url: str, api_key: Credential) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._api_key = api_key

    def create_session(
        self,
        *,
        conversation_engine: dict[str, Any],
        avatar_id: str | None,
        max_duration: int,
        user_absent_timeout: int,
        background: str | None = None,
        deadline: Deadline,
    ) -> AvaturnSession:
        """Create a session bound to ``conversation_engine`` (an engine object as Avaturn's docs
        define it); ``max_duration`` and ``user_absent_timeout`` are seconds; ``background`` is
        ``"transparent"`` or ``"default"`` (None: Avaturn's default).

        Returns ``{session_id, token}``. Raises ``UpstreamTimeoutError`` (504) on a timeout,
        ``UpstreamUnavailableError`` (503) on 429/503, ``UpstreamError`` (502) on any other error
        status or an off-contract body.
        """
        body: dict[str, Any] = {
            "conversation_engine": conversation_engine,
            "max_duration": max_duration,
            "user_absent_timeout": user_absent_timeout,
        }
        if avatar_id:
            body["avatar_id"] = avatar_id
        if background:
            body["background"] = background
        response = exchange(
            self._http,
            "avaturn",
            "POST",
            f"{self._base}/api/v1/sessions",
            credential=self._api_key,
            authorize=_bearer,
            deadline=deadline,
            idempotent=False,
            json=body,
        )
        if response.status_code not in (200, 201):
            raise reject("avaturn", response, "create the session")
        return parse("avaturn", response, AvaturnSession)

    def delete_session(self, session_id: str, *, deadline: Deadline) -> None:
        """End a session; any 2xx is success, whatever its body (the broker uses none of it).

        Raises ``UpstreamGoneError`` when Avaturn no longer knows it (404/410),
        ``UpstreamTimeoutError`` on a timeout, ``UpstreamUnavailableError`` on 429/503 and
        ``UpstreamError`` on any other error status. Safe to repeat, so transient failures are
        retried within the deadline.
        """
        response = exchange(
            self._http,
            "avaturn",
            "DELETE",
            f"{self._base}/api/v1/sessions/{quote(session_id, safe='')}",
            credential=self._api_key,
            authorize=_bearer,
            deadline=deadline,
            idempotent=True,
        )
        if response.status_code in (404, 410):
            raise UpstreamGoneError("avaturn", "the session had already ended")
        if not response.is_success:
            raise reject("avaturn", response, "end the session")
