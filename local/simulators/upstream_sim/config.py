"""Static configuration of a simulator instance (what the command line sets)."""

from dataclasses import dataclass

UPSTREAMS: tuple[str, ...] = ("avaturn", "openai", "cartesia")

#: Fault-injectable endpoints: name -> (upstream, HTTP method the fault applies to).
ENDPOINTS: dict[str, tuple[str, str]] = {
    "openai.client_secrets": ("openai", "POST"),
    "cartesia.access_token": ("cartesia", "POST"),
    "avaturn.create": ("avaturn", "POST"),
    "avaturn.delete": ("avaturn", "DELETE"),
    "avaturn.sdk": ("avaturn", "GET"),
}

#: Browser origins the web-SDK endpoint answers CORS for by default: any localhost origin.
DEFAULT_CORS_ORIGIN_REGEX = r"^https?://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]{1,5})?$"

#: ``Cartesia-Version`` values the Cartesia API documents.
CARTESIA_VERSIONS: frozenset[str] = frozenset({"2024-06-10", "2024-11-13", "2025-04-16", "2026-03-01"})


@dataclass(frozen=True)
class SimConfig:
    """Everything about a simulator that does not change while it runs."""

    avaturn_key: str = "sim-avaturn-key"
    openai_key: str = "sim-openai-key"
    cartesia_key: str = "sim-cartesia-key"
    #: Avatar ids accepted by ``POST /api/v1/sessions``; ``None`` accepts any id.
    avatars: frozenset[str] | None = None
    #: Avatar ids answered with 410 Gone.
    gone_avatars: frozenset[str] = frozenset()
    #: Extra exact CORS origins for the web-SDK endpoint; ``"*"`` allows any origin.
    cors_origins: tuple[str, ...] = ()
    cors_origin_regex: str | None = DEFAULT_CORS_ORIGIN_REGEX
    room_base_url: str = "https://sim.invalid/room/"
    #: Idle keep-alive timeout of every listener, in seconds.
    keep_alive_timeout: int = 60
    #: Oldest request records are dropped beyond this many.
    max_records: int = 10_000
    access_log: bool = False

    def key_for(self, upstream: str) -> str:
        return {"avaturn": self.avaturn_key, "openai": self.openai_key, "cartesia": self.cartesia_key}[upstream]
