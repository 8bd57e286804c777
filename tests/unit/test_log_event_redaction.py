"""Turning on Powertools' event logging (``POWERTOOLS_LOGGER_LOG_EVENT``) or its development mode
(``POWERTOOLS_DEV``, which makes the event handler print every event) never writes a credential to
the logs: not ``X-Session-Token``, ``Authorization`` or cookies, and not the token of a 201 body."""

from __future__ import annotations

import logging
import uuid

import pytest

from broker.observability import REDACTED
from tests.unit.support import HANDLERS, Api, body_of, http_event, load_handler

BEARER = "eyJhbGciOiJSUzI1NiJ9.CANARY-JWT.c2lnbmF0dXJl"
COOKIE = "sid=CANARY-COOKIE-4711"
KEY = str(uuid.uuid4())


@pytest.mark.parametrize(
    "env",
    [
        {"POWERTOOLS_LOGGER_LOG_EVENT": "true"},
        {"POWERTOOLS_DEV": "true"},
        {
            "POWERTOOLS_LOGGER_LOG_EVENT": "1",
            "POWERTOOLS_DEV": "1",
            "POWERTOOLS_DEBUG": "1",
            "POWERTOOLS_LOG_LEVEL": "DEBUG",
        },
    ],
)
def test_logging_events_never_logs_a_credential(
    monkeypatch: pytest.MonkeyPatch, broker, capsys, caplog, env: dict[str, str]
) -> None:
    # Given event logging switched on the way an operator would (environment, read at cold start)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    caplog.set_level(logging.DEBUG)
    api = Api(broker, {name: load_handler(name) for name in HANDLERS})
    credentials = {"authorization": f"Bearer {BEARER}", "cookie": COOKIE}

    # When a session is created, read and ended through the real handlers, with every kind of credential
    create = http_event(
        "create_session", body="{}", headers={"content-type": "application/json", "idempotency-key": KEY, **credentials}
    )
    create["cookies"] = [COOKIE]
    created = body_of(api.call("create_session", create))
    replayed = body_of(api.call("create_session", create))
    assert replayed == created
    token = created["token"]
    for function in ("get_session", "terminate_session"):
        event = http_event(
            function, headers={"x-session-token": token, **credentials}, session_id=created["session_id"]
        )
        event["cookies"] = [COOKIE]
        assert api.call(function, event)["statusCode"] in (200, 204)

    # Then the events were logged, with every credential and the 201 body's token left out
    output = capsys.readouterr()
    logs = output.out + output.err + caplog.text
    if "POWERTOOLS_LOGGER_LOG_EVENT" in env:  # the events were logged, redacted
        assert "DELETE /sessions/{session_id}" in logs
        assert REDACTED in logs
    for secret in (token, BEARER, "CANARY-COOKIE-4711"):
        assert secret not in logs
