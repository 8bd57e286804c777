"""Property tests (hypothesis) for the request models and the problem+json mapping."""

from __future__ import annotations

import contextlib
import json
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker import errors
from broker.api import MAX_BODY_BYTES, PROBLEM_TYPE_BASE, build_app, parse_create_request, problem_for
from broker.models import CreateSessionRequest
from tests.unit.support import FakeContext, http_event

ENGINES = ["openai-realtime", "cartesia", "external"]
AVATAR = st.text(alphabet=string.ascii_letters + string.digits + "._:-", min_size=1, max_size=128)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)


def event_with(body: bytes | str, content_type: str = "application/json") -> dict:
    raw = body.decode("utf-8", errors="surrogateescape") if isinstance(body, bytes) else body
    return http_event("create_session", body=raw, headers={"content-type": content_type})


def parse(event: dict) -> CreateSessionRequest:
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

    return parse_create_request(APIGatewayProxyEventV2(event))


@given(engine=st.sampled_from([None, *ENGINES]), avatar=st.none() | AVATAR)
def test_every_valid_body_parses_to_what_was_sent(engine: str | None, avatar: str | None) -> None:
    body = {k: v for k, v in {"engine": engine, "avatar_id": avatar}.items() if v is not None}
    request = parse(event_with(json.dumps(body)))
    assert (request.engine, request.avatar_id) == (engine, avatar)


@given(
    extra=st.dictionaries(
        st.text(min_size=1, max_size=12).filter(lambda k: k not in ("engine", "avatar_id")),
        JSON_VALUES,
        min_size=1,
        max_size=3,
    )
)
def test_any_unknown_field_is_rejected(extra: dict) -> None:
    with pytest.raises(errors.InvalidRequestError) as caught:
        parse(event_with(json.dumps({"engine": "cartesia", **extra})))
    assert {e["loc"] for e in caught.value.errors} & set(extra)


@settings(max_examples=300)
@given(
    body=st.binary(max_size=MAX_BODY_BYTES + 64) | st.text(max_size=600).map(str.encode),
    content_type=st.sampled_from(
        ["application/json", "text/plain", "", "application/problem+json", "application/json; charset=utf-8"]
    ),
)
def test_arbitrary_bytes_never_escape_as_anything_but_a_domain_error(body: bytes, content_type: str) -> None:
    try:
        parse(event_with(body, content_type))
    except errors.BrokerError as exc:
        status, _, _ = problem_for(exc)
        assert 400 <= status < 500


@given(value=JSON_VALUES)
def test_any_json_value_is_a_request_or_a_422(value: object) -> None:
    with contextlib.suppress(errors.InvalidRequestError):
        parse(event_with(json.dumps(value)))


BROKER_ERRORS = [cls for cls in vars(errors).values() if isinstance(cls, type) and issubclass(cls, errors.BrokerError)]


def instantiate(cls: type[errors.BrokerError], detail: str) -> errors.BrokerError:
    if issubclass(cls, errors.UpstreamError):
        return cls("avaturn", detail)
    if issubclass(cls, errors.LimitError):
        return cls(detail, limit=2, used=2, retry_after=60)
    return cls(detail)


@given(cls=st.sampled_from(BROKER_ERRORS), detail=st.text(max_size=80))
def test_every_domain_error_becomes_a_complete_problem(cls: type[errors.BrokerError], detail: str) -> None:
    app = build_app()
    exc = instantiate(cls, detail)

    @app.post("/sessions")
    def boom() -> None:
        raise exc

    response = app.resolve(http_event("create_session", body=None), FakeContext())
    body = json.loads(response["body"])
    status, slug, title = problem_for(exc)
    assert response["statusCode"] == body["status"] == status
    assert response["headers"]["Content-Type"] == "application/problem+json"
    assert body["type"] == PROBLEM_TYPE_BASE + slug
    assert body["title"] == title
    assert body["detail"] == detail
    assert body["request_id"]
    limited = isinstance(exc, errors.LimitError)
    waits = isinstance(exc, errors.UpstreamUnavailableError) and exc.retry_after is not None
    assert ("Retry-After" in response["headers"]) == (limited or waits)
    assert ({"limit", "used"} <= body.keys()) == limited
    if cls is not errors.BrokerError:
        assert status != 500, f"{cls.__name__} has no mapping"


@given(message=st.text(max_size=80))
def test_an_unexpected_exception_is_a_bare_500_problem(message: str) -> None:
    app = build_app()

    @app.post("/sessions")
    def boom() -> None:
        raise RuntimeError(message)

    response = app.resolve(http_event("create_session", body=None), FakeContext())
    body = json.loads(response["body"])
    assert response["statusCode"] == 500
    assert body["detail"] == "Internal error"  # the exception's text never leaves
    assert "Traceback" not in response["body"]
