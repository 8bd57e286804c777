"""Cartesia: ``POST /access-token``.

Errors follow Cartesia's versioned format: a JSON object ``{error_code, title, message,
request_id}`` when ``Cartesia-Version`` is 2026-03-01 or newer, ``Title: Message`` plain text
otherwise (and when the version header is missing or unknown).
"""

import json

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from upstream_sim.config import CARTESIA_VERSIONS
from upstream_sim.faults import cartesia_error
from upstream_sim.state import SimState, bearer_matches


class Grants(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tts: StrictBool | None = None
    stt: StrictBool | None = None
    agent: StrictBool | None = None


class AccessTokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grants: Grants
    expires_in: StrictInt = Field(ge=1, le=3600)


def _describe_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "body"
    return f"Invalid request body at '{where}': {error['msg']}."


def create_cartesia_app(state: SimState) -> FastAPI:
    app = FastAPI(title="Cartesia simulator", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        version = request.headers.get("cartesia-version")
        title = "Not Found" if exc.status_code == 404 else "Method Not Allowed"
        return cartesia_error(
            exc.status_code, title, f"No route for {request.method} {request.url.path}.", None, version
        )

    @app.post("/access-token")
    async def access_token(request: Request) -> Response:
        version = request.headers.get("cartesia-version")
        authorization = request.headers.get("authorization")
        if not authorization or not bearer_matches(authorization, state.config.cartesia_key):
            return cartesia_error(401, "Unauthorized", "Invalid or missing API key.", "unauthorized", version)
        if version is None:
            return cartesia_error(
                400, "Bad Request", "The Cartesia-Version header is required.", "missing_version", None
            )
        if version not in CARTESIA_VERSIONS:
            supported = ", ".join(sorted(CARTESIA_VERSIONS))
            return cartesia_error(
                400, "Bad Request", f"Unsupported Cartesia-Version. Supported: {supported}.", "invalid_version", None
            )
        try:
            data = json.loads(await request.body())
        except ValueError:
            return cartesia_error(400, "Bad Request", "Request body is not valid JSON.", "invalid_request", version)
        try:
            parsed = AccessTokenRequest.model_validate(data)
        except ValidationError as exc:
            return cartesia_error(400, "Bad Request", _describe_error(exc), "invalid_request", version)
        grants = {name: value for name, value in parsed.grants.model_dump().items() if value is not None}
        token = state.issue_cartesia_token(parsed.expires_in, grants, version)
        return JSONResponse({"token": token.token})

    return app
