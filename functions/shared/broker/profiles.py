"""Profiles: named, server-side session recipes, in one JSON document in SSM Parameter Store.

The document (docs/profiles.md): ``{"default_profile": ID, "profiles": {ID: profile}}``, IDs
``^[a-z0-9][a-z0-9-]{0,63}$``, each profile ``{title?, engine, avatar_id?, background?,
max_duration?, user_absent_timeout?, openai?, cartesia?, external?}``. Bounds and values are
those of the upstream APIs: Avaturn's "Create Session" reference (``background``,
``max_duration`` 60-86400 s, ``user_absent_timeout`` at least 10 s) and its "External
conversation engine" guide (``wss://`` URL, ``audio.user.sample_rate`` 16000 or 24000);
OpenAI's "Realtime: client secrets" reference (model, voice, instructions,
``audio.input.transcription``); Cartesia's agent id.

A browser picks a profile by its ID and never sees more than its ID, title and engine: the
instructions, agent ids, URLs and the secret field naming the external engine's headers stay
here. The document is read with Powertools parameters and cached like the API keys; it is
validated whole, so an invalid document is refused (503) and never half applied.
"""

from __future__ import annotations

import threading
from typing import Annotated, Any, Literal

from aws_lambda_powertools.utilities.parameters import SSMProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from broker.config import EngineName
from broker.errors import ConfigurationError, DependencyUnavailableError
from broker.observability import logger

