"""The end-of-run leak check: no planted key, engine secret or session token of the whole run
appears, raw or base64-encoded, in any log of the run or in any item the registry stored."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LeakCheck:
    """What must never leak (``planted`` keys, credentials the simulators ``issued``) and the
    registry items of the run (``stored_items``), collected as the run goes."""

    planted: list[str]
    issued: list[str] = field(default_factory=list)
    stored_items: list[dict[str, Any]] = field(default_factory=list)

    def verify(self, logs: str, items_now: list[dict[str, Any]]) -> None:
        """AssertionError unless the run left evidence to search (function logs, idempotency
        records, more than 20 secrets) and no secret appears in ``logs`` or in any stored item."""
        canaries = [*self.planted, *self.issued]
        items = json.dumps(self.stored_items + items_now)
        assert "create_session#" in items, "no idempotency record was kept for the check"
        assert "session created" in logs, "the broker's logs are not in the stack's logs"
        assert "REPORT RequestId" in logs, "the function logs are not in the stack's logs"
        assert len(canaries) > 20, f"only {len(canaries)} secrets to look for"
        for canary in canaries:
            for form in (canary, base64.b64encode(canary.encode()).decode()):
                assert form not in logs, f"a secret ({canary[:12]}...) is in the stack's logs"
                assert form not in items, f"a secret ({canary[:12]}...) is in a stored registry item"
