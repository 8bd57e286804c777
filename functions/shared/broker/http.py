"""The one HTTP stack: a single httpx2 client per container, shared by every upstream adapter
(the openai SDK included), so connections are reused across warm invocations.

Every wait is bounded by the deadline the calling use case runs under (``Deadline.current()``):
the per-operation timeouts are clipped to it (``timeout_within``), and ``DeadlineTransport`` stops
an exchange whose *total* time would pass it (a server trickling bytes cannot stretch it).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx2

from broker.config import Settings
from broker.timing import Deadline

LIMITS = httpx2.Limits(max_connections=64, max_keepalive_connections=32, keepalive_expiry=55)
"""The keep-alive pool: 64 connections, idle ones kept 55 s."""


def make_http_client(settings: Settings, transport: httpx2.BaseTransport | None = None) -> httpx2.Client:
    """The container's one HTTP client, with the configured connect/read timeouts (seconds).

    It never follows redirects: an upstream that redirects is misconfigured, and a redirect must
    not carry our Authorization header. ``transport`` replaces the network (tests pass an
    ``httpx2.MockTransport``); either way it is wrapped in a ``DeadlineTransport``.
    """
    return httpx2.Client(
        timeout=httpx2.Timeout(
            connect=settings.upstream_connect_timeout,
            read=settings.upstream_read_timeout,
            write=settings.upstream_read_timeout,
            pool=settings.upstream_connect_timeout,
        ),
        follow_redirects=False,
        transport=DeadlineTransport(transport),
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


class DeadlineTransport(httpx2.BaseTransport):
    """Wraps a transport so that one exchange (waiting for a connection, the response head and
    every chunk of the body) ends at the current deadline.

    httpx's timeouts bound each socket operation, not their sum: a server that sends one byte
    per second keeps a 1 s read timeout satisfied forever. This checks the deadline before the
    request and after every chunk and raises ``httpx2.ReadTimeout`` once it has passed.

    Without ``inner``, it wraps an ``httpx2.HTTPTransport`` with ``LIMITS``, made on the first
    request: making one imports httpcore2 and loads the TLS trust store, tens of milliseconds of a
    cold start that a function which never calls an upstream (get) does not pay.
    """

    def __init__(self, inner: httpx2.BaseTransport | None = None) -> None:
        self._inner = inner
        self._lock = threading.Lock()

    def _transport(self) -> httpx2.BaseTransport:
        if self._inner is None:
            with self._lock:
                if self._inner is None:
                    self._inner = httpx2.HTTPTransport(limits=LIMITS)
        return self._inner

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        """Send ``request`` through the wrapped transport within the current deadline."""
        deadline = Deadline.current()
        if deadline is None:
            return self._transport().handle_request(request)
        if deadline.remaining() <= 0:
            raise httpx2.PoolTimeout("the request's deadline has passed", request=request)
        response = self._transport().handle_request(request)
        response.stream = _DeadlineStream(response.stream, deadline, request)
        return response

    def close(self) -> None:
        """Close the wrapped transport (its connection pool), if it was ever made."""
        if self._inner is not None:
            self._inner.close()


class _DeadlineStream(httpx2.SyncByteStream):
    def __init__(self, inner: object, deadline: Deadline, request: httpx2.Request) -> None:
        self._inner = inner
        self._deadline = deadline
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:  # type: ignore[attr-defined]
            if self._deadline.remaining() <= 0:
                raise httpx2.ReadTimeout("the response did not complete before the deadline", request=self._request)
            yield chunk

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if callable(close):
            close()
