"""The one HTTP stack: a single httpx2 client per container, shared by every upstream adapter
(the openai SDK included), so connections are reused across warm invocations."""

from __future__ import annotations

import httpx2

from broker.config import Settings
from broker.timing import Deadline


def make_http_client(settings: Settings, transport: httpx2.BaseTransport | None = None) -> httpx2.Client:
    """The container's one HTTP client: a keep-alive pool (64 connections, idle ones kept 55 s)
    with the configured connect/read timeouts (seconds). It never follows redirects: an upstream
    that redirects is misconfigured, and a redirect must not carry our Authorization header.
    ``transport`` replaces the network (tests pass an ``httpx2.MockTransport``)."""
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


def timeout_within(http: httpx2.Client, deadline: Deadline, share: float = 1.0) -> httpx2.Timeout:
    """The client's own connect/read/write/pool timeouts (seconds), each clipped to ``share``
    of the time the deadline has left (at least 0.1 s)."""
    left = max(0.1, deadline.remaining() * share)
    base = http.timeout
    return httpx2.Timeout(
        connect=min(base.connect or left, left),
        read=min(base.read or left, left),
        write=min(base.write or left, left),
        pool=min(base.pool or left, left),
    )
