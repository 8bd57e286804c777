"""Mint the conversation-engine credential and describe the engine to Avaturn.

Imported only by the create function (it pulls in the openai SDK).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from broker.clients.cartesia import CartesiaClient
from broker.clients.openai_realtime import OpenAIRealtimeClient
from broker.config import EngineName, Settings
from broker.timing import Deadline


@dataclass
class EngineMinters:
    """Turns an engine name into Avaturn's ``conversation_engine`` object, minting its
    short-lived credential first (the shapes are Avaturn's "Conversation engines" docs)."""

    settings: Settings
    openai: OpenAIRealtimeClient
    cartesia: CartesiaClient

    def __call__(self, engine: EngineName, deadline: Deadline) -> dict[str, Any]:
        """Everything (retries included) within ``deadline``:
        ``{"type": "openai-realtime", "client_secret"}``, ``{"type": "cartesia",
        "access_token", "agent_id"}`` or ``{"type": "external", "url", "audio"}``.

        Raises the adapters' ``UpstreamError`` / ``UpstreamTimeoutError`` / ``ConfigurationError``.
        """
        s = self.settings
        if engine == "openai-realtime":
            secret = self.openai.mint_client_secret(
                model=s.openai_realtime_model,
                voice=s.openai_voice,
                instructions=s.openai_instructions,
                ttl=s.openai_client_secret_ttl,
                deadline=deadline,
            )
            return {"type": "openai-realtime", "client_secret": secret}
        if engine == "cartesia":
            token = self.cartesia.mint_agent_token(expires_in=s.cartesia_token_ttl, deadline=deadline)
            return {"type": "cartesia", "access_token": token, "agent_id": s.cartesia_agent_id}
        return {
            "type": "external",
            "url": s.external_engine_url,
            "audio": {"user": {"sample_rate": s.external_sample_rate}},
        }
