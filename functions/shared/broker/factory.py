"""The composition root: builds the object graph once per container.

``Components`` wires settings, the HTTP client, the AWS clients and a clock into the use cases;
each part is built on first use and then reused, so warm invocations share clients, connection
pools and the secret cache. Production code gets the graph built from the environment through the
dependency functions below (``creator``, ``terminator``, ``reader``, ``sweeper``, and the
operator's ``lister``, ``admin_ender``, ``usage_reporter``, ``kill_switch``), which handlers
declare with Powertools' ``Depends``; tests build a ``Components`` with fakes passed in and
override those functions with ``app.dependency_overrides``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any

import httpx2
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from broker import aws
from broker.clients.avaturn import AvaturnClient
from broker.config import Settings
from broker.control import CreatesSwitch
from broker.errors import ConfigurationError
from broker.events import SessionEvents
from broker.http import make_http_client
from broker.observability import logger
from broker.profiles import ProfileCatalog
from broker.secrets import KeyStore
from broker.store import SessionStore
from broker.timing import Clock
from broker.usecases.admin_end import AdminEnder
from broker.usecases.admission import Admission
from broker.usecases.create import SessionCreator
from broker.usecases.ending import SessionEnder
from broker.usecases.keepalive import LeaseKeeper
from broker.usecases.kill_switch import KillSwitch
from broker.usecases.listing import SessionLister
from broker.usecases.profile_list import ProfileLister
from broker.usecases.read import SessionReader
from broker.usecases.sweep import Sweeper
from broker.usecases.terminate import SessionTerminator
from broker.usecases.usage import UsageReporter

if TYPE_CHECKING:
    from broker.engines import EngineMinters


def load_settings() -> Settings:
    """Settings from the environment.

    Raises ``ConfigurationError`` (503) when a variable is invalid, or several are wrong
    together; the log line names those variables, never their values.
    """
    try:
        return Settings()
    except ValidationError as exc:
        fields = sorted({name for error in exc.errors() for name in _variables(error)})
        logger.error("invalid configuration", extra={"fields": fields})
        raise ConfigurationError("the broker is misconfigured; see its logs") from None


def _variables(error: ErrorDetails) -> tuple[str, ...]:
    """The environment variable one validation error is about."""
    return (str(error["loc"][0]).upper(),) if error["loc"] else ("settings",)


@dataclass
class Components:
    """The object graph of one container.

    ``dynamodb``, ``secretsmanager``, ``eventbridge`` and ``ssm`` are boto3 clients (or anything
    with their methods), put under the broker's AWS fault policy (``broker.aws``); ``http`` is the
    one HTTP client every upstream adapter shares; ``clock`` returns epoch seconds.
    """

    settings: Settings
    http: httpx2.Client
    dynamodb: Any
    secretsmanager: Any
    clock: Clock = time.time
    eventbridge: Any = None
    ssm: Any = None

    def __post_init__(self) -> None:
        self.dynamodb = aws.resilient(self.dynamodb)
        self.secretsmanager = aws.resilient(self.secretsmanager)
        if self.eventbridge is not None:
            self.eventbridge = aws.resilient(self.eventbridge)
        if self.ssm is not None:
            self.ssm = aws.resilient(self.ssm)

    @classmethod
    def from_environment(cls) -> Components:
        """The production graph. Raises ``ConfigurationError`` on invalid settings."""
        settings = load_settings()
        return cls(
            settings,
            make_http_client(settings),
            aws.client("dynamodb"),
            aws.client("secretsmanager"),
            eventbridge=aws.client("events") if settings.event_bus_name else None,
            ssm=aws.client("ssm"),
        )

    @cached_property
    def keys(self) -> KeyStore:
        """The API keys, from the broker secret and the engine secret if one is set (cached
        ``secret_cache_seconds``)."""
        s = self.settings
        return KeyStore(s.broker_secret_id, s.secret_cache_seconds, self.secretsmanager, s.engine_secret_id)

    @cached_property
    def profiles(self) -> ProfileCatalog:
        """The profiles document (cached ``profiles_cache_seconds``)."""
        s = self.settings
        return ProfileCatalog(s.profiles_parameter_name, s.profiles_cache_seconds, self.ssm or aws.client("ssm"))

    @cached_property
    def store(self) -> SessionStore:
        """The session registry."""
        s = self.settings
        return SessionStore(self.dynamodb, s.sessions_table_name, s.finished_retention_days * 86400)

    @cached_property
    def avaturn(self) -> AvaturnClient:
        """The Avaturn Live adapter."""
        return AvaturnClient(self.http, self.settings.avaturn_api_url, self.keys.getter("avaturn"))

    @cached_property
    def minters(self) -> EngineMinters:
        """The engine credential minters (imports the openai SDK: create function only)."""
        from broker.clients.cartesia import CartesiaClient
        from broker.clients.openai_realtime import OpenAIRealtimeClient
        from broker.engines import EngineMinters

        s = self.settings
        return EngineMinters(
            settings=s,
            openai=OpenAIRealtimeClient(self.http, s.openai_base_url, self.keys.getter("openai")),
            cartesia=CartesiaClient(self.http, s.cartesia_api_url, s.cartesia_version, self.keys.getter("cartesia")),
            engine_headers=self.keys.engine_headers,
        )

    @cached_property
    def events(self) -> SessionEvents:
        """``Session Ended`` events (off without an EventBridge client or bus)."""
        return SessionEvents(self.eventbridge, self.settings.event_bus_name if self.eventbridge else "")

    @cached_property
    def creates_switch(self) -> CreatesSwitch:
        """The operator's kill switch for creates."""
        s = self.settings
        return CreatesSwitch(self.dynamodb, s.sessions_table_name, s.control_cache_seconds)

    @cached_property
    def admission(self) -> Admission:
        """The kill switch and the spend limits."""
        return Admission(
            settings=self.settings,
            store=self.store,
            ender=self.ender,
            creates_paused=self.creates_switch.paused_reason,
            clock=self.clock,
        )

    @cached_property
    def creator(self) -> SessionCreator:
        """The create use case."""
        idempotency = DynamoDBPersistenceLayer(
            table_name=self.settings.sessions_table_name, key_attr="pk", boto3_client=self.dynamodb
        )
        return SessionCreator(
            settings=self.settings,
            store=self.store,
            avaturn=self.avaturn,
            mint=self.minters,
            idempotency_store=idempotency,
            replay_secret=self.keys.getter("avaturn"),
            admission=self.admission,
            ender=self.ender,
            profiles=self.profiles,
            clock=self.clock,
        )

    @cached_property
    def ender(self) -> SessionEnder:
        """The shared "claim, then end" step."""
        return SessionEnder(
            settings=self.settings, store=self.store, avaturn=self.avaturn, events=self.events, clock=self.clock
        )

    @cached_property
    def terminator(self) -> SessionTerminator:
        """The terminate use case."""
        return SessionTerminator(settings=self.settings, store=self.store, ender=self.ender)

    @cached_property
    def lease_keeper(self) -> LeaseKeeper:
        """The keepalive use case."""
        return LeaseKeeper(settings=self.settings, store=self.store, clock=self.clock)

    @cached_property
    def reader(self) -> SessionReader:
        """The read use case."""
        return SessionReader(settings=self.settings, store=self.store)

    @cached_property
    def profile_lister(self) -> ProfileLister:
        """The public list of profiles."""
        return ProfileLister(profiles=self.profiles)

    @cached_property
    def sweeper(self) -> Sweeper:
        """The scheduled sweep."""
        return Sweeper(settings=self.settings, store=self.store, ender=self.ender, clock=self.clock)

    @cached_property
    def lister(self) -> SessionLister:
        """The operator's list of open sessions."""
        return SessionLister(store=self.store)

    @cached_property
    def admin_ender(self) -> AdminEnder:
        """The operator's end of one session, or of many."""
        return AdminEnder(store=self.store, ender=self.ender)

    @cached_property
    def usage_reporter(self) -> UsageReporter:
        """The operator's usage report."""
        return UsageReporter(store=self.store, clock=self.clock)

    @cached_property
    def kill_switch(self) -> KillSwitch:
        """The operator's kill switch for creates."""
        return KillSwitch(switch=self.creates_switch, clock=self.clock)


