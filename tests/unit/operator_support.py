"""Helpers of the operator plane's unit tests: calls of the real admin handler with API Gateway v2
events (the IAM authorizer's context included), and a ``requests`` transport adapter that plays
API Gateway for the command-line tool, so the CLI runs end to end in-process, with no socket."""

from __future__ import annotations

import contextlib
import copy
import hmac
import io
import json
import re
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
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


AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<day>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})"
)


def sigv4_valid(request: requests.PreparedRequest, credentials: Credentials, region: str) -> bool:
    """True when ``request`` carries a SigV4 signature of ``credentials`` for ``execute-api`` in
    ``region`` that matches the request as it arrived (method, path, query, the signed headers,
    the body): what API Gateway checks before IAM authorization."""
    match = AUTHORIZATION.fullmatch(str(request.headers.get("authorization", "")))
    if match is None or (match["key"], match["region"], match["service"]) != (
        credentials.access_key,
        region,
        "execute-api",
    ):
        return False
    names = match["signed"].split(";")
    if "host" not in names or "x-amz-date" not in names:
        return False
    url = urlsplit(request.url or "")
    headers = {name: str(request.headers.get(name, url.netloc if name == "host" else "")) for name in names}
    signed = AWSRequest(method=request.method, url=request.url, data=request.body, headers=headers)
    signed.context["timestamp"] = headers["x-amz-date"]
    signer = SigV4Auth(credentials, "execute-api", region)
    if signer.signed_headers(signer.headers_to_sign(signed)) != match["signed"]:
        return False
    expected = signer.signature(signer.string_to_sign(signed, signer.canonical_request(signed)), signed)
    return hmac.compare_digest(expected, match["signature"])


@dataclass
class ApiGatewayAdapter(BaseAdapter):
    """A ``requests`` transport that answers like API Gateway with the admin function behind it:
    a request without a valid SigV4 signature of ``credentials`` is refused (403, as IAM
    authorization does); a signed one goes to the handler with the IAM context. ``seen`` keeps
    each request as it arrived."""

    admin: Admin
    credentials: Credentials = field(default_factory=lambda: Credentials("testing", "testing"))
    region: str = "us-east-1"
    seen: list[requests.PreparedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.seen.append(request)
        if not sigv4_valid(request, self.credentials, self.region):
            return _response(request, 403, {"message": "Forbidden"})
        url = urlsplit(request.url or "")
        body = request.body.decode() if isinstance(request.body, bytes) else request.body
        event = admin_event(
            request.method or "GET",
            url.path,
            query=dict(parse_qsl(url.query)) or None,
            body=body,
            headers={k: str(v) for k, v in request.headers.items()},
        )
        with contextlib.redirect_stdout(io.StringIO()):  # the function's logs and metrics are its own
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
