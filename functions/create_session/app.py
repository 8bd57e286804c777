"""POST /sessions: mint the engine credential, create the Avaturn session, return its token."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

# The openai SDK (this function's largest dependency; the others never import it) loads at init,
# not inside the first request: init is the phase that provisioned concurrency, SnapStart and
# Lambda's pre-initialisation take off the request path.
import broker.engines  # noqa: F401
from broker import factory
from broker.api import build_app, caller_of, deadline_of, idempotency_key_of, json_response, parse_create_request
from broker.observability import instrumented
from broker.usecases.create import SessionCreator

app = build_app()


@app.post("/sessions")
def create_session(creator: Annotated[SessionCreator, Depends(factory.creator)]) -> Response[str]:
    event = app.current_event
    created = creator.create(
        caller_of(event, creator.settings),
        parse_create_request(event),
        deadline_of(app.lambda_context),
        idempotency_key_of(event, creator.settings),
    )
    return json_response(201, created.model_dump())


@instrumented(correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
