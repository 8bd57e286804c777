"""Runtime configuration, read from the environment the SAM template declares.

Settings are validated once per container (``broker.factory.components`` keeps them); nothing here
reads the environment at import time.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

EngineName = Literal["openai-realtime", "cartesia", "external"]
ENGINES: tuple[EngineName, ...] = ("openai-realtime", "cartesia", "external")


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    """Every environment variable the functions read (see docs/parameters.md)."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    sessions_table_name: str = Field(min_length=3)
    broker_secret_id: str = Field(min_length=1)
    engine_secret_id: str = ""
    """Secret holding the engine keys (``openai_api_key``, ``cartesia_api_key``), which only the create
    function may read; empty, or the same as ``broker_secret_id``: the broker secret holds every key."""
    secret_cache_seconds: int = Field(300, ge=0, le=3600)
    profiles_parameter_name: str = Field(min_length=1)
    """SSM parameter (a String) holding the profiles document (``broker.profiles``)."""
    profiles_cache_seconds: int = Field(60, ge=0, le=3600)
    """How long a function caches the profiles document: an edit takes effect within it."""

    avaturn_api_url: str = "https://api.avaturn.live"
    avaturn_sdk_api_host: str = ""
    """The Avaturn host the browser's web SDK must use as ``apiHost`` (the 201's ``api_host``);
    empty: ``avaturn_api_url``. Differs only where the functions reach Avaturn by another address
    than browsers do (a local simulator behind the Docker bridge)."""
    openai_base_url: str = "https://api.openai.com/v1"
    cartesia_api_url: str = "https://api.cartesia.ai"
    upstream_connect_timeout: float = Field(3.0, gt=0, le=10)
    upstream_read_timeout: float = Field(10.0, gt=0, le=20)

    allowed_engines: Annotated[tuple[EngineName, ...], NoDecode] = ("openai-realtime",)
    """Engines a client may name in a legacy ``{"engine": ...}`` request (profiles are server
    configuration and may use any engine)."""
    allowed_avatar_ids: Annotated[tuple[str, ...], NoDecode] = ()
    """Avatars a client may name in a legacy ``{"avatar_id": ...}`` request; empty: any."""

    openai_client_secret_ttl: int = Field(600, ge=10, le=7200)
    cartesia_version: str = "2025-04-16"
    cartesia_token_ttl: int = Field(600, ge=1, le=3600)

    session_max_duration: int = Field(900, ge=60, le=86400)
    """Avaturn ``max_duration`` (seconds) of a profile that sets none."""
    user_absent_timeout: int = Field(60, ge=10, le=86400)
    """Avaturn ``user_absent_timeout`` (seconds) of a profile that sets none."""
    max_active_sessions_per_owner: int = Field(2, ge=1, le=100)
    max_session_seconds_per_owner_per_day: int = Field(0, ge=0, le=864000)
    """Each owner's session seconds per UTC day (0 = off): a create reserves its max_duration,
    clamped to what is left (at least 60 s); an end refunds what was not used."""
    max_creates_per_owner_per_minute: int = Field(0, ge=0, le=10000)
    """Creates each owner may make per clock minute (0 = off)."""
    max_active_sessions_total: int = Field(0, ge=0, le=1000000)
    """Open sessions across all owners (0 = off): the Avaturn account's concurrency."""
    session_lease_seconds: int = Field(0, ge=0, le=3600)
    """Seconds a session lives without a keepalive (0 = off): a lapsed lease stops counting, and
    the owner's next create or the sweep ends it upstream (end reason ``abandoned``)."""
    control_cache_seconds: int = Field(10, ge=1, le=300)
    """How long a function trusts its copy of the creates-paused flag."""
    event_bus_name: str = "default"
    """EventBridge bus of the ``Session Ended`` events (empty = no events)."""
    idempotency_ttl_seconds: int = Field(3600, ge=60, le=86400)

    cleanup_grace_seconds: int = Field(120, ge=30, le=3600)
    cleanup_concurrency: int = Field(16, ge=1, le=64)
    finished_retention_days: int = Field(30, ge=1, le=365)

    admin_require_iam: bool = True
    """The operator's routes (``/admin/``) answer only requests API Gateway authorized with IAM
    (SigV4): a second check behind the route's own authorization. Off only for ``sam local``,
    which does not enforce IAM."""

    jwt_issuer: str = ""
    jwt_audience: str = ""
    anonymous_ipv6_prefix: int = Field(64, ge=48, le=128)
    """Anonymous mode: the prefix length of the network that is one IPv6 owner (64: a subscriber's
    /64, whose hosts pick addresses in it freely; 48 is a whole site; 128, one address)."""

    @field_validator("max_session_seconds_per_owner_per_day", "session_lease_seconds")
    @classmethod
    def _off_or_at_least_a_minute(cls, value: int, info: ValidationInfo) -> int:
        least = 60 if info.field_name == "max_session_seconds_per_owner_per_day" else 15
        if 0 < value < least:
            raise ValueError(f"{str(info.field_name).upper()} must be 0 (off) or at least {least}")
        return value

    @field_validator("allowed_engines", "allowed_avatar_ids", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("avaturn_sdk_api_host")
    @classmethod
    def _http_url_or_empty(cls, value: str) -> str:
        if value and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
            raise ValueError("AVATURN_SDK_API_HOST must be empty or an http(s) URL without query or fragment")
        return value.rstrip("/")

    @property
    def jwt_mode(self) -> bool:
        """True when an API Gateway JWT authorizer identifies callers (else anonymous mode)."""
        return bool(self.jwt_issuer)

    @property
    def sdk_api_host(self) -> str:
        """The ``apiHost`` of the browser's web SDK: ``avaturn_sdk_api_host``, else ``avaturn_api_url``
        (without a trailing slash)."""
        return self.avaturn_sdk_api_host or self.avaturn_api_url.rstrip("/")
