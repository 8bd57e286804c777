"""Fault specifications (validated input of ``POST /_control/faults``) and fault responses."""

import json
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

EndpointName = Literal[
    "openai.client_secrets",
    "cartesia.access_token",
    "avaturn.create",
    "avaturn.delete",
    "avaturn.sdk",
]


class _FaultBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoint: EndpointName
    #: How many matching requests the fault applies to; ``null`` = until cleared.
    count: int | None = Field(default=1, ge=1)
    #: ``before``: the request is not processed (no side effect). ``after``: the request is
    #: processed normally (a session is created, a secret issued...) and then the fault
    #: replaces, delays or drops the response.
    when: Literal["before", "after"] = "before"


class StatusFault(_FaultBase):
    kind: Literal["status"]
    status: int = Field(ge=400, le=599)
    #: ``Retry-After`` seconds; 429 defaults to 1, other codes send none unless set.
    retry_after: int | None = Field(default=None, ge=0)
    #: Replaces the plausible default body: a JSON value, or a string sent as is.
    body: Any = None
    content_type: str | None = None


class DelayFault(_FaultBase):
    kind: Literal["delay"]
    seconds: float = Field(ge=0, le=3600)


class MalformedJsonFault(_FaultBase):
    kind: Literal["malformed_json"]
    status: int = Field(default=200, ge=200, le=599)
    body: str | None = None


class WrongSchemaFault(_FaultBase):
    kind: Literal["wrong_schema"]
    status: int = Field(default=200, ge=200, le=599)
    body: Any = None


class DropFault(_FaultBase):
    kind: Literal["drop"]
    #: ``close``: orderly close (FIN) without a response; ``reset``: abortive close (RST).
    mode: Literal["close", "reset"] = "close"


FaultSpec = Annotated[
    StatusFault | DelayFault | MalformedJsonFault | WrongSchemaFault | DropFault,
    Field(discriminator="kind"),
]


class LatencySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoint: EndpointName
    #: Added before every matching request; 0 clears.
    seconds: float = Field(ge=0, le=600)


_REASONS: dict[int, str] = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    410: "Gone",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

_GATEWAY_STATUSES = frozenset({502, 504})


def reason_phrase(status: int) -> str:
    return _REASONS.get(status, "Error")


def _gateway_html(status: int) -> Response:
    """What a CDN / load balancer in front of a real API sends for 502/504."""
    title = f"{status} {reason_phrase(status)}"
    html = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )
    return Response(html, status_code=status, media_type="text/html")


def _openai_status_body(status: int) -> dict[str, Any]:
    if status == 429:
        message = "Rate limit reached for requests. Please try again in 1s."
        return {"error": {"message": message, "type": "requests", "param": None, "code": "rate_limit_exceeded"}}
    if status == 500:
        message = "The server had an error while processing your request. Sorry about that!"
        return {"error": {"message": message, "type": "server_error", "param": None, "code": None}}
    if status == 503:
        message = "The server is overloaded or not ready yet."
        return {"error": {"message": message, "type": "server_error", "param": None, "code": None}}
    kind = "server_error" if status >= 500 else "invalid_request_error"
    return {"error": {"message": reason_phrase(status), "type": kind, "param": None, "code": None}}


def cartesia_error(status: int, title: str, message: str, error_code: str | None, version: str | None) -> Response:
    """Cartesia's error format: structured JSON from version 2026-03-01, ``Title: Message`` text before."""
    if version is not None and version >= "2026-03-01":
        body = {"error_code": error_code, "title": title, "message": message, "request_id": str(uuid.uuid4())}
        return Response(json.dumps(body), status_code=status, media_type="application/json")
    return Response(f"{title}: {message}", status_code=status, media_type="text/plain")


def status_fault_response(upstream: str, fault: StatusFault, cartesia_version: str | None) -> Response:
    status = fault.status
    headers: dict[str, str] = {}
    retry_after = fault.retry_after if fault.retry_after is not None else (1 if status == 429 else None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if fault.body is not None:
        if isinstance(fault.body, str):
            response = Response(fault.body, status_code=status, media_type=fault.content_type or "text/plain")
        else:
            response = Response(
                json.dumps(fault.body), status_code=status, media_type=fault.content_type or "application/json"
            )
    elif status in _GATEWAY_STATUSES:
        response = _gateway_html(status)
    elif upstream == "openai":
        response = Response(json.dumps(_openai_status_body(status)), status_code=status, media_type="application/json")
    elif upstream == "cartesia":
        code = {429: "rate_limited", 500: "internal_error", 503: "service_unavailable"}.get(status)
        response = cartesia_error(status, reason_phrase(status), "Simulated failure.", code, cartesia_version)
    else:
        response = Response(
            json.dumps({"detail": reason_phrase(status)}), status_code=status, media_type="application/json"
        )
    response.headers.update(headers)
    return response


_MALFORMED_BODIES: dict[str, str] = {
    "openai.client_secrets": '{"value": "ek_malformed", "expires_at": 17',
    "cartesia.access_token": '{"token": "ctk_malf',
    "avaturn.create": '{"session_id": "malformed", "token": ',
    "avaturn.delete": '{"',
    "avaturn.sdk": '{"id": "malformed", "room_url": ',
}

_WRONG_SCHEMA_BODIES: dict[str, Any] = {
    # The shape of the older beta endpoint: plausible, and wrong.
    "openai.client_secrets": {"client_secret": {"value": "ek_wrong_schema", "expires_at": 0}},
    "cartesia.access_token": {"access_token": "wrong-schema"},
    "avaturn.create": {"id": "wrong-schema", "session_token": None},
    "avaturn.delete": {"status": "unknown"},
    "avaturn.sdk": {"session": None},
}


def malformed_json_response(endpoint: str, fault: MalformedJsonFault) -> Response:
    body = fault.body if fault.body is not None else _MALFORMED_BODIES[endpoint]
    return Response(body, status_code=fault.status, media_type="application/json")


def wrong_schema_response(endpoint: str, fault: WrongSchemaFault) -> Response:
    body = fault.body if fault.body is not None else _WRONG_SCHEMA_BODIES[endpoint]
    return Response(json.dumps(body), status_code=fault.status, media_type="application/json")
