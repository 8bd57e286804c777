"""Usage for the operator's billing: ``GET /admin/usage?from=&to=&group_by=owner|engine|profile|day``.

The registry adds every ended session that reached Avaturn to an aggregate of its UTC day (the
day it was created), owner, engine and profile as it ends (``SessionStore.finish``); a report is
one query of the ``usage-index`` per day, never a scan, so a range is at most ``MAX_DAYS`` long.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

from broker.errors import InvalidRequestError
from broker.models import UsageQuery, UsageReport, UsageRow, UsageTotals
from broker.store import SessionStore, utc_day
from broker.timing import Clock, Deadline

MAX_DAYS = 93
"""The longest range one report reads (a quarter): one registry query per day."""


@dataclass
class UsageReporter:
    """Reports usage from the registry's aggregates. ``clock`` returns epoch seconds."""

    store: SessionStore
    clock: Clock = time.time

    def report(self, query: UsageQuery, deadline: Deadline) -> UsageReport:
        """Sessions ended and seconds used from ``query.from_`` to ``query.to`` (UTC days, both
        included; either defaults to the other, both to today), grouped by ``query.group_by``.

        Raises ``InvalidRequestError`` for a date that does not exist, a range that ends before it
        starts or is longer than ``MAX_DAYS``; ``DependencyUnavailableError`` when the registry fails.
        """
        today = utc_day(int(self.clock()))
        first = _day(query.from_ or query.to or today, "from")
        last = _day(query.to or query.from_ or today, "to")
        days = (last - first).days + 1
        if not 1 <= days <= MAX_DAYS:
            raise InvalidRequestError(
                f"the range must run forwards and span at most {MAX_DAYS} days",
                [{"loc": "query:to", "msg": f"from..to must be 1 to {MAX_DAYS} days"}],
            )
        groups: dict[str, UsageTotals] = defaultdict(UsageTotals)
        with deadline.applies():
            for offset in range(days):
                for row in self.store.usage((first + timedelta(days=offset)).isoformat()):
                    group = groups[str(row[query.group_by])]
                    group.sessions += row["sessions"]
                    group.seconds += row["seconds"]
        rows = [UsageRow(key=key, **totals.model_dump()) for key, totals in groups.items()]
        if query.group_by == "day":
            rows.sort(key=lambda r: r.key)
        else:
            rows.sort(key=lambda r: (-r.seconds, -r.sessions, r.key))
        total = UsageTotals(sessions=sum(r.sessions for r in rows), seconds=sum(r.seconds for r in rows))
        period = {"from_": first.isoformat(), "to": last.isoformat()}
        return UsageReport(**period, group_by=query.group_by, rows=rows, total=total)


def _day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidRequestError(
            f"{name} must be a UTC day, YYYY-MM-DD", [{"loc": f"query:{name}", "msg": "not a date"}]
        ) from None
