"""The end-of-run leak check: no planted key, engine secret or session token of the whole run
appears, raw or base64-encoded, in any log of the run or in any item the registry stored; and no
part of a profile's recipe (instructions, agent id, engine URL, header value) appears there or in
any response of the broker."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any


def recipe_secrets(document: dict[str, Any], secret: dict[str, Any]) -> list[str]:
    """What of a profiles document a client must never see: every profile's instructions, agent
    id and engine URL, and the values of the headers its external engines get from ``secret``."""
    found: list[str] = []
    for profile in document["profiles"].values():
        found += [profile.get("openai", {}).get("instructions"), profile.get("cartesia", {}).get("agent_id")]
        external = profile.get("external", {})
        found.append(external.get("url"))
        found += list(secret.get(external.get("headers_secret_field"), {}).values())
    return sorted({value for value in found if value})


@dataclass
class LeakCheck:
    """What must never leak (``planted`` keys, credentials the simulators ``issued``, the profiles'
    ``recipes``) and what to search: the registry items of the run (``stored_items``) and the
    broker's response bodies (``responses``), collected as the run goes."""

    planted: list[str]
    recipes: list[str] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)
    stored_items: list[dict[str, Any]] = field(default_factory=list)
    responses: list[str] = field(default_factory=list)

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
        assert len(self.responses) > 5, "the broker's responses were not collected"
        assert '"profile"' in "".join(self.responses), "no profile was used"
        for recipe in self.recipes:
            for form in (recipe, base64.b64encode(recipe.encode()).decode()):
                assert form not in logs, f"a profile's recipe ({recipe[:12]}...) is in the stack's logs"
                assert form not in items, f"a profile's recipe ({recipe[:12]}...) is in a stored registry item"
                assert all(form not in r for r in self.responses), (
                    f"a profile's recipe ({recipe[:12]}...) is in a response"
                )
