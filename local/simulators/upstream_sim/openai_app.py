"""OpenAI: ``POST /v1/realtime/client_secrets`` with OpenAI's own error format."""

import copy
import json
import re
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, ValidationError
from pydantic_core import ErrorDetails
from starlette.exceptions import HTTPException as StarletteHTTPException

from upstream_sim.state import SimState, bearer_matches, random_alnum

_MISSING_KEY_MESSAGE = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using "
    "Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if "
    "you're accessing the API from your browser and are prompted for a username and password. You can obtain "
    "an API key from https://platform.openai.com/account/api-keys."
)
_WRONG_KEY_MESSAGE = (
    "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys."
)
_BAD_JSON_MESSAGE = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP "
    "library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you "
    "have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)"
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExpiresAfter(_Strict):
    anchor: Literal["created_at"]
    seconds: StrictInt = Field(default=600, ge=10, le=7200)


class VoiceId(_Strict):
    id: StrictStr


BuiltInVoice = Literal["alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"]
"""The Realtime API's built-in voices (API reference, ``session.audio.output.voice``)."""
TranscriptionModel = Literal[
    "whisper-1",
    "gpt-transcribe",
    "gpt-live-transcribe",
    "gpt-4o-mini-transcribe",
    "gpt-4o-mini-transcribe-2025-12-15",
    "gpt-4o-transcribe",
    "gpt-4o-transcribe-diarize",
    "gpt-realtime-whisper",
]
"""The models of ``session.audio.input.transcription.model`` (API reference, "AudioTranscription")."""


class AudioOutput(_Strict):
    format: dict[str, Any] | None = None
    speed: StrictFloat | StrictInt | None = Field(default=None, ge=0.25, le=1.5)
    voice: BuiltInVoice | VoiceId | None = None


class AudioTranscription(_Strict):
    model: TranscriptionModel | None = None
    language: Annotated[StrictStr, Field(pattern=r"^[a-z]{2}$")] | None = None
    languages: list[Annotated[StrictStr, Field(pattern=r"^[a-z]{2}$")]] | None = None
    prompt: StrictStr | None = None
    keywords: list[StrictStr] | None = None
    delay: Literal["minimal", "low", "medium", "high", "xhigh"] | None = None


class AudioInput(_Strict):
    format: dict[str, Any] | None = None
    noise_reduction: dict[str, Any] | None = None
    transcription: AudioTranscription | None = None
    turn_detection: dict[str, Any] | None = None


class Audio(_Strict):
    input: AudioInput | None = None
    output: AudioOutput | None = None


class RealtimeSession(_Strict):
    type: Literal["realtime"]
    model: Annotated[StrictStr, Field(min_length=1)]
    audio: Audio | None = None
    include: list[Literal["item.input_audio_transcription.logprobs"]] | None = None
    instructions: StrictStr | None = None
    max_output_tokens: Annotated[StrictInt, Field(ge=1, le=4096)] | Literal["inf"] | None = None
    output_modalities: list[Literal["text", "audio"]] | None = None
    parallel_tool_calls: StrictBool | None = None
    prompt: dict[str, Any] | None = None
    reasoning: dict[str, Any] | None = None
    tool_choice: StrictStr | dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tracing: Literal["auto"] | dict[str, Any] | None = None
    truncation: StrictStr | dict[str, Any] | None = None


class ClientSecretRequest(_Strict):
    expires_after: ExpiresAfter | None = None
    session: RealtimeSession


def openai_error(status: int, message: str, param: str | None = None, code: str | None = None) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}}, status)