ProfileId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
"""A profile's ID: what a client sends as ``profile`` and what the registry records."""
AVATAR_ID = r"^[A-Za-z0-9._:-]{1,128}$"
"""An Avaturn avatar id, as ``POST /sessions`` accepts one."""
SECTIONS: dict[EngineName, str] = {"openai-realtime": "openai", "cartesia": "cartesia", "external": "external"}
"""The section of a profile that configures each engine."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class OpenAIRecipe(_Strict):
    """The OpenAI Realtime session the client secret is minted for: ``model``, the output
    ``voice``, the system ``instructions`` and the ``transcription_model`` of the user's audio
    (``session.audio.input.transcription.model``: without it there are no user transcripts)."""

    model: str = Field(pattern=r"^[A-Za-z0-9._:-]{1,64}$")
    voice: str = Field(pattern=r"^[a-z0-9_-]{1,64}$")
    instructions: str | None = Field(None, min_length=1)
    transcription_model: str | None = Field(None, pattern=r"^[A-Za-z0-9._:-]{1,64}$")


class CartesiaRecipe(_Strict):
    """The Cartesia agent the session talks to."""

    agent_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,128}$")


class ExternalRecipe(_Strict):
    """An external conversation engine: the ``wss://`` ``url`` Avaturn opens, the
    ``sample_rate`` (Hz) of the user audio it sends, and the field of the engine secret that
    holds the headers of the WebSocket upgrade (``{"Authorization": "Bearer ..."}``)."""

    url: str = Field(pattern=r"^wss://[^\s/?#\"\\]+[^\s\"\\]*$", max_length=2048)
    sample_rate: Literal[16000, 24000]
    headers_secret_field: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,128}$")


class Profile(_Strict):
    """One session recipe. ``max_duration`` and ``user_absent_timeout`` are seconds (absent:
    the broker's ``SESSION_MAX_DURATION`` and ``USER_ABSENT_TIMEOUT``); ``background`` absent:
    Avaturn's default. The section of ``engine`` must be present; the others may be too (the
    default profile's let a legacy ``{"engine": ...}`` request choose them)."""

    title: str | None = Field(None, min_length=1, max_length=100)
    engine: EngineName
    avatar_id: str | None = Field(None, pattern=AVATAR_ID)
    background: Literal["transparent", "default"] | None = None
    max_duration: int | None = Field(None, ge=60, le=86400)
    user_absent_timeout: int | None = Field(None, ge=10, le=86400)
    openai: OpenAIRecipe | None = None
    cartesia: CartesiaRecipe | None = None
    external: ExternalRecipe | None = None

    @model_validator(mode="after")
    def _engine_is_configured(self) -> Profile:
        if not self.configures(self.engine):
            raise ValueError(f"engine '{self.engine}' needs the '{SECTIONS[self.engine]}' section")
        return self

    def configures(self, engine: EngineName) -> bool:
        """True when this profile has the section ``engine`` needs."""
        return getattr(self, SECTIONS[engine]) is not None

    def with_choice(self, engine: EngineName, avatar_id: str | None) -> Profile:
        """This profile with another ``engine`` (whose section it has) and ``avatar_id``."""
        return self.model_copy(update={"engine": engine, "avatar_id": avatar_id})


class ProfilesDocument(_Strict):
    """The whole document: at least one profile, and the ``default_profile`` among them."""

    default_profile: ProfileId
    profiles: dict[ProfileId, Profile] = Field(min_length=1)

    @model_validator(mode="after")
    def _default_exists(self) -> ProfilesDocument:
        if self.default_profile not in self.profiles:
            raise ValueError("default_profile names no profile of the document")
        return self

    @property
    def default(self) -> Profile:
        """The profile of requests that name none."""
        return self.profiles[self.default_profile]


class ProfileSummary(BaseModel):
    """One entry of ``GET /profiles``: the public fields of a profile, nothing else."""

    id: str
    title: str | None = None
    engine: EngineName


def summaries(document: ProfilesDocument) -> list[ProfileSummary]:
    """The public fields of every profile, the default first, then in document order."""
    order = [document.default_profile, *(i for i in document.profiles if i != document.default_profile)]
    return [ProfileSummary(id=i, title=document.profiles[i].title, engine=document.profiles[i].engine) for i in order]


class ProfileCatalog:
    """The profiles document of SSM parameter ``parameter_name`` (a String parameter), read with
    Powertools parameters and cached ``max_age`` seconds: an edit of the parameter takes effect
    within that time, without a deploy. ``client`` is a boto3 SSM client."""

    def __init__(self, parameter_name: str, max_age: int, client: Any) -> None:
        self._name = parameter_name
        self._max_age = max_age
        self._provider = SSMProvider(boto3_client=client)
        self._lock = threading.Lock()
        self._parsed: tuple[str, ProfilesDocument] | None = None

    def __call__(self) -> ProfilesDocument:
        """The validated document.

        Raises ``ConfigurationError`` (503) when the parameter does not exist or the document is
        invalid (the log line names each wrong field, never a value), and
        ``DependencyUnavailableError`` (503) when Parameter Store cannot be read.
        """
        raw = self._raw()
        parsed = self._parsed
        if parsed is not None and parsed[0] == raw:
            return parsed[1]
        try:
            document = ProfilesDocument.model_validate_json(raw)
        except ValidationError as exc:
            problems = [
                {"loc": ".".join(str(p) for p in e["loc"]) or "document", "msg": e["msg"]} for e in exc.errors()
            ]
            logger.error("invalid profiles document", extra={"parameter": self._name, "errors": problems})
            raise ConfigurationError("the profiles document is invalid; see the broker's logs") from None
        self._parsed = (raw, document)
        return document

    def _raw(self) -> str:
        try:
            with self._lock:  # one reader at a time: a cold container's threads share one read
                value = self._provider.get(self._name, max_age=self._max_age)
        except GetParameterError as exc:
            cause = exc.__cause__ or exc.__context__  # Powertools re-raises without "from"
            code = cause.response["Error"]["Code"] if isinstance(cause, ClientError) else None
            logger.warning(
                "profiles unavailable", extra={"parameter": self._name, "error": code or type(cause).__name__}
            )
            if code == "ParameterNotFound":
                raise ConfigurationError("the profiles document does not exist") from None
            raise DependencyUnavailableError("the profiles cannot be read right now") from None
        return str(value)
