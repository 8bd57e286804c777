"""Idempotent replays without a readable token at rest.

Powertools stores the first response so a retry with the same Idempotency-Key gets it back. The
session token in it is sealed with AES-GCM under a key derived (HMAC-SHA256) from a server secret
and the request's own owner and Idempotency-Key, which the table never holds in clear (Powertools
stores only a hash of them). Reading the table alone reveals no token.

``cryptography`` is imported on the first seal or unseal, not with this module: only creates
that carry an Idempotency-Key need it, and every function imports this module.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.idempotency.serialization.base import BaseIdempotencySerializer

from broker.errors import ReplayUnavailableError
from broker.models import CreatedSession

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "sealed:v1:"


class SealedTokenSerializer(BaseIdempotencySerializer):
    """Powertools output serializer for ``CreatedSession``: the stored dict holds the token
    sealed as ``sealed:v1:<base64(nonce || AES-GCM ciphertext)>``, the rest in clear.

    ``server_secret`` returns the secret the sealing key is derived from (the Avaturn API key).
    """

    def __init__(self, server_secret: Callable[[], str], owner: str, idempotency_key: str) -> None:
        self._secret = server_secret
        self._context = f"{owner}\x00{idempotency_key}".encode()

    def _aead(self) -> AESGCM:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        key = hmac.new(self._secret().encode(), b"idempotency-replay\x00" + self._context, hashlib.sha256).digest()
        return AESGCM(key)

    def to_dict(self, data: Any) -> dict[str, Any]:
        """The record to store for a ``CreatedSession``, its token sealed."""
        created = data.model_dump() if isinstance(data, CreatedSession) else dict(data)
        nonce = os.urandom(12)
        sealed = self._aead().encrypt(nonce, str(created["token"]).encode(), self._context)
        return {**created, "token": PREFIX + base64.b64encode(nonce + sealed).decode()}

    def from_dict(self, data: dict[str, Any]) -> CreatedSession:
        """The ``CreatedSession`` a stored record holds. Raises ``ReplayUnavailableError`` when the
        token cannot be opened (the server secret was rotated since it was sealed)."""
        from cryptography.exceptions import InvalidTag

        raw = base64.b64decode(str(data.get("token", "")).removeprefix(PREFIX))
        try:
            token = self._aead().decrypt(raw[:12], raw[12:], self._context).decode()
        except (InvalidTag, ValueError):
            # The server secret was rotated since: the stored answer cannot be opened any more.
            raise ReplayUnavailableError(
                "the original response can no longer be replayed; use a new Idempotency-Key"
            ) from None
        return CreatedSession.model_validate({**data, "token": token})
