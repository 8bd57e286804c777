"""``Session Ended`` events on EventBridge, one per session end, for the deployer's billing, CRM
or alerting. Source ``avaturn-session-broker``, detail-type ``Session Ended``, detail
``{session_id, owner, profile, engine, avatar_id, created_at, ended_at, duration_seconds,
end_reason}`` (times ISO-8601 UTC). Never a token or a key.

Delivery is best effort: the event is put after the registry write that ended the session; a
failed put is logged and counted (``EventsFailed``), never an error for the caller.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from broker.models import EndReason, Session, iso
from broker.observability import count, logger

SOURCE = "avaturn-session-broker"
DETAIL_TYPE = "Session Ended"


def ended_detail(session: Session, reason: EndReason, ended_at: int, duration: int) -> dict[str, Any]:
    """The ``detail`` of one ``Session Ended`` event (``duration`` in seconds)."""
    return {
        "session_id": session.session_id,
        "owner": session.owner,
        "profile": session.profile,
        "engine": session.engine,
        "avatar_id": session.avatar_id,
        "created_at": iso(session.created_at),
        "ended_at": iso(ended_at),
        "duration_seconds": duration,
        "end_reason": reason.value,
    }


class SessionEvents:
    """Puts ``Session Ended`` events on ``bus`` (empty: events are off). ``client`` is a boto3
    EventBridge client."""

    def __init__(self, client: Any, bus: str) -> None:
        self._client = client
        self._bus = bus

    def ended(self, session: Session, reason: EndReason, ended_at: int, duration: int) -> None:
        """Put the event of one end; never raises."""
        if not self._bus:
            return
        entry = {
            "Source": SOURCE,
            "DetailType": DETAIL_TYPE,
            "Detail": json.dumps(ended_detail(session, reason, ended_at, duration)),
            "EventBusName": self._bus,
        }
        try:
            out = self._client.put_events(Entries=[entry])
        except (BotoCoreError, ClientError) as exc:
            self._failed(session, type(exc).__name__)
            return
        if out.get("FailedEntryCount"):
            self._failed(session, str(out.get("Entries", [{}])[0].get("ErrorCode", "failed")))

    @staticmethod
    def _failed(session: Session, error: str) -> None:
        count("EventsFailed")
        logger.error("a Session Ended event could not be put", extra={"session_id": session.session_id, "error": error})