@lru_cache(maxsize=1)
def components() -> Components:
    """This container's graph, built from the environment on first use. A failure is not
    cached: the next invocation tries again. Raises ``ConfigurationError``."""
    return Components.from_environment()


def settings() -> Settings:
    """Dependency: this container's settings. Raises ``ConfigurationError``."""
    return components().settings


def creator() -> SessionCreator:
    """Dependency: the create use case. Raises ``ConfigurationError``."""
    return components().creator


def terminator() -> SessionTerminator:
    """Dependency: the terminate use case. Raises ``ConfigurationError``."""
    return components().terminator


def lease_keeper() -> LeaseKeeper:
    """Dependency: the keepalive use case. Raises ``ConfigurationError``."""
    return components().lease_keeper


def reader() -> SessionReader:
    """Dependency: the read use case. Raises ``ConfigurationError``."""
    return components().reader


def profile_lister() -> ProfileLister:
    """Dependency: the public list of profiles. Raises ``ConfigurationError``."""
    return components().profile_lister


def sweeper() -> Sweeper:
    """Dependency: the sweep use case. Raises ``ConfigurationError``."""
    return components().sweeper


def lister() -> SessionLister:
    """Dependency: the operator's list of open sessions. Raises ``ConfigurationError``."""
    return components().lister


def admin_ender() -> AdminEnder:
    """Dependency: the operator's end of sessions. Raises ``ConfigurationError``."""
    return components().admin_ender


def usage_reporter() -> UsageReporter:
    """Dependency: the operator's usage report. Raises ``ConfigurationError``."""
    return components().usage_reporter


def kill_switch() -> KillSwitch:
    """Dependency: the operator's kill switch. Raises ``ConfigurationError``."""
    return components().kill_switch
