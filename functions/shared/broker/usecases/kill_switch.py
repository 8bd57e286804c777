"""The operator's kill switch for creates: ``GET|PUT /admin/creates {"paused", "reason"?}``.

While paused, every create answers 503 ``creates-paused`` (``Admission.admit``); each function
reads the flag through a short cache (``CONTROL_CACHE_SECONDS``), so a pause or a resume reaches
every create function within that period.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from broker.control import CreatesSwitch
from broker.models import CreatesRequest, CreatesState, iso
from broker.observability import logger
from broker.timing import Clock, Deadline


@dataclass
class KillSwitch:
    """Reads and sets the creates switch. ``clock`` returns epoch seconds."""

    switch: CreatesSwitch
    clock: Clock = time.time

    def state(self, deadline: Deadline) -> CreatesState:
        """The switch as stored (read past the cache). Raises ``DependencyUnavailableError``."""
        with deadline.applies():
            return _state(self.switch.state(fresh=True))

    def set(self, request: CreatesRequest, deadline: Deadline, operator: str) -> CreatesState:
        """Pause or resume creates (a resume forgets the reason). Raises ``DependencyUnavailableError``."""
        reason = request.reason if request.paused else None
        with deadline.applies():
            state = self.switch.set(paused=request.paused, reason=reason, now=int(self.clock()))
        logger.warning("operator set the creates switch", extra={"paused": request.paused, "operator": operator})
        return _state(state)


def _state(stored: dict[str, Any]) -> CreatesState:
    updated = stored.get("updated_at")
    return CreatesState(
        paused=bool(stored.get("paused")),
        reason=stored.get("reason"),
        updated_at=iso(int(updated)) if isinstance(updated, int | float) else None,
    )
