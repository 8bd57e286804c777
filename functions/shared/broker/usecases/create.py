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
from broker.config import EngineName, Settings
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

EngineMinter = Callable[[EngineName, Deadline], dict[str, Any]]
"""Mints an engine's credential and returns Avaturn's ``conversation_engine`` object
(``broker.engines.EngineMinters``)."""


@dataclass
class SessionCreator:
    """Creates sessions. ``clock`` returns epoch seconds; ``replay_secret`` returns the server
    secret that seals tokens in stored idempotent responses."""

    settings: Settings
    store: SessionStore
    avaturn: AvaturnClient
    mint: EngineMinter
    idempotency_store: BasePersistenceLayer
    replay_secret: Callable[[], str]
    admission: Admission
    ender: SessionEnder
    clock: Clock = time.time

    def create(
        self, caller: Caller, request: CreateSessionRequest, deadline: Deadline, idempotency_key: str | None = None
    ) -> CreatedSession:
        """Mint the engine credential, create the Avaturn session, record it and return its token.

        With ``idempotency_key``, the same key from the same owner within
        ``idempotency_ttl_seconds`` returns the first answer and creates one upstream session.

        Raises ``InvalidRequestError`` (engine or avatar not allowed), the refusals of
        ``Admission.admit`` (kill switch and spend limits), ``IdempotencyMismatchError``,
        ``IdempotencyInProgressError``, ``ReplayUnavailableError``, ``UpstreamError``,
        ``UpstreamTimeoutError``, ``ConfigurationError`` and ``DependencyUnavailableError``.
        """
        with deadline.applies():
            return self._create_once(caller, request, deadline, idempotency_key)

    def _create_once(
        self, caller: Caller, request: CreateSessionRequest, deadline: Deadline, idempotency_key: str | None
    ) -> CreatedSession:
        engine, avatar_id = self._resolve(request)
        if idempotency_key is None:
            return self._create(caller.owner, engine, avatar_id, deadline)

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
            created = self._create(caller.owner, engine, avatar_id, deadline)
            produced.append(created)
            return created

        produced: list[CreatedSession] = []

        payload = {"owner": caller.owner, "key": idempotency_key, "request": [engine, avatar_id]}
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

    def _resolve(self, request: CreateSessionRequest) -> tuple[EngineName, str | None]:
        engine = request.engine or self.settings.default_engine
        if engine not in self.settings.allowed_engines:
            raise InvalidRequestError(
                f"engine '{engine}' is not enabled on this broker", [{"loc": "engine", "msg": "not in the allow-list"}]
            )
        avatar_id = request.avatar_id or self.settings.default_avatar_id
        allowed = self.settings.allowed_avatar_ids
        if allowed and avatar_id not in allowed:
            raise InvalidRequestError(
                "this avatar is not enabled on this broker", [{"loc": "avatar_id", "msg": "not in the allow-list"}]
            )
        return engine, avatar_id

    def _create(self, owner: str, engine: EngineName, avatar_id: str | None, deadline: Deadline) -> CreatedSession:
        s = self.settings
        session = self.admission.admit(owner, engine, avatar_id, deadline)
        try:
            conversation_engine = self.mint(engine, deadline.portion(MINT_SHARE))
            upstream = self.avaturn.create_session(
                conversation_engine=conversation_engine,
                avatar_id=avatar_id,
                max_duration=session.expires_at - session.created_at,  # the budget's clamp holds upstream too
                user_absent_timeout=s.user_absent_timeout,
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
        logger.info("session created", extra={"session_id": session.session_id, "engine": engine})
        return CreatedSession(
            session_id=session.session_id,
            token=upstream.token,
            engine=engine,
            avatar_id=avatar_id,
            expires_at=iso(session.expires_at) or "",
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
