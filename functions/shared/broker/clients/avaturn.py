"""Avaturn Live REST API: create and delete sessions (``POST /api/v1/sessions``,
``DELETE /api/v1/sessions/{id}``, ``Authorization: Bearer <key>``; see the Avaturn Live API
reference). A create is never retried: it may have succeeded upstream (and be billed) even when
we saw a timeout or a 5xx."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx2
from pydantic import BaseModel, ConfigDict, Field

from broker.clients._http import parse, reject, send
from broker.errors import UpstreamError, UpstreamGoneError
from broker.timing import Deadline


class AvaturnSession(BaseModel):
    """The part of Avaturn's create answer the broker uses: ``{session_id, token}``."""

    model_config = ConfigDict(extra="ignore")

    session_id: str = Field(min_length=1, max_length=256)
    token: str = Field(min_length=1, max_length=8192)


class AvaturnClient:
    """Adapter of the Avaturn Live REST API; raises ``broker.errors`` domain errors only."""

    def __init__(self, http: httpx2.Client, base_url: str, api_key: Callable[[], str]) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._api_key = api_key

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key()}"}

    def create_session(
        self,
        *,
        conversation_engine: dict[str, Any],
        avatar_id: str | None,
        max_duration: int,
        user_absent_timeout: int,
        deadline: Deadline,
    ) -> AvaturnSession:
        """Create a session bound to ``conversation_engine`` (an engine object as Avaturn's docs
        define it); ``max_duration`` and ``user_absent_timeout`` are seconds.

        Returns ``{session_id, token}``. Raises ``UpstreamTimeoutError`` (504) on a timeout,
        ``UpstreamError`` (502) on any error status or off-contract body.
        """
        body: dict[str, Any] = {
            "conversation_engine": conversation_engine,
            "max_duration": max_duration,
            "user_absent_timeout": user_absent_timeout,
        }
        if avatar_id:
            body["avatar_id"] = avatar_id
        headers = self._headers()
        url = f"{self._base}/api/v1/sessions"
        response = send(self._http, "avaturn", "POST", url, json=body, headers=headers, deadline=deadline)
        if response.status_code not in (200, 201):
            raise reject("avaturn", response, "create the session")
        return parse("avaturn", response, AvaturnSession)

    def delete_session(self, session_id: str, *, deadline: Deadline) -> None:
        """End a session.

        Raises ``UpstreamGoneError`` when Avaturn no longer knows it (404/410),
        ``UpstreamTimeoutError`` on a timeout and ``UpstreamError`` on any other error status.
        """
        headers = self._headers()
        url = f"{self._base}/api/v1/sessions/{quote(session_id, safe='')}"
        response = send(self._http, "avaturn", "DELETE", url, headers=headers, deadline=deadline)
        if response.status_code in (404, 410):
            raise UpstreamGoneError("avaturn", "the session had already ended")
        if not response.is_success:
            raise reject("avaturn", response, "end the session")
        if response.content.strip():  # documented as empty; anything else must at least be JSON
            try:
                response.json()
            except ValueError:
                raise UpstreamError("avaturn", "avaturn sent an unexpected response") from None
