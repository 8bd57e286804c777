"""POST /sessions: mint the engine credential, create the Avaturn session, return its token."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

# The openai SDK (this function's largest dependency; the others never import it) loads at init,
# not inside the first request: init is the phase that provisioned concurrency, SnapStart and
# Lambda's pre-initialisation take off the request path.
import broker.engines  # noqa: F401
from broker import factory
from broker.api import build_app, caller_of, deadline_of, idempotency_key_of, json_response, parse_create_request
from broker.observability import logger, metrics, tracer
from broker.service import SessionCreator

app = build_app()


@app.post("/sessions")
def create_session() -> Response[str]:
    creator: SessionCreator = app.context.get("creator") or factory.creator()
    event = app.current_event
    created = creator.create(
        caller_of(event, jwt_mode=creator.settings.jwt_mode),
        parse_create_request(event),
        deadline_of(app.lambda_context),
        idempotency_key_of(event),
    )
    return json_response(201, created)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, creator: SessionCreator | None = None
) -> dict[str, Any]:
    app.append_context(creator=creator)
    return app.resolve(event, context)