_FIELD = re.compile(r"^[a-z_][a-z0-9_]*$")
_UNION_MEMBER_TAGS = frozenset({"int", "str", "float", "bool", "none"})
_JSON_TYPE_NAMES: dict[str, str] = {
    "int_type": "an integer",
    "string_type": "a string",
    "bool_type": "a boolean",
    "float_type": "a number",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "list_type": "an array",
    "literal_error": "a string",  # a non-string where one of several strings belongs
}


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _param(loc: tuple[int | str, ...]) -> str | None:
    """``('session', 'tools', 0, 'type')`` -> ``session.tools[0].type`` (union member tags dropped)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _FIELD.match(part) and part not in _UNION_MEMBER_TAGS:
            out += f".{part}" if out else part
    return out or None


def validation_error(error: ErrorDetails) -> JSONResponse:
    """Translate the first pydantic error into the message OpenAI sends for it."""
    kind = error["type"]
    param = _param(tuple(error["loc"]))
    value = error.get("input")
    ctx = error.get("ctx", {})
    if kind == "missing":
        return openai_error(400, f"Missing required parameter: '{param}'.", param, "missing_required_parameter")
    if kind == "extra_forbidden":
        return openai_error(400, f"Unknown parameter: '{param}'.", param, "unknown_parameter")
    if kind in ("greater_than_equal", "greater_than"):
        bound = ctx.get("ge", ctx.get("gt"))
        message = (
            f"Invalid '{param}': integer below minimum value. Expected a value >= {bound}, but got {value} instead."
        )
        return openai_error(400, message, param, "integer_below_min_value")
    if kind in ("less_than_equal", "less_than"):
        bound = ctx.get("le", ctx.get("lt"))
        message = (
            f"Invalid '{param}': integer above maximum value. Expected a value <= {bound}, but got {value} instead."
        )
        return openai_error(400, message, param, "integer_above_max_value")
    if kind == "string_too_short":
        message = (
            f"Invalid '{param}': string too short. Expected a string with minimum length 1, "
            "but got an empty string instead."
        )
        return openai_error(400, message, param, "string_below_min_length")
    if kind == "literal_error" and isinstance(value, str):
        expected = ctx.get("expected", "")
        return openai_error(400, f"Invalid value: '{value}'. Supported values are: {expected}.", param, "invalid_value")
    if kind == "string_pattern_mismatch":
        return openai_error(400, f"Invalid value: '{value}' for '{param}'.", param, "invalid_value")
    if param is None:
        return openai_error(400, "Invalid body: expected a JSON object.", None, "invalid_type")
    expected = _JSON_TYPE_NAMES.get(kind, "a valid value")
    message = f"Invalid type for '{param}': expected {expected}, but got {_describe(value)} instead."
    return openai_error(400, message, param, "invalid_type")


_SESSION_DEFAULTS: dict[str, Any] = {
    "object": "realtime.session",
    "type": "realtime",
    "expires_at": 0,
    "output_modalities": ["audio"],
    "instructions": "",
    "tools": [],
    "tool_choice": "auto",
    "max_output_tokens": "inf",
    "tracing": None,
    "truncation": "auto",
    "prompt": None,
    "include": None,
    "audio": {
        "input": {
            "format": {"type": "audio/pcm", "rate": 24000},
            "transcription": None,
            "noise_reduction": None,
            "turn_detection": {
                "type": "server_vad",
                "threshold": 0.5,
                "prefix_padding_ms": 300,
                "silence_duration_ms": 200,
                "idle_timeout_ms": None,
                "create_response": True,
                "interrupt_response": True,
            },
        },
        "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy", "speed": 1.0},
    },
}


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def create_openai_app(state: SimState) -> FastAPI:
    app = FastAPI(title="OpenAI simulator", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(StarletteHTTPException)
    async def not_found(request: Request, exc: StarletteHTTPException) -> Response:
        return openai_error(404, f"Invalid URL ({request.method} {request.url.path})")

    @app.post("/v1/realtime/client_secrets")
    async def create_client_secret(request: Request) -> Response:
        authorization = request.headers.get("authorization")
        if not authorization:
            return openai_error(401, _MISSING_KEY_MESSAGE)
        if not bearer_matches(authorization, state.config.openai_key):
            return openai_error(401, _WRONG_KEY_MESSAGE, None, "invalid_api_key")
        raw = await request.body()
        try:
            data = json.loads(raw)
        except ValueError:
            return openai_error(400, _BAD_JSON_MESSAGE)
        try:
            parsed = ClientSecretRequest.model_validate(data)
        except ValidationError as exc:
            return validation_error(exc.errors()[0])
        seconds = parsed.expires_after.seconds if parsed.expires_after is not None else 600
        requested = parsed.session.model_dump(exclude_unset=True)
        session = _merge(_SESSION_DEFAULTS, requested)
        session["id"] = f"sess_{random_alnum(22)}"
        secret = state.issue_client_secret(seconds, session)
        return JSONResponse({"value": secret.value, "expires_at": secret.expires_at, "session": session})

    return app
