"""API keys from Secrets Manager, cached per container with Powertools parameters.

Secret format: ``{"avaturn_api_key": "...", "openai_api_key": "...", "cartesia_api_key": "..."}``,
plus any fields the profiles name for an external engine's headers (``{"Authorization": "Bearer
..."}``). With an engine secret (``ENGINE_SECRET_ID``) the engine keys and those header fields
live there instead and the broker secret needs only ``avaturn_api_key``. A key that is absent or
empty is "not configured" (503). Values never reach a log line.
"""

from __future__ import annotations

import re
import threading
from typing import Any, Literal

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError, TransformParameterError
from botocore.exceptions import ClientError

from broker.errors import ConfigurationError, DependencyUnavailableError
from broker.observability import logger

KeyName = Literal["avaturn", "openai", "cartesia"]
ENGINE_KEYS: frozenset[KeyName] = frozenset({"openai", "cartesia"})
"""The keys read from the engine secret when one is configured."""
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}")
"""A header field name: an RFC 9110 token (section 5.1)."""
HEADER_VALUE = re.compile(r"[\x21-\x7e]([\x20-\x7e\t]{0,8190}[\x21-\x7e])?")
"""A header field value: visible ASCII, with spaces and tabs only inside (RFC 9110, section 5.5)."""
MAX_HEADERS = 20


class KeyStore:
    """The upstream API keys, read with Powertools parameters and cached for ``max_age`` seconds.

    The Avaturn key comes from the broker secret ``secret_id``; the engine keys (``ENGINE_KEYS``)
    from ``engine_secret_id`` when it is set (not empty), else from the broker secret too. ``client`` is a
    boto3 Secrets Manager client.
    """

    def __init__(self, secret_id: str, max_age: int, client: Any, engine_secret_id: str | None = None) -> None:
        self._secret_id = secret_id
        self._engine_secret_id = engine_secret_id or secret_id
        self._max_age = max_age
        self._provider = SecretsProvider(boto3_client=client)
        # One reader at a time: the cleanup's threads all start with an empty cache, and without
        # this each of them would call GetSecretValue (the benchmark saw up to 10 in one sweep).
        self._lock = threading.RLock()

    def key(self, name: KeyName) -> str:
        """The ``<name>_api_key`` field of its secret, stripped.

        Raises ``ConfigurationError`` (503) when the key is absent or empty, or the secret does
        not exist or is not a JSON object; ``DependencyUnavailableError`` (503) when Secrets
        Manager cannot be read.
        """
        value = self._secret(*self._source(name)).get(f"{name}_api_key")
        if not isinstance(value, str) or not value.strip():
            raise ConfigurationError(f"the {name} API key is not configured")
        return value.strip()

    def refresh(self, name: KeyName, stale: str) -> bool:
        """Re-read the secret holding ``name``, bypassing the cache, unless the key already
        differs from ``stale`` (another caller refreshed it). True if the key changed.

        Raises as ``key``.
        """
        with self._lock:
            if self.key(name) == stale:
                self._secret(*self._source(name), force=True)
        return self.key(name) != stale

    def engine_headers(self, field: str) -> dict[str, str]:
        """The external engine's WebSocket upgrade headers: the JSON object in field ``field`` of
        the engine secret (the broker secret when there is none), at most ``MAX_HEADERS`` of
        ``HEADER_NAME`` to ``HEADER_VALUE``, e.g. ``{"Authorization": "Bearer ..."}``.

        Raises ``ConfigurationError`` (503) when the field is absent or not such an object, and
        as ``key`` when the secret cannot be read.
        """
        secret_id, role = self._engine_source()
        value = self._secret(secret_id, role).get(field)
        if not (
            isinstance(value, dict)
            and 0 < len(value) <= MAX_HEADERS
            and all(
                isinstance(v, str) and HEADER_NAME.fullmatch(k) and HEADER_VALUE.fullmatch(v) for k, v in value.items()
            )
        ):
            logger.warning("external engine headers invalid", extra={"secret": role, "field": field})
            raise ConfigurationError("the external engine's headers are not configured")
        return dict(value)

    def getter(self, name: KeyName) -> ApiKey:
        """The key ``name`` as a callable for adapters (a rotated secret is picked up after
        ``max_age``, or at once through ``ApiKey.refresh`` when an upstream refuses the key)."""
        return ApiKey(self, name)

    def _source(self, name: KeyName) -> tuple[str, str]:
        return self._engine_source() if name in ENGINE_KEYS else (self._secret_id, "broker")

    def _engine_source(self) -> tuple[str, str]:
        if self._engine_secret_id != self._secret_id:
            return self._engine_secret_id, "engine"
        return self._secret_id, "broker"

    def _secret(self, secret_id: str, role: str, *, force: bool = False) -> dict[str, Any]:
        try:
            with self._lock:
                data = self._provider.get(secret_id, transform="json", max_age=self._max_age, force_fetch=force)
        except TransformParameterError:
            raise ConfigurationError(f"the {role} secret is not a JSON object") from None
        except GetParameterError as exc:
            cause = exc.__cause__ or exc.__context__  # Powertools re-raises without "from"
            code = cause.response["Error"]["Code"] if isinstance(cause, ClientError) else None
            logger.warning("secret unavailable", extra={"secret": role, "error": code or type(cause).__name__})
            if code == "ResourceNotFoundException":
                raise ConfigurationError(f"the {role} secret does not exist") from None
            raise DependencyUnavailableError("the API keys cannot be read right now") from None
        if not isinstance(data, dict):
            raise ConfigurationError(f"the {role} secret is not a JSON object")
        return data


class ApiKey:
    """One API key of a ``KeyStore``: call it for the current value; ``refresh(stale)`` re-reads
    its secret once when an upstream refused ``stale`` (the secret may have been rotated)."""

    def __init__(self, store: KeyStore, name: KeyName) -> None:
        self._store = store
        self._name: KeyName = name

    def __call__(self) -> str:
        """The key. Raises ``ConfigurationError`` / ``DependencyUnavailableError`` (503)."""
        return self._store.key(self._name)

    def refresh(self, stale: str) -> bool:
        """True if, after re-reading the secret, the key differs from ``stale``."""
        return self._store.refresh(self._name, stale)
