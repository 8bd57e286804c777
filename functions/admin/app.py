"""The operator's routes under /admin/, authorized by IAM (SigV4) and nothing else: list open
sessions, end one or many (end reason ``admin``), pause or resume creates, report usage."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from broker import factory
from broker.api import MAX_BODY_BYTES, build_app, deadline_of, json_response, operator_of, parse_json_body, parse_query
from broker.config import Settings
from broker.models import AdminListQuery, BulkEndRequest, CreatesRequest, UsageQuery
from broker.observability import instrumented
from broker.usecases.admin_end import AdminEnder
from broker.usecases.kill_switch import KillSwitch
from broker.usecases.listing import SessionLister
from broker.usecases.usage import UsageReporter

app = build_app()


def operator(settings: Annotated[Settings, Depends(factory.settings)]) -> str:
    """Dependency: the IAM principal that signed the request (``broker.api.operator_of``)."""
    return operator_of(app.current_event, settings)


Operator = Annotated[str, Depends(operator)]


@app.get("/admin/sessions")
def list_sessions(_: Operator, lister: Annotated[SessionLister, Depends(factory.lister)]) -> Response[str]:
    page = lister.page(parse_query(app.current_event, AdminListQuery), deadline_of(app.lambda_context))
    return json_response(200, page.model_dump(mode="json"))


@app.post("/admin/sessions/<session_id>/end")
def end_session(
    session_id: str, who: Operator, ender: Annotated[AdminEnder, Depends(factory.admin_ender)]
) -> Response[str]:
    result = ender.end_one(session_id, deadline_of(app.lambda_context), who)
    return json_response(200, result.model_dump(mode="json"))


@app.post("/admin/end-sessions")
def end_sessions(who: Operator, ender: Annotated[AdminEnder, Depends(factory.admin_ender)]) -> Response[str]:
    request = parse_json_body(app.current_event, BulkEndRequest, MAX_BODY_BYTES, optional=True)
    summary = ender.end_all(request, deadline_of(app.lambda_context), who)
    return json_response(200, summary.model_dump())


@app.get("/admin/creates")
def creates(_: Operator, switch: Annotated[KillSwitch, Depends(factory.kill_switch)]) -> Response[str]:
    return json_response(200, switch.state(deadline_of(app.lambda_context)).model_dump())


@app.put("/admin/creates")
def set_creates(who: Operator, switch: Annotated[KillSwitch, Depends(factory.kill_switch)]) -> Response[str]:
    request = parse_json_body(app.current_event, CreatesRequest, MAX_BODY_BYTES)
    return json_response(200, switch.set(request, deadline_of(app.lambda_context), who).model_dump())


@app.get("/admin/usage")
def usage(_: Operator, reporter: Annotated[UsageReporter, Depends(factory.usage_reporter)]) -> Response[str]:
    report = reporter.report(parse_query(app.current_event, UsageQuery), deadline_of(app.lambda_context))
    return json_response(200, report.model_dump(by_alias=True))


@instrumented(correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
