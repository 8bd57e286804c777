"""List the profiles a client may pick: ``GET /profiles``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from broker.profiles import ProfilesDocument, ProfileSummary, summaries
from broker.timing import Deadline


@dataclass
class ProfileLister:
    """The public side of the profiles document. ``profiles`` returns the validated document
    (``broker.profiles.ProfileCatalog``)."""

    profiles: Callable[[], ProfilesDocument]

    def list(self, deadline: Deadline) -> list[ProfileSummary]:
        """``[{id, title?, engine}]``, the default profile first: never instructions, agent ids,
        URLs or secret field names.

        Raises ``ConfigurationError`` (missing or invalid document) and
        ``DependencyUnavailableError`` (Parameter Store unavailable), both 503.
        """
        with deadline.applies():
            return summaries(self.profiles())
