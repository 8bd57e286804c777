"""GET /sessions/{session_id}: the state of the caller's own session; GET /sessions?status=active
(JWT mode): the caller's open sessions, so an app can end or resume them after a reload;
GET /profiles: the profiles a client may pick (public fields only)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from broker import factory
from broker.api import build_app, caller_of, deadline_of, json_response, list_status_of
from broker.observability import instrumented
from broker.usecases.profile_list import ProfileLister
from broker.usecases.read import SessionReader

app = build_app()


@app.get("/sessions/<session_id>")
def get_session(session_id: str, reader: Annotated[SessionReader, Depends(factory.reader)]) -> Response[str]:
    caller = caller_of(app.current_event, reader.settings)
    view = reader.get(caller, session_id, deadline_of(app.lambda_context))
    return json_response(200, view.model_dump(mode="json", exclude_none=True))


@app.get("/sessions")
def list_sessions(reader: Annotated[SessionReader, Depends(factory.reader)]) -> Response[str]:
    list_status_of(app.current_event)
    caller = caller_of(app.current_event, reader.settings)
    views = reader.open_sessions(caller, deadline_of(app.lambda_context))
    return json_response(200, {"sessions": [v.model_dump(mode="json", exclude_none=True) for v in views]})


@app.get("/profiles")
def list_profiles(lister: Annotated[ProfileLister, Depends(factory.profile_lister)]) -> Response[str]:
    profiles = lister.list(deadline_of(app.lambda_context))
    return json_response(200, [p.model_dump(mode="json", exclude_none=True) for p in profiles])


@instrumented(correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
