"""The one HTTP stack: a single httpx2 client per container, shared by every upstream adapter
(the openai SDK included), so connections are reused across warm invocations."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx2

from broker.config import Settings


def make_http_client(settings: Settings, transport: httpx2.BaseTransport | None = None) -> httpx2.Client:
    """Keep-alive pool with explicit timeouts; never follows redirects (an upstream that
    redirects is misconfigured, and a redirect must not carry our Authorization header)."""
    return httpx2.Client(
        timeout=httpx2.Timeout(
            connect=settings.upstream_connect_timeout,
            read=settings.upstream_read_timeout,
            write=settings.upstream_read_timeout,
            pool=settings.upstream_connect_timeout,
        ),
        limits=httpx2.Limits(max_connections=64, max_keepalive_connections=32, keepalive_expiry=55),
        follow_redirects=False,
        transport=transport,
    )


@dataclass(frozen=True, slots=True)
class Deadline:
    """The time left for one invocation; every upstream call is clipped to it."""

    ends_at: float

    @classmethod
    def within(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        return max(0.0, self.ends_at - time.monotonic())

    def get_remaining_time_in_millis(self) -> int:
        """Lambda-context shape, for Powertools idempotency's in-progress expiry."""
        return int(self.remaining() * 1000)

    def timeout(self, settings: Settings, share: float = 1.0) -> httpx2.Timeout:
        """Connect/read timeouts from settings, never past ``share`` of the time left."""
        left = max(0.1, self.remaining() * share)
        connect = min(settings.upstream_connect_timeout, left)
        read = min(settings.upstream_read_timeout, left)
        return httpx2.Timeout(connect=connect, read=read, write=read, pool=connect)
