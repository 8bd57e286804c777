"""The HTTP edge shared by the API functions: request parsing, caller identity, and the one
place that maps domain errors to RFC 9457 problem+json responses."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from broker import errors
from broker.models import Caller, CreateSessionRequest
from broker.observability import count_upstream_failure, logger
from broker.timing import Deadline

MAX_BODY_BYTES = 4096
MAX_IDEMPOTENCY_KEY = 128
API_GATEWAY_BUDGET = 29.0  # HTTP APIs give 30 s; answer before that whatever the Lambda timeout
_SECURITY_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}

# status, problem type slug, title; looked up along the exception's MRO (most specific first)
_PROBLEMS: dict[type[Exception], tuple[int, str, str]] = {
    errors.MalformedBodyError: (400, "malformed-body", "Malformed request body"),
    errors.UnauthenticatedError: (401, "unauthenticated", "Authentication required"),
    errors.SessionNotFoundError: (404, "session-not-found", "Session not found"),
    NotFoundError: (404, "not-found", "Not found"),
    errors.SessionConflictError: (409, "session-conflict", "Session not ready"),
    errors.IdempotencyInProgressError: (409, "idempotency-in-progress", "Request in progress"),
    errors.ReplayUnavailableError: (409, "replay-unavailable", "Replay unavailable"),
    errors.BodyTooLargeError: (413, "body-too-large", "Request body too large"),
    errors.UnsupportedMediaTypeError: (415, "unsupported-media-type", "Unsupported media type"),
    errors.InvalidRequestError: (422, "invalid-request", "Invalid request"),
    errors.IdempotencyMismatchError: (422, "idempotency-key-reused", "Idempotency-Key reused"),
    errors.CapReachedError: (429, "session-cap-reached", "Too many active sessions"),
    errors.UpstreamTimeoutError: (504, "upstream-timeout", "Upstream timeout"),
    errors.UpstreamError: (502, "upstream-error", "Upstream error"),
    errors.ConfigurationError: (503, "not-configured", "Broker not configured"),
    errors.DependencyUnavailableError: (503, "dependency-unavailable", "Service unavailable"),
}
_INTERNAL = (500, "internal-error", "Internal error")
PROBLEM_TYPE_BASE = "tag:avaturn-session-broker,2026:problem:"


def problem_for(exc: Exception) -> tuple[int, str, str]:
    """``(status, problem type slug, title)`` for an exception, looked up along its MRO;
    anything unexpected is a 500 ``internal-error``."""
    for cls in type(exc).__mro__:
        if cls in _PROBLEMS:
            return _PROBLEMS[cls]
    return _INTERNAL


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response[str]:
    """A JSON response with the security headers. Keys sorted: a replayed create (stored by
    Powertools with sorted keys) is byte-identical to the first answer."""
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps(body, sort_keys=True),
        headers={**_SECURITY_HEADERS, **(headers or {})},
    )


def no_content() -> Response[str]:
    """204 No Content with the security headers."""
    return Response(status_code=204, content_type=None, body="", headers=dict(_SECURITY_HEADERS))


def build_app() -> APIGatewayHttpResolver:
    """An API Gateway HTTP API (payload 2.0) resolver whose every failure, expected or not,
    answers RFC 9457 problem+json: ``{type, title, status, detail, request_id}``. A dependency
    that raises (``Depends``) is handled like the route raising the same error."""
    app = APIGatewayHttpResolver()

    def problem(exc: Exception) -> Response[str]:
        status, slug, title = problem_for(exc)
        detail = exc.detail if isinstance(exc, errors.BrokerError) else title
        if isinstance(exc, errors.UpstreamError):
            count_upstream_failure(exc.upstream)
        if status >= 500:
            logger.warning("request failed", extra={"status": status, "problem": slug})
        event = app.current_event
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + slug,
            "title": title,
            "status": status,
            "detail": detail,
            "request_id": event.request_context.request_id or app.lambda_context.aws_request_id,
        }
        headers = dict(_SECURITY_HEADERS)
        if isinstance(exc, errors.InvalidRequestError) and exc.errors:
            body["errors"] = exc.errors
        if isinstance(exc, errors.CapReachedError):
            headers["Retry-After"] = str(exc.retry_after)
        return Response(
            status_code=status, content_type="application/problem+json", body=json.dumps(body), headers=headers
        )

    @app.exception_handler(errors.BrokerError)
    def expected(exc: errors.BrokerError) -> Response[str]:
        return problem(exc)

    @app.not_found
    def not_found(exc: NotFoundError) -> Response[str]:
        return problem(exc)

    @app.exception_handler(Exception)
    def unexpected(exc: Exception) -> Response[str]:
        logger.exception("unhandled error")
        return problem(exc)

    return app


def deadline_of(context: LambdaContext) -> Deadline:
    """Time left for this invocation, less a second to answer, and never past API Gateway's
    30 s integration timeout (at least 0.5 s)."""
    left = context.get_remaining_time_in_millis() / 1000 - 1.0
    return Deadline.within(max(0.5, min(left, API_GATEWAY_BUDGET - 1.0)))


def caller_of(event: APIGatewayProxyEventV2, *, jwt_mode: bool) -> Caller:
    """JWT mode: the authorizer's verified ``sub``. Anonymous mode: the source IP, and the
    session token the caller presents to prove ownership."""
    token = event.headers.get("x-session-token") or None
    if jwt_mode:
        authorizer = event.request_context.authorizer
        claims = authorizer.jwt_claim if authorizer else None
        subject = (claims or {}).get("sub")
        if not isinstance(subject, str) or not subject:
            raise errors.UnauthenticatedError("a valid bearer token is required")
        return Caller(owner=f"sub:{subject}", session_token=token)
    return Caller(owner=f"ip:{event.request_context.http.source_ip}", session_token=token)


def idempotency_key_of(event: APIGatewayProxyEventV2) -> str | None:
    """The ``Idempotency-Key`` header, if any. Raises ``InvalidRequestError`` unless it is 1 to
    128 printable ASCII characters."""
    key = event.headers.get("idempotency-key")
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or not key.isascii() or not key.isprintable():
        raise errors.InvalidRequestError(
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters",
            [{"loc": "header:Idempotency-Key", "msg": "invalid"}],
        )
    return key


def parse_create_request(event: APIGatewayProxyEventV2) -> CreateSessionRequest:
    """The optional JSON body of POST /sessions, checked for size (``BodyTooLargeError``), media
    type (``UnsupportedMediaTypeError``), syntax (``MalformedBodyError``), then schema
    (``InvalidRequestError``)."""
    raw = _body_bytes(event)
    if len(raw) > MAX_BODY_BYTES:
        raise errors.BodyTooLargeError(f"the body must be at most {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        return CreateSessionRequest()
    media_type = (event.headers.get("content-type") or "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise errors.UnsupportedMediaTypeError("the body must be application/json")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise errors.MalformedBodyError("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise errors.InvalidRequestError("the body must be a JSON object", [{"loc": "body", "msg": "not an object"}])
    try:
        return CreateSessionRequest.model_validate(data)
    except ValidationError as exc:
        problems = [{"loc": ".".join(str(p) for p in e["loc"]) or "body", "msg": e["msg"]} for e in exc.errors()]
        raise errors.InvalidRequestError("the body does not match the schema", problems) from None


def _body_bytes(event: APIGatewayProxyEventV2) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise errors.MalformedBodyError("the body is not valid base64") from None
    return body.encode("utf-8", errors="surrogatepass")
