"""The end of a session: DELETE /sessions/{session_id} (the owner ends it),
POST /sessions/{session_id}/end (the page's beacon on pagehide or an SDK error: a CORS simple
request, the token in its text/plain body) and POST /sessions/{session_id}/keepalive (the page
renews the session's lease)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from broker import factory
from broker.api import build_app, caller_of, deadline_of, json_response, no_content, parse_end_request
from broker.models import Caller, EndReason, iso
from broker.observability import instrumented
from broker.usecases.keepalive import LeaseKeeper
from broker.usecases.terminate import SessionTerminator

app = build_app()


@app.delete("/sessions/<session_id>")
def terminate_session(
    session_id: str, terminator: Annotated[SessionTerminator, Depends(factory.terminator)]
) -> Response[str]:
    caller = caller_of(app.current_event, terminator.settings)
    terminator.terminate(caller, session_id, deadline_of(app.lambda_context))
    return no_content()


@app.post("/sessions/<session_id>/end")
def end_session(
    session_id: str, terminator: Annotated[SessionTerminator, Depends(factory.terminator)]
) -> Response[str]:
    request = parse_end_request(app.current_event)
    client_error = request.reason == "client_error"
    terminator.terminate(
        Caller(owner="", session_token=request.token),
        session_id,
        deadline_of(app.lambda_context),
        reason=EndReason.CLIENT_ERROR if client_error else EndReason.OWNER,
        client_error=request.error if client_error else None,
        by_token=True,
    )
    return no_content()


@app.post("/sessions/<session_id>/keepalive")
def keepalive(session_id: str, keeper: Annotated[LeaseKeeper, Depends(factory.lease_keeper)]) -> Response[str]:
    caller = caller_of(app.current_event, keeper.settings)
    until = keeper.keepalive(caller, session_id, deadline_of(app.lambda_context))
    return json_response(200, {"lease_expires_at": iso(until)})


@instrumented(correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
