"""GET /sessions/{session_id}: the state of the caller's own session."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from broker import factory
from broker.api import build_app, caller_of, json_response
from broker.observability import logger, metrics, tracer
from broker.service import SessionReader

app = build_app()


@app.get("/sessions/<session_id>")
def get_session(session_id: str) -> Response[str]:
    reader: SessionReader = app.context.get("reader") or factory.reader()
    view = reader.get(caller_of(app.current_event, jwt_mode=reader.settings.jwt_mode), session_id)
    return json_response(200, view.model_dump(mode="json", exclude_none=True))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, reader: SessionReader | None = None
) -> dict[str, Any]:
    app.append_context(reader=reader)
    return app.resolve(event, context)
