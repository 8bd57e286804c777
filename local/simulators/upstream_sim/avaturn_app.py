"""Avaturn Live: ``POST /api/v1/sessions``, ``DELETE /api/v1/sessions/{id}`` and the web SDK's
``GET /_sdk/v0/sessions``. A FastAPI service, so validation errors are FastAPI's own 422s.

The create body is Avaturn's "Create Session" API reference (``background``: ``transparent`` or
``default``; ``max_duration`` 60-86400 s; ``user_absent_timeout`` at least 10 s) and its
"External conversation engine" guide (``audio.user.sample_rate`` 16000 or 24000, ``headers`` a
string-to-string map forwarded on the WebSocket upgrade).
"""

from typing import Annotated, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from starlette.types import ASGIApp, Receive, Scope, Send

from upstream_sim.state import SimState, bearer_matches


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OpenAIRealtimeEngine(_Strict):
    type: Literal["openai-realtime"]
    client_secret: Annotated[StrictStr, Field(min_length=1)]


class CartesiaEngine(_Strict):
    type: Literal["cartesia"]
    access_token: Annotated[StrictStr, Field(min_length=1)]
    agent_id: Annotated[StrictStr, Field(min_length=1)]


class ExternalAudioUser(_Strict):
    sample_rate: Literal[16000, 24000]


class ExternalAudio(_Strict):
    user: ExternalAudioUser


class ExternalEngine(_Strict):
    type: Literal["external"]
    url: Annotated[StrictStr, Field(pattern=r"^wss?://[^\s/?#]+[^\s]*$")]
    audio: ExternalAudio
    headers: dict[StrictStr, StrictStr] | None = None


ConversationEngine = Annotated[OpenAIRealtimeEngine | CartesiaEngine | ExternalEngine, Field(discriminator="type")]


class CreateSessionBody(_Strict):
    avatar_id: Annotated[StrictStr, Field(min_length=1)] | None = None
    conversation_engine: ConversationEngine
    max_duration: StrictInt = Field(default=3600, ge=60, le=86400)
    user_absent_timeout: StrictInt = Field(default=60, ge=10, le=86400)
    background: Literal["transparent", "default"] | None = None


class ApiKeyGuard:
    """401 for ``/api/`` requests without the right ``Authorization: Bearer <key>``, before any
    body parsing (so a bad key always wins over a bad body)."""

    def __init__(self, app: ASGIApp, state: SimState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            headers = dict(scope["headers"])
            raw = headers.get(b"authorization")
            if raw is None:
                response = JSONResponse({"detail": "Not authenticated"}, 401, headers={"WWW-Authenticate": "Bearer"})
                await response(scope, receive, send)
                return
            if not bearer_matches(raw.decode("latin-1"), self.state.config.avaturn_key):
                response = JSONResponse({"detail": "Invalid API key"}, 401, headers={"WWW-Authenticate": "Bearer"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_avaturn_app(state: SimState) -> ASGIApp:
    app = FastAPI(title="Avaturn Live simulator", docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/api/v1/sessions")
    async def create_session(body: CreateSessionBody) -> Response:
        state.sweep()
        avatar_id = body.avatar_id
        if avatar_id is not None and avatar_id in state.avatars_gone:
            return JSONResponse({"detail": "Avatar is gone"}, 410)
        if avatar_id is not None and state.avatars_allowed is not None and avatar_id not in state.avatars_allowed:
            return JSONResponse({"detail": "Avatar is not available"}, 410)
        engine = body.conversation_engine
        if isinstance(engine, OpenAIRealtimeEngine) and state.valid_client_secret(engine.client_secret) is None:
            return JSONResponse(
                {"detail": "conversation_engine.client_secret is not a valid, unexpired OpenAI client secret"}, 400
            )
        if isinstance(engine, CartesiaEngine):
            token = state.valid_cartesia_token(engine.access_token)
            if token is None:
                return JSONResponse(
                    {"detail": "conversation_engine.access_token is not a valid, unexpired Cartesia access token"},
                    400,
                )
            if not token.grants.get("agent"):
                return JSONResponse({"detail": "conversation_engine.access_token lacks the 'agent' grant"}, 400)
        session = state.create_session(
            engine=engine.model_dump(exclude_unset=True),
            avatar_id=avatar_id,
            max_duration=body.max_duration,
            user_absent_timeout=body.user_absent_timeout,
            background=body.background,
        )
        return JSONResponse({"session_id": session.id, "token": session.token})

    @app.delete("/api/v1/sessions/{session_id}")
    async def delete_session(session_id: str) -> Response:
        state.sweep()
        session = state.sessions.get(session_id)
        if session is None or not session.active:
            return JSONResponse({"detail": "Session not found"}, 404)
        state.end_session(session, "deleted")
        return Response(status_code=200)

    @app.get("/_sdk/v0/sessions")
    async def sdk_session(request: Request) -> Response:
        state.sweep()
        token = request.headers.get("x-session-token")
        origin = request.headers.get("origin")
        session = state.sessions_by_token.get(token) if token else None
        if session is None:
            status, detail = 401, ("Missing X-Session-Token header" if not token else "Invalid session token")
            state.record_sdk_fetch(token, None, origin, status)
            return JSONResponse({"detail": detail}, status)
        if not session.active:
            state.record_sdk_fetch(token, session.id, origin, 404)
            return JSONResponse({"detail": "Session has ended"}, 404)
        session.sdk_fetches += 1
        if session.joined_at is None:
            session.joined_at = state.clock.now()
        state.record_sdk_fetch(token, session.id, origin, 200)
        return JSONResponse(
            {
                "id": session.id,
                "limited_access_token": session.limited_access_token,
                "room_url": f"{state.config.room_base_url}{session.id}",
                "session_config": {"uses_stacked_alpha": False},
            }
        )

    return ApiKeyGuard(app, state)
