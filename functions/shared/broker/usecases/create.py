"""Create a session: ``POST /sessions``.

Create follows the compensation rule: a pending row (holding one of the owner's slots) is written
before Avaturn is called; a failed call releases it; a session Avaturn created but we could not
record is deleted again. Whatever is left over is the sweep's job. The end state is always that
every upstream session is either recorded with an owner or terminated.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

from broker.clients.avaturn import AvaturnClient
from broker.config import Settings
from broker.errors import (
    BrokerError,
    DependencyUnavailableError,
    IdempotencyInProgressError,
    IdempotencyMismatchError,
    InvalidRequestError,
    UpstreamGoneError,
)
from broker.models import Caller, CreatedSession, CreateSessionRequest, EndReason, Session, Status, iso, token_digest
from broker.observability import count, logger
from broker.profiles import Profile, ProfilesDocument
from broker.replay import SealedTokenSerializer
from broker.store import SessionStore
from broker.timing import Clock, Deadline
from broker.usecases.admission import Admission
from broker.usecases.ending import SessionEnder

MINT_SHARE = 0.4
"""Share of the time left that minting the engine credential may use, retries included."""
RECORD_RESERVE = 3.0
"""Seconds kept back from the Avaturn create for recording its answer (or undoing it): once
Avaturn has created a session, the registry write must never be the step that runs out of time."""

EngineMinter = Callable[[Profile, Deadline], dict[str, Any]]
"""Mints the credential of a profile's engine and returns Avaturn's ``conversation_engine``
object (``broker.engines.EngineMinters``)."""


@dataclass
class SessionCreator:
    """Creates sessions. ``clock`` returns epoch seconds; ``replay_secret`` returns the server
    secret that seals tokens in stored idempotent responses; ``profiles`` returns the validated
    profiles document (``broker.profiles.ProfileCatalog``)."""

    settings: Settings
    store: SessionStore
    avaturn: AvaturnClient
    mint: EngineMinter
    idempotency_store: BasePersistenceLayer
    replay_secret: Callable[[], str]
    admission: Admission
    ender: SessionEnder
    profiles: Callable[[], ProfilesDocument]
    clock: Clock = time.time

    def create(
        self, caller: Caller, request: CreateSessionRequest, deadline: Deadline, idempotency_key: str | None = None
    ) -> CreatedSession:
        """Mint the engine credential, create the Avaturn session, record it and return its token.

        The session follows the profile the request names, or the default profile with the
        legacy ``engine`` and ``avatar_id`` applied (``resolve_profile``). With
        ``idempotency_key``, the same key from the same owner within ``idempotency_ttl_seconds``
        returns the first answer and creates one upstream session.

        Raises ``InvalidRequestError`` (unknown profile, engine or avatar not allowed), the refusals of
        ``Admission.admit`` (kill switch and spend limits), ``IdempotencyMismatchError``,
        ``IdempotencyInProgressError``, ``ReplayUnavailableError``, ``UpstreamError``,
        ``UpstreamTimeoutError``, ``ConfigurationError`` and ``DependencyUnavailableError``.
        """
        with deadline.applies():
            return self._create_once(caller, request, deadline, idempotency_key)

    def _create_once(
        self, caller: Caller, request: CreateSessionRequest, deadline: Deadline, idempotency_key: str | None
    ) -> CreatedSession:
        profile_id, profile = resolve_profile(self.profiles(), request, self.settings)
        if idempotency_key is None:
            return self._create(caller.owner, profile_id, profile, deadline)

        config = IdempotencyConfig(
            event_key_jmespath="[owner, key]",
            payload_validation_jmespath="request",
            expires_after_seconds=self.settings.idempotency_ttl_seconds,
        )
        # An in-flight record expires with the invocation (Deadline has the context's one method).
        config.register_lambda_context(deadline)  # type: ignore[arg-type]

        @idempotent_function(
            data_keyword_argument="payload",
            persistence_store=self.idempotency_store,
            config=config,
            key_prefix="create_session",
            output_serializer=SealedTokenSerializer(self.replay_secret, caller.owner, idempotency_key),
        )
        def create_once(payload: dict[str, Any]) -> CreatedSession:
            created = self._create(caller.owner, profile_id, profile, deadline)
            produced.append(created)
            return created

        produced: list[CreatedSession] = []

        payload = {
            "owner": caller.owner,
            "key": idempotency_key,
            "request": [profile_id, profile.engine, profile.avatar_id],
        }
        try:
            result: CreatedSession = create_once(payload=payload)
        except IdempotencyValidationError:
            raise IdempotencyMismatchError("this Idempotency-Key was used with a different request") from None
        except IdempotencyAlreadyInProgressError:
            raise IdempotencyInProgressError("a request with this Idempotency-Key is in progress") from None
        except IdempotencyPersistenceLayerError as exc:
            if produced:
                # The session exists and holds a slot: its caller gets it, whatever the record.
                count("IdempotencyRecordFailures")
                logger.error("the idempotency record of a created session could not be saved")
                return produced[0]
            raise DependencyUnavailableError("the session registry is unavailable") from exc
        return result

    def _create(self, owner: str, profile_id: str, profile: Profile, deadline: Deadline) -> CreatedSession:
        s = self.settings
        engine, avatar_id = profile.engine, profile.avatar_id
        session = self.admission.admit(
            owner,
            engine,
            avatar_id,
            deadline,
            profile=profile_id,
            max_duration=profile.max_duration or s.session_max_duration,
        )
        try:
            conversation_engine = self.mint(profile, deadline.portion(MINT_SHARE))
            upstream = self.avaturn.create_session(
                conversation_engine=conversation_engine,
                avatar_id=avatar_id,
                max_duration=session.expires_at - session.created_at,  # the budget's clamp holds upstream too
                user_absent_timeout=profile.user_absent_timeout or s.user_absent_timeout,
                background=profile.background,
                deadline=deadline.less(RECORD_RESERVE),
            )
        except BaseException:
            self._release(session)
            raise
        active = replace(
            session,
            status=Status.ACTIVE,
            avaturn_session_id=upstream.session_id,
            token_sha256=token_digest(upstream.token),
            due_at=min(session.expires_at, session.lease_expires_at or session.expires_at),
        )
        if not self._record(active):
            self._compensate(session, upstream.session_id, deadline)
            raise DependencyUnavailableError("the session could not be recorded; try again")
        count("SessionsCreated")
        logger.info(
            "session created", extra={"session_id": session.session_id, "engine": engine, "profile": profile_id}
        )
        return CreatedSession(
            session_id=session.session_id,
            token=upstream.token,
            engine=engine,
            avatar_id=avatar_id,
            expires_at=iso(session.expires_at) or "",
            profile=profile_id,
            api_host=s.sdk_api_host,
        )

    def _record(self, active: Session) -> bool:
        try:
            return self.store.activate(active)
        except BrokerError:
            logger.exception("recording an upstream session failed", extra={"session_id": active.session_id})
            return False

    def _release(self, session: Session) -> None:
        """Give the slot back; if even that fails, the sweep finds the pending row later."""
        try:
            self.ender.finish(session, Status.FAILED, EndReason.COMPENSATION)
        except BrokerError:
            logger.exception("releasing a pending session failed", extra={"session_id": session.session_id})

    def _compensate(self, pending: Session, avaturn_session_id: str, deadline: Deadline) -> None:
        try:
            self.avaturn.delete_session(avaturn_session_id, deadline=deadline)
        except UpstreamGoneError:
            pass
        except BrokerError:
            count("CompensationFailures")
            logger.error(
                "an unrecorded upstream session could not be ended; it expires after "
                "user_absent_timeout as nobody holds its token",
                extra={"session_id": pending.session_id, "avaturn_session_id": avaturn_session_id},
            )
        self._release(pending)


def resolve_profile(
    document: ProfilesDocument, request: CreateSessionRequest, settings: Settings
) -> tuple[str, Profile]:
    """The profile a create request asks for, and its ID: the one ``request.profile`` names, or
    the default profile with the legacy ``engine`` and ``avatar_id`` applied. What a client names
    itself must be in the allow-lists (``ALLOWED_ENGINES``, ``ALLOWED_AVATAR_IDS``); a profile's
    own choices are server configuration.

    Raises ``InvalidRequestError`` (422) for an unknown profile, a profile named together with
    ``engine`` or ``avatar_id``, an engine or avatar not allowed, or an engine the default
    profile does not configure.
    """
    if request.profile is not None:
        if request.engine is not None or request.avatar_id is not None:
            raise InvalidRequestError(
                "name a profile, or an engine and avatar, not both",
                [{"loc": "profile", "msg": "not allowed together with engine or avatar_id"}],
            )
        profile = document.profiles.get(request.profile)
        if profile is None:
            raise InvalidRequestError(
                f"there is no profile '{request.profile}'", [{"loc": "profile", "msg": "unknown profile"}]
            )
        return request.profile, profile
    default = document.default
    if request.engine is not None and (
        request.engine not in settings.allowed_engines or not default.configures(request.engine)
    ):
        raise InvalidRequestError(
            f"engine '{request.engine}' is not enabled on this broker",
            [{"loc": "engine", "msg": "not in the allow-list"}],
        )
    allowed = settings.allowed_avatar_ids
    if request.avatar_id is not None and allowed and request.avatar_id not in allowed:
        raise InvalidRequestError(
            "this avatar is not enabled on this broker", [{"loc": "avatar_id", "msg": "not in the allow-list"}]
        )
    profile = default.with_choice(request.engine or default.engine, request.avatar_id or default.avatar_id)
    return document.default_profile, profile
