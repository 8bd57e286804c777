"""Control API (``/_control/...``) on its own port: read state, inject faults, move the clock."""

from typing import Annotated, Any

from fastapi import Body, FastAPI, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from upstream_sim.config import ENDPOINTS
from upstream_sim.faults import EndpointName, FaultSpec, LatencySpec
from upstream_sim.state import SimState


class ClockAdvance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(ge=0)


class AvatarSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: ``null`` accepts any avatar id.
    allowed: list[StrictStr] | None = None
    gone: list[StrictStr] = Field(default_factory=list)


class EndSession(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: StrictStr = "expired"


class MintOpenAISecret(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: StrictInt = Field(default=600, ge=1, le=7200)
    model: StrictStr = "gpt-realtime"


class MintCartesiaToken(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expires_in: StrictInt = Field(default=60, ge=1, le=3600)
    grants: dict[StrictStr, StrictBool] = Field(default_factory=lambda: {"agent": True})


def create_control_app(state: SimState, info: dict[str, Any]) -> FastAPI:
    """``info`` is filled by the runner with the listener URLs once they are bound."""
    app = FastAPI(title="upstream_sim control", docs_url=None, redoc_url=None, openapi_url="/_control/openapi.json")

    @app.get("/_control/health")
    async def health() -> dict[str, Any]:
        return {"ok": True, **info}

    @app.post("/_control/reset")
    async def reset() -> dict[str, Any]:
        state.reset()
        return {"ok": True}

    @app.get("/_control/state")
    async def snapshot() -> dict[str, Any]:
        return state.snapshot()

    # ---- sessions --------------------------------------------------------------------------

    @app.get("/_control/sessions")
    async def sessions() -> dict[str, Any]:
        return state.sessions_json()

    @app.get("/_control/sessions/{session_id}")
    async def session(session_id: str) -> dict[str, Any]:
        state.sweep()
        found = state.sessions.get(session_id)
        if found is None:
            raise HTTPException(404, "unknown session")
        return found.to_json()

    @app.post("/_control/sessions/{session_id}/expire")
    async def expire_session(session_id: str, body: EndSession | None = None) -> dict[str, Any]:
        state.sweep()
        found = state.sessions.get(session_id)
        if found is None or not found.active:
            raise HTTPException(404, "no active session with that id")
        state.end_session(found, (body or EndSession()).reason)
        return found.to_json()

    # ---- records ---------------------------------------------------------------------------

    @app.get("/_control/requests")
    async def requests(
        endpoint: str | None = Query(default=None),
        upstream: str | None = Query(default=None),
        since: int = Query(default=0, ge=0),
    ) -> dict[str, Any]:
        selected = [
            r.to_json()
            for r in state.records
            if r.seq > since
            and (endpoint is None or r.endpoint == endpoint)
            and (upstream is None or r.upstream == upstream)
        ]
        return {"requests": selected, "counts": state.request_counts()}

    @app.get("/_control/sdk-fetches")
    async def sdk_fetches() -> dict[str, Any]:
        return {"sdk_fetches": [f.to_json() for f in state.sdk_fetches]}

    @app.get("/_control/connections")
    async def connections() -> dict[str, Any]:
        return state.connections_json()

    @app.post("/_control/connections/close")
    async def close_connections() -> dict[str, Any]:
        return {"closed": state.close_idle_connections()}

    @app.get("/_control/secrets")
    async def issued_secrets() -> dict[str, Any]:
        return state.secrets_json()

    @app.post("/_control/secrets/openai")
    async def mint_openai(body: MintOpenAISecret | None = None) -> dict[str, Any]:
        spec = body or MintOpenAISecret()
        secret = state.issue_client_secret(spec.seconds, {"type": "realtime", "model": spec.model, "minted": True})
        return {"value": secret.value, "expires_at": secret.expires_at}

    @app.post("/_control/secrets/cartesia")
    async def mint_cartesia(body: MintCartesiaToken | None = None) -> dict[str, Any]:
        spec = body or MintCartesiaToken()
        token = state.issue_cartesia_token(spec.expires_in, dict(spec.grants), "control")
        return {"token": token.token, "expires_at": token.expires_at}

    # ---- clock -----------------------------------------------------------------------------

    @app.get("/_control/clock")
    async def clock() -> dict[str, float]:
        return state.clock_json()

    @app.post("/_control/clock/advance")
    async def advance(body: ClockAdvance) -> dict[str, float]:
        state.clock.advance(body.seconds)
        state.sweep()
        return state.clock_json()

    # ---- faults and latency ----------------------------------------------------------------

    @app.get("/_control/faults")
    async def faults() -> dict[str, Any]:
        return state.faults_json()

    @app.post("/_control/faults", status_code=201)
    async def add_fault(body: Annotated[FaultSpec, Body()]) -> dict[str, Any]:
        return state.add_fault(body).to_json()

    @app.delete("/_control/faults")
    async def clear_faults() -> dict[str, Any]:
        state.clear_faults()
        return {"ok": True}

    @app.delete("/_control/faults/{endpoint}")
    async def clear_endpoint_faults(endpoint: EndpointName) -> dict[str, Any]:
        state.clear_faults(endpoint)
        return {"ok": True}

    @app.get("/_control/latency")
    async def latency() -> dict[str, float]:
        return dict(state.latency)

    @app.post("/_control/latency")
    async def set_latency(body: LatencySpec) -> dict[str, float]:
        if body.seconds > 0:
            state.latency[body.endpoint] = body.seconds
        else:
            state.latency.pop(body.endpoint, None)
        return dict(state.latency)

    @app.delete("/_control/latency")
    async def clear_latency() -> dict[str, float]:
        state.latency.clear()
        return {}

    # ---- avatars ---------------------------------------------------------------------------

    @app.get("/_control/avatars")
    async def avatars() -> dict[str, Any]:
        return state.avatars_json()

    @app.post("/_control/avatars")
    async def set_avatars(body: AvatarSettings) -> dict[str, Any]:
        state.avatars_allowed = None if body.allowed is None else frozenset(body.allowed)
        state.avatars_gone = frozenset(body.gone)
        return state.avatars_json()

    @app.get("/_control/endpoints")
    async def endpoints() -> dict[str, Any]:
        return {name: {"upstream": up, "method": method} for name, (up, method) in ENDPOINTS.items()}

    return app
