"""The HTTP edge shared by the API functions: request parsing, caller identity, and the one
place that maps domain errors to RFC 9457 problem+json responses."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from typing import Any, TypeVar

import http_sf
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ValidationError

from broker import errors
from broker.config import Settings
from broker.models import Caller, CreateSessionRequest, EndSessionRequest
from broker.observability import count_rejection, count_upstream_failure, logger
from broker.timing import Deadline

BodyT = TypeVar("BodyT", bound=BaseModel)
QueryT = TypeVar("QueryT", bound=BaseModel)
MAX_BODY_BYTES = 4096
MAX_END_BODY_BYTES = 1024
MAX_IDEMPOTENCY_KEY = 128
RANDOM_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_-]{22,}={0,2}")
"""An Idempotency-Key with at least 122 bits of randomness, as anonymous mode requires: at least 22
base64url characters (RFC 4648, section 5; 132 bits when random), which a UUIDv4 in any case is too."""
OWS = " \t"
"""Optional whitespace (RFC 9110, section 5.6.3): around a field value, never part of it (section 5.5)."""
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
    errors.SessionEndedError: (409, "session-ended", "Session ended"),
    errors.LimitError: (429, "limit-reached", "Limit reached"),
    errors.CapReachedError: (429, "session-cap-reached", "Too many active sessions"),
    errors.BudgetExhaustedError: (429, "budget-exhausted", "Daily session budget exhausted"),
    errors.RateLimitedError: (429, "rate-limited", "Too many creates"),
    errors.AtCapacityError: (503, "broker-at-capacity", "Broker at capacity"),
    errors.CreatesPausedError: (503, "creates-paused", "Creates paused"),
    errors.UpstreamTimeoutError: (504, "upstream-timeout", "Upstream timeout"),
    errors.UpstreamUnavailableError: (503, "upstream-unavailable", "Upstream unavailable"),
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
    # debug=False whatever POWERTOOLS_DEV says: its debug mode prints every raw event (credentials
    # in headers) and answers a stack trace for an unhandled error.
    app = APIGatewayHttpResolver(debug=False)

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
        if isinstance(exc, errors.LimitError | errors.CreatesPausedError):
            count_rejection(slug)
        if isinstance(exc, errors.LimitError):
            headers["Retry-After"] = str(exc.retry_after)
            body["limit"], body["used"] = exc.limit, exc.used
        if isinstance(exc, errors.UpstreamUnavailableError) and exc.retry_after is not None:
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


def header(event: APIGatewayProxyEventV2, name: str) -> str | None:
    """The value of request header ``name`` without the optional whitespace around it (RFC 9110,
    section 5.5), or None when the request has none."""
    value = event.headers.get(name)
    return None if value is None else value.strip(OWS)


def caller_of(event: APIGatewayProxyEventV2, settings: Settings) -> Caller:
    """JWT mode: the authorizer's verified ``sub``. Anonymous mode: the source address's owner
    (``anonymous_owner``), and the session token the caller presents to prove ownership.

    Raises ``UnauthenticatedError`` in JWT mode without a subject, or with one that is not a
    valid Unicode string.
    """
    token = header(event, "x-session-token") or None
    if settings.jwt_mode:
        authorizer = event.request_context.authorizer
        claims = authorizer.jwt_claim if authorizer else None
        subject = (claims or {}).get("sub")
        if not isinstance(subject, str) or not subject or not _is_unicode(subject):
            raise errors.UnauthenticatedError("a valid bearer token is required")
        return Caller(owner=f"sub:{subject}", session_token=token)
    owner = anonymous_owner(event.request_context.http.source_ip, settings.anonymous_ipv6_prefix)
    return Caller(owner=owner, session_token=token)


def anonymous_owner(source_ip: str, ipv6_prefix: int) -> str:
    """The owner of an anonymous caller: ``ip:<IPv4 address>``, or ``ip:<IPv6 network>`` of
    ``ipv6_prefix`` bits (``ip:2001:db8:1:2::/64``): a subscriber's devices pick addresses in their
    network freely, so one address would be no limit at all. An IPv4-mapped IPv6 address is its IPv4
    address. Addresses are written canonically (RFC 5952), so one address is one owner however the
    request spelt it."""
    try:
        address = ipaddress.ip_address(source_ip)
    except ValueError:  # API Gateway always sends an address; keep anything else distinct
        return f"ip:{source_ip}"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is None:
            return f"ip:{ipaddress.IPv6Network((address, ipv6_prefix), strict=False)}"
        address = address.ipv4_mapped
    return f"ip:{address}"


def idempotency_key_of(event: APIGatewayProxyEventV2, settings: Settings) -> str | None:
    """The ``Idempotency-Key`` header, if any: an sf-string (RFC 8941, section 3.3.3, as the IETF
    httpapi draft defines the field; unquoted, parameters ignored) or the bare legacy form.

    Raises ``InvalidRequestError`` unless the key is 1 to 128 printable ASCII characters, and in
    anonymous mode unless it is random enough (``RANDOM_IDEMPOTENCY_KEY``): there everyone behind
    one address is one owner, and the same key from a neighbour would replay the first token.
    """
    value = header(event, "idempotency-key")
    if value is None:
        return None
    key = _unquoted(value)
    if key is None or not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise errors.InvalidRequestError(
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters, "
            "bare or as a quoted string (RFC 8941)",
            [{"loc": "header:Idempotency-Key", "msg": "invalid"}],
        )
    if not settings.jwt_mode and not RANDOM_IDEMPOTENCY_KEY.fullmatch(key):
        raise errors.InvalidRequestError(
            "without sign-in, an Idempotency-Key must be a UUIDv4 or at least 22 base64url characters "
            "(at least 122 random bits)",
            [{"loc": "header:Idempotency-Key", "msg": "not random enough"}],
        )
    return key


def _unquoted(value: str) -> str | None:
    """The key a field value names: an sf-string's content, or the bare value as it is; None when
    the value is not ASCII or not a valid sf-string."""
    if not value.isascii():
        return None
    if not value.startswith('"'):
        return value
    try:
        item = http_sf.parse(value.encode("ascii"), tltype="item")  # (bare item, parameters)
    except http_sf.StructuredFieldError:
        return None
    return item[0] if isinstance(item, tuple) and isinstance(item[0], str) else None


def _is_unicode(text: str) -> bool:
    """False for a string holding lone surrogates (JSON can carry them as escapes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_create_request(event: APIGatewayProxyEventV2) -> CreateSessionRequest:
    """The optional JSON body of POST /sessions (at most ``MAX_BODY_BYTES``); errors as in
    ``parse_json_body``."""
    return parse_json_body(event, CreateSessionRequest, MAX_BODY_BYTES, optional=True)


def parse_end_request(event: APIGatewayProxyEventV2) -> EndSessionRequest:
    """The body of POST /sessions/{id}/end: JSON sent as ``text/plain`` (what
    ``navigator.sendBeacon`` sends with a string, a CORS simple request) or as JSON, at most
    ``MAX_END_BODY_BYTES``; errors as in ``parse_json_body``."""
    return parse_json_body(event, EndSessionRequest, MAX_END_BODY_BYTES, text_plain=True)


def parse_json_body(
    event: APIGatewayProxyEventV2,
    model: type[BodyT],
    max_bytes: int,
    *,
    optional: bool = False,
    text_plain: bool = False,
) -> BodyT:
    """A JSON object body validated as ``model``, checked for size (``BodyTooLargeError``),
    media type (``UnsupportedMediaTypeError``; ``text/plain`` too when ``text_plain``), syntax
    (``MalformedBodyError``), then schema (``InvalidRequestError``). An empty body is the
    model's defaults when ``optional``, else a 422."""
    raw = _body_bytes(event)
    if len(raw) > max_bytes:
        raise errors.BodyTooLargeError(f"the body must be at most {max_bytes} bytes")
    if not raw.strip():
        if optional:
            return model()
        raise errors.InvalidRequestError("a JSON body is required", [{"loc": "body", "msg": "missing"}])
    media_type = (header(event, "content-type") or "").partition(";")[0].strip(OWS).lower()
    is_json = media_type == "application/json" or media_type.endswith("+json")
    if not is_json and not (text_plain and media_type in ("text/plain", "")):
        raise errors.UnsupportedMediaTypeError(
            "the body must be application/json" + (" or text/plain" if text_plain else "")
        )
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise errors.MalformedBodyError("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise errors.InvalidRequestError("the body must be a JSON object", [{"loc": "body", "msg": "not an object"}])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [{"loc": ".".join(str(p) for p in e["loc"]) or "body", "msg": e["msg"]} for e in exc.errors()]
        raise errors.InvalidRequestError("the body does not match the schema", problems) from None


def parse_query(event: APIGatewayProxyEventV2, model: type[QueryT]) -> QueryT:
    """The query string parameters validated as ``model``. Raises ``InvalidRequestError`` naming
    each parameter that is unknown or invalid (``loc``: ``query:<name>``)."""
    try:
        return model.model_validate(dict(event.query_string_parameters or {}))
    except ValidationError as exc:
        problems = [{"loc": "query:" + ".".join(str(p) for p in e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        raise errors.InvalidRequestError("the query does not match the schema", problems) from None


def operator_of(event: APIGatewayProxyEventV2, settings: Settings) -> str:
    """Who signed an operator's request: the ARN of the IAM principal API Gateway authorized
    (for the audit log).

    Raises ``UnauthenticatedError`` when API Gateway authorized no IAM principal and
    ``admin_require_iam`` is on (a route that lost its IAM authorization must not serve anyone);
    with it off (``sam local``), such a caller is ``"unsigned"``.
    """
    authorizer = event.request_context.authorizer
    principal = (authorizer.iam.user_arn or authorizer.iam.caller_id) if authorizer else ""
    if principal:
        return principal
    if settings.admin_require_iam:
        raise errors.UnauthenticatedError("operator routes need a request signed with AWS credentials (SigV4)")
    return "unsigned"


def list_status_of(event: APIGatewayProxyEventV2) -> str:
    """The ``status`` query parameter of GET /sessions: only ``active`` (open sessions) is
    listed. Raises ``InvalidRequestError`` otherwise."""
    status = (event.query_string_parameters or {}).get("status")
    if status != "active":
        raise errors.InvalidRequestError(
            "only status=active can be listed", [{"loc": "query:status", "msg": "must be 'active'"}]
        )
    return status


def _body_bytes(event: APIGatewayProxyEventV2) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise errors.MalformedBodyError("the body is not valid base64") from None
    return body.encode("utf-8", errors="surrogatepass")
