"""DELETE /sessions/{session_id}: end the caller's own session (idempotent)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from broker import factory
from broker.api import build_app, caller_of, deadline_of, no_content
from broker.observability import instrumented
from broker.usecases.terminate import SessionTerminator

app = build_app()


@app.delete("/sessions/<session_id>")
def terminate_session(
    session_id: str, terminator: Annotated[SessionTerminator, Depends(factory.terminator)]
) -> Response[str]:
    caller = caller_of(app.current_event, terminator.settings)
    terminator.terminate(caller, session_id, deadline_of(app.lambda_context))
    return no_content()


@instrumented(correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
