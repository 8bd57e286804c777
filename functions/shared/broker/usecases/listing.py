"""The operator's list of open sessions: ``GET /admin/sessions?status=&owner=&limit=&cursor=``.

A page is one query of an index (``sweep-index`` by status, ``owner-index`` for one owner), never a
scan; the ``cursor`` names the last session read, so the next page starts right after it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from broker.errors import InvalidRequestError
from broker.models import AdminListQuery, AdminSessionPage, AdminSessionView, Status
from broker.store import SessionStore
from broker.timing import Deadline
from broker.usecases.read import SESSION_ID


class _Cursor(BaseModel):
    """What a cursor holds: the id and ``due_at`` of the last session of a page."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    id: str = Field(pattern=SESSION_ID.pattern)
    due: int = Field(ge=0, le=10**11)


def encode_cursor(after: tuple[str, int]) -> str:
    """An opaque cursor (base64url JSON) naming the session ``after`` = ``(session_id, due_at)``."""
    raw = _Cursor(id=after[0], due=after[1]).model_dump_json().encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, int]:
    """The ``(session_id, due_at)`` a cursor names. Raises ``InvalidRequestError`` for anything
    ``encode_cursor`` did not make."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        parsed = _Cursor.model_validate(json.loads(raw))
    except (binascii.Error, ValueError, ValidationError):
        raise InvalidRequestError(
            "the cursor is not one this API returned", [{"loc": "query:cursor", "msg": "invalid"}]
        ) from None
    return parsed.id, parsed.due


@dataclass
class SessionLister:
    """Lists open sessions for the operator."""

    store: SessionStore

    def page(self, query: AdminListQuery, deadline: Deadline) -> AdminSessionPage:
        """One page of the open sessions of ``query.status`` (of ``query.owner``, or of every
        owner), the first due first, and the cursor of the next page if there may be one.

        Raises ``InvalidRequestError`` for a cursor this API did not return and
        ``DependencyUnavailableError`` when the registry fails.
        """
        after = decode_cursor(query.cursor) if query.cursor else None
        with deadline.applies():
            sessions, last = self.store.page(Status(query.status), query.owner, query.limit, after)
        return AdminSessionPage(
            sessions=[AdminSessionView.of(s) for s in sessions],
            cursor=encode_cursor(last) if last else None,
        )
