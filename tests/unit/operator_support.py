"""Helpers of the operator plane's unit tests: calls of the real admin handler with API Gateway v2
events (the IAM authorizer's context included), and a ``requests`` transport adapter that plays
API Gateway for the command-line tool, so the CLI runs end to end in-process, with no socket."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from broker import factory
from tests.unit.support import Broker, FakeContext, load_event

ROUTES = (
    ("GET", re.compile(r"^/admin/sessions$"), "GET /admin/sessions"),
    ("POST", re.compile(r"^/admin/sessions/(?P<session_id>[^/]+)/end$"), "POST /admin/sessions/{session_id}/end"),
    ("POST", re.compile(r"^/admin/end-sessions$"), "POST /admin/end-sessions"),
    ("GET", re.compile(r"^/admin/creates$"), "GET /admin/creates"),
    ("PUT", re.compile(r"^/admin/creates$"), "PUT /admin/creates"),
    ("GET", re.compile(r"^/admin/usage$"), "GET /admin/usage"),
)
OPERATOR_ARN = "arn:aws:sts::123456789012:assumed-role/BrokerOperator/jane"


def admin_event(
    method: str,
    path: str,
    *,
    query: dict[str, str] | None = None,
    body: str | None = None,
    headers: dict[str, str] | None = None,
    iam: bool = True,
) -> dict[str, Any]:
    """``events/admin_end_sessions.json`` retargeted to ``method path`` (a route of the admin
    function, or any path: an unknown one gets routeKey ``$default``)."""
    event = copy.deepcopy(load_event("admin_end_sessions"))
    route, params = "$default", {}
    for verb, pattern, key in ROUTES:
        match = pattern.match(path)
        if verb == method and match:
            route, params = key, match.groupdict()
    event["routeKey"] = event["requestContext"]["routeKey"] = route
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["headers"] = {**event["headers"], **{k.lower(): v for k, v in (headers or {}).items()}}
    event["body"] = body
    if body is None:
        event["headers"].pop("content-length", None)
    if params:
        event["pathParameters"] = params
    if query:
        event["queryStringParameters"] = query
        event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in query.items())
    if not iam:
        del event["requestContext"]["authorizer"]
    return event


@dataclass
class Admin:
    """Calls the real admin handler (``functions/admin/app.py``) with this broker's use cases."""

    broker: Broker
    module: ModuleType

    def call(self, event: dict[str, Any], remaining_ms: int = 25_000) -> dict[str, Any]:
        self.module.app.dependency_overrides = {
            factory.settings: lambda: self.broker.settings,
            factory.lister: lambda: self.broker.lister,
            factory.admin_ender: lambda: self.broker.admin_ender,
            factory.usage_reporter: lambda: self.broker.usage_reporter,
            factory.kill_switch: lambda: self.broker.kill_switch,
        }
        response: dict[str, Any] = self.module.lambda_handler(event, FakeContext(remaining_ms=remaining_ms))
        return response

    def request(
        self, method: str, path: str, body: Any = None, *, query: dict[str, str] | None = None, **kw: Any
    ) -> tuple[int, Any]:
        """``(status, JSON body)`` of one request."""
        text = json.dumps(body) if body is not None else None
        response = self.call(admin_event(method, path, query=query, body=text, **kw))
        return response["statusCode"], json.loads(response["body"]) if response.get("body") else None


@dataclass
class ApiGatewayAdapter(BaseAdapter):
    """A ``requests`` transport that answers like API Gateway with the admin function behind it:
    it refuses an unsigned request (403, as IAM authorization does) and hands a signed one to the
    handler with the IAM context. ``seen`` keeps each request's method, URL and headers."""

    admin: Admin
    seen: list[requests.PreparedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.seen.append(request)
        url = urlsplit(request.url or "")
        auth = str(request.headers.get("authorization", ""))
        if not auth.startswith("AWS4-HMAC-SHA256 Credential="):
            return _response(request, 403, {"message": "Forbidden"})
        body = request.body.decode() if isinstance(request.body, bytes) else request.body
        event = admin_event(
            request.method or "GET",
            url.path,
            query=dict(parse_qsl(url.query)) or None,
            body=body,
            headers=dict(request.headers),
        )
        answer = self.admin.call(event)
        return _response(request, answer["statusCode"], answer.get("body") or "", answer.get("headers"))

    def close(self) -> None:
        pass


def _response(
    request: requests.PreparedRequest, status: int, body: Any, headers: dict[str, str] | None = None
) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = (body if isinstance(body, str) else json.dumps(body)).encode()
    response.headers = CaseInsensitiveDict(headers or {"content-type": "application/json"})
    response.request = request
    response.url = request.url or ""
    return response
