"""The broker's admin API as the CLI calls it: SigV4-signed HTTPS with the caller's AWS
credentials (botocore's ``SigV4Auth``, service ``execute-api``), the API found in a CloudFormation
stack's outputs or given as a URL, and every failure turned into a ``CliError`` with its exit code."""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import boto3
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError, NoRegionError

from avaturn_broker_cli import __version__

API_URL_OUTPUT = "ApiUrl"
"""The stack output that holds the broker's API URL."""
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_EXECUTE_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")


class Exit(enum.IntEnum):
    """The CLI's exit codes (2 is bad usage, as for every command-line tool)."""

    OK = 0
    FAILED = 1  # the API refused the request or failed; a bulk end left sessions it could not end
    USAGE = 2
    CONFIGURATION = 3  # no credentials or region, unknown profile, no such stack, no API URL
    FORBIDDEN = 4  # 401/403: the credentials may not call the admin routes (or the signature is wrong)
    UNREACHABLE = 5  # the API (or CloudFormation) could not be reached


class CliError(Exception):
    """A failure the CLI explains in one line and ends with ``code``."""

    def __init__(self, message: str, code: Exit) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Target:
    """Where the broker is: a stack name (its ``ApiUrl`` output) or the API's URL; the AWS profile
    and region to use (None: boto3's defaults)."""

    stack_name: str | None = None
    api_url: str | None = None
    profile: str | None = None
    region: str | None = None


class AdminApi:
    """Calls ``/admin/`` routes of the broker at ``base_url``, each request signed with
    ``credentials`` for ``region`` (unsigned when None: only the local stack takes that)."""

    def __init__(
        self,
        base_url: str,
        credentials: ReadOnlyCredentials | None,
        region: str,
        http: requests.Session,
        timeout: float = 35.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._credentials = credentials
        self._region = region
        self._http = http
        self._timeout = timeout

    def call(self, method: str, path: str, *, query: dict[str, Any] | None = None, body: Any = None) -> Any:
        """The JSON answer of one request. Raises ``CliError``: ``FORBIDDEN`` on 401/403,
        ``FAILED`` on any other error (with the problem's title and detail), ``UNREACHABLE``."""
        params = {k: str(v) for k, v in (query or {}).items() if v is not None}
        data = json.dumps(body).encode() if body is not None else None
        headers = {"accept": "application/json", "user-agent": f"avaturn-broker/{__version__}"}
        if data is not None:
            headers["content-type"] = "application/json"
        request = AWSRequest(method=method, url=self.base_url + path, params=params, data=data, headers=headers)
        if self._credentials is not None:
            SigV4Auth(self._credentials, "execute-api", self._region).add_auth(request)
        prepared = request.prepare()  # the URL exactly as signed (botocore's encoding of the query)
        try:
            response = self._http.request(
                method, prepared.url, data=data, headers=dict(prepared.headers.items()), timeout=self._timeout
            )
        except requests.RequestException as exc:
            raise CliError(f"cannot reach {self.base_url}: {type(exc).__name__}", Exit.UNREACHABLE) from None
        if response.status_code in (401, 403):
            raise CliError(_forbidden(response), Exit.FORBIDDEN)
        if response.status_code >= 400:
            raise CliError(_problem(response), Exit.FAILED)
        return response.json() if response.content else None


def connect(target: Target, http: requests.Session, timeout: float = 35.0) -> AdminApi:
    """An ``AdminApi`` for ``target``, signing with the credentials boto3 finds for its profile.

    Raises ``CliError``: ``CONFIGURATION`` without a stack name or URL, without credentials (except
    for a loopback URL: the local stack does not check signatures), for an unknown profile or stack,
    a stack without an ``ApiUrl`` output; ``FORBIDDEN`` when CloudFormation refuses; ``UNREACHABLE``.
    """
    try:
        session = boto3.Session(profile_name=target.profile, region_name=target.region)
        if target.api_url:
            url = target.api_url
        elif target.stack_name:
            url = stack_api_url(session, target.stack_name)
        else:
            raise CliError(
                "say which broker: --stack-name NAME (its ApiUrl output) or --api-url URL "
                "(or AVATURN_BROKER_STACK / AVATURN_BROKER_API_URL)",
                Exit.CONFIGURATION,
            )
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CliError(f"not an http(s) URL: {url}", Exit.CONFIGURATION)
        found = session.get_credentials()
        credentials = found.get_frozen_credentials() if found is not None else None
    except BotoCoreError as exc:
        raise CliError(f"AWS configuration: {exc}", Exit.CONFIGURATION) from None
    if credentials is None and parts.hostname not in LOOPBACK:
        raise CliError(
            "no AWS credentials found: the admin routes need requests signed with them "
            "(aws configure, AWS_PROFILE / --profile, or the AWS_ACCESS_KEY_ID variables)",
            Exit.CONFIGURATION,
        )
    host = _EXECUTE_API_HOST.match(parts.hostname)
    region = host.group(1) if host else session.region_name or "us-east-1"
    return AdminApi(url, credentials, region, http, timeout)


def stack_api_url(session: boto3.Session, stack_name: str) -> str:
    """The ``ApiUrl`` output of ``stack_name`` (CloudFormation DescribeStacks). Raises ``CliError``."""
    region = session.region_name or "(no region)"
    try:
        stacks = session.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    except (NoCredentialsError, NoRegionError) as exc:
        raise CliError(f"cannot look up stack {stack_name}: {exc}", Exit.CONFIGURATION) from None
    except EndpointConnectionError:
        raise CliError(f"cannot reach CloudFormation in {region}", Exit.UNREACHABLE) from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if "does not exist" in str(error.get("Message", "")):
            raise CliError(f"no stack named {stack_name} in {region}", Exit.CONFIGURATION) from None
        code = Exit.FORBIDDEN if "AccessDenied" in str(error.get("Code", "")) else Exit.FAILED
        raise CliError(f"CloudFormation: {error.get('Code')}: {error.get('Message')}", code) from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    if API_URL_OUTPUT not in outputs:
        raise CliError(
            f"stack {stack_name} has no {API_URL_OUTPUT} output: is it an Avaturn session broker?", Exit.CONFIGURATION
        )
    return str(outputs[API_URL_OUTPUT])


def _forbidden(response: requests.Response) -> str:
    said = _json(response)
    message = said.get("message") or said.get("detail") or response.reason
    return (
        f"not allowed ({response.status_code} {message}): the credentials need execute-api:Invoke on the "
        "broker's /admin/ routes (the stack's OperatorPolicyArn output), in the API's own account and region"
    )


def _problem(response: requests.Response) -> str:
    said = _json(response)
    title = said.get("title") or response.reason
    detail = said.get("detail")
    return f"{response.status_code} {title}" + (f": {detail}" if detail and detail != title else "")


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        parsed = response.json()
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
