"""Mint the conversation-engine credential and describe the engine to Avaturn.

Imported only by the create function (it pulls in the openai SDK).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from broker.clients.cartesia import CartesiaClient
from broker.clients.openai_realtime import OpenAIRealtimeClient
from broker.config import Settings
from broker.profiles import Profile
from broker.timing import Deadline


@dataclass
class EngineMinters:
    """Turns a profile into Avaturn's ``conversation_engine`` object, minting its short-lived
    credential first (the shapes are Avaturn's "Conversation engines" docs). ``engine_headers``
    returns the header object a field of the engine secret holds (``KeyStore.engine_headers``)."""

    settings: Settings
    openai: OpenAIRealtimeClient
    cartesia: CartesiaClient
    engine_headers: Callable[[str], dict[str, str]]

    def __call__(self, profile: Profile, deadline: Deadline) -> dict[str, Any]:
        """Everything (retries included) within ``deadline``, for the profile's engine (whose
        section it has, as validated):
        ``{"type": "openai-realtime", "client_secret"}``, ``{"type": "cartesia",
        "access_token", "agent_id"}`` or ``{"type": "external", "url", "audio": {"user":
        {"sample_rate"}}, "headers"?}``.

        Raises the adapters' ``UpstreamError`` / ``UpstreamTimeoutError`` / ``ConfigurationError``.
        """
        s = self.settings
        if profile.engine == "openai-realtime" and profile.openai:
            openai = profile.openai
            secret = self.openai.mint_client_secret(
                model=openai.model,
                voice=openai.voice,
                instructions=openai.instructions,
                transcription_model=openai.transcription_model,
                ttl=s.openai_client_secret_ttl,
                deadline=deadline,
            )
            return {"type": "openai-realtime", "client_secret": secret}
        if profile.engine == "cartesia" and profile.cartesia:
            token = self.cartesia.mint_agent_token(expires_in=s.cartesia_token_ttl, deadline=deadline)
            return {"type": "cartesia", "access_token": token, "agent_id": profile.cartesia.agent_id}
        if profile.engine == "external" and profile.external:
            external = profile.external
            engine: dict[str, Any] = {
                "type": "external",
                "url": external.url,
                "audio": {"user": {"sample_rate": external.sample_rate}},
            }
            if external.headers_secret_field:
                engine["headers"] = self.engine_headers(external.headers_secret_field)
            return engine
        raise AssertionError(f"profile without its {profile.engine} section")  # ProfilesDocument prevents it
