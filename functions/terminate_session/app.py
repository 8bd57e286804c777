"""DELETE /sessions/{session_id}: end the caller's own session (idempotent)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from broker import factory
from broker.api import build_app, caller_of, deadline_of, no_content
from broker.observability import logger, metrics, tracer
from broker.service import SessionTerminator

app = build_app()


@app.delete("/sessions/<session_id>")
def terminate_session(session_id: str) -> Response[str]:
    terminator: SessionTerminator = app.context.get("terminator") or factory.terminator()
    caller = caller_of(app.current_event, jwt_mode=terminator.settings.jwt_mode)
    terminator.terminate(caller, session_id, deadline_of(app.lambda_context))
    return no_content()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, terminator: SessionTerminator | None = None
) -> dict[str, Any]:
    app.append_context(terminator=terminator)
    return app.resolve(event, context)
