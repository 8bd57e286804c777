"""AWS clients under the broker's fault policy.

- botocore's own retries are off: its backoff knows nothing of our deadline;
- each call's read timeout is clipped to the current deadline (``Deadline.current()``), through
  the per-request ``read_timeout`` that botocore reads from the request context;
- transient failures are retried with full jitter while the deadline allows: throttling,
  internal errors, a transaction cancelled only for ``TransactionConflict`` (DynamoDB cancels a
  ``TransactWriteItems`` that races another transaction on one item), and connection failures;
  a read timeout (the request may have been applied) only for calls that are safe to repeat:
  reads, and transactions that carry a ``ClientRequestToken`` (DynamoDB makes those idempotent).

Sources: DynamoDB developer guide, "Error handling" and "TransactWriteItems" (cancellation
reasons, ``ClientRequestToken``); AWS Architecture Blog, "Exponential Backoff And Jitter".
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from broker.observability import count, logger
from broker.timing import Backoff, Deadline, sleep_within

CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 5.0
CONFIG = Config(
    connect_timeout=CONNECT_TIMEOUT,
    read_timeout=READ_TIMEOUT,
    retries={"mode": "standard", "total_max_attempts": 1},
)
"""botocore settings (seconds) of every AWS client the broker makes; retries are ours."""

BACKOFF = Backoff(base=0.025, cap=0.5, attempts=10)
MIN_ATTEMPT_SECONDS = 0.2
THROTTLING = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded", "Throttling"}
)
SERVER_ERRORS = frozenset({"InternalServerError", "InternalFailure", "InternalServiceError", "ServiceUnavailable"})
TRANSIENT_CANCELLATIONS = frozenset(
    {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"}
)
SAFE_TO_REPEAT = frozenset(
    {"get_item", "query", "scan", "batch_get_item", "transact_get_items", "get_secret_value", "get_parameter"}
)


def client(service: str) -> Any:
    """A boto3 client of ``service`` with ``CONFIG``, under the policy, made on first use: a
    client costs tens of milliseconds of a cold start (its service model is loaded), and a
    function's object graph holds clients some of its routes never call. boto3 honours
    ``AWS_ENDPOINT_URL`` (and its per-service variants) itself; empty means AWS."""
    return ResilientClient(lambda: _watched(boto3.client(service, config=CONFIG)))  # type: ignore[call-overload]


def resilient(raw: Any) -> Any:
    """``raw`` (a boto3 client, or anything with its methods and ``meta.events``) under the
    policy; wrapping twice is harmless."""
    if isinstance(raw, ResilientClient):
        return raw
    return ResilientClient(lambda: _watched(raw))


def _watched(raw: Any) -> Any:
    meta = getattr(raw, "meta", None)
    if meta is not None:
        meta.events.register("before-call", _clip_read_timeout)
    return raw


def _clip_read_timeout(context: dict[str, Any], **_: Any) -> None:
    deadline = Deadline.current()
    if deadline is not None:
        context["read_timeout"] = max(0.1, min(READ_TIMEOUT, deadline.remaining()))


def is_transient(operation: str, kwargs: dict[str, Any], exc: Exception) -> bool:
    """True if ``exc`` from ``operation(**kwargs)`` may go away on a retry and the retry is safe."""
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError):
        return True  # nothing was sent
    if isinstance(exc, ReadTimeoutError | ConnectionClosedError):
        return operation in SAFE_TO_REPEAT or (operation == "transact_write_items" and "ClientRequestToken" in kwargs)
    if not isinstance(exc, ClientError):
        return False
    code = exc.response.get("Error", {}).get("Code", "")
    if code in THROTTLING or code in SERVER_ERRORS or code == "TransactionInProgressException":
        return True
    if code == "TransactionCanceledException":
        reasons = {r.get("Code") for r in exc.response.get("CancellationReasons", [])}
        return bool(reasons & TRANSIENT_CANCELLATIONS) and "ConditionalCheckFailed" not in reasons
    return False


class ResilientClient:
    """A proxy of a boto3 client whose API calls retry transient failures within the current
    deadline (``BACKOFF``; a retry starts only if ``MIN_ATTEMPT_SECONDS`` remain after its
    wait). Everything else (``meta``, ``exceptions``, paginators) is the client's own. The
    client is made by ``make`` on first use, once, whichever thread comes first (making clients
    of one boto3 session is not thread-safe)."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make: Callable[[], Any] | None = make
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def _raw(self) -> Any:
        if self._make is not None:
            with self._lock:
                if self._make is not None:
                    self._client, self._make = self._make(), None
        return self._client

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._raw, name)
        if name.startswith("_") or not callable(attr) or name in ("get_paginator", "get_waiter", "can_paginate"):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            attempt = 1
            while True:
                try:
                    return attr(*args, **kwargs)
                except (BotoCoreError, ClientError) as exc:
                    if attempt >= BACKOFF.attempts or not is_transient(name, kwargs, exc):
                        raise
                    if not sleep_within(BACKOFF.wait(attempt), MIN_ATTEMPT_SECONDS):
                        raise
                    logger.info("aws retry", extra={"operation": name, "attempt": attempt, "error": _code(exc)})
                    count("AwsRetries")
                    attempt += 1

        return call


def _code(exc: Exception) -> str:
    return exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else type(exc).__name__
