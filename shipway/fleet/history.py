"""How the build queue went over the last hours: how many builds waited for a builder, and how
long those that started had waited, hour by hour; read from the builds themselves in one query.

A build waits from its creation until it starts, or until it ends without starting (cancelled or
superseded in the queue); one still queued waits on. The backlog of an hour is the builds
waiting at its end (for the hour under way: now). The waits of an hour are those of the builds
that started in it.
"""

from __future__ import annotations

import bisect
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from shipway.deploys.lifecycle import BuildStatus
from shipway.store.tables import Build

HOUR = timedelta(hours=1)
DEFAULT_HOURS = 24
#: A week of hours at most.
MAX_HOURS = 7 * 24


@dataclass(frozen=True)
class QueueHour:
    """One hour of the build queue; waits are in seconds, None when no build started."""

    start: datetime
    #: Builds waiting at the hour's end (now, for the hour under way).
    backlog: int
    #: Builds that started in the hour.
    started: int
    wait_median: float | None
    wait_max: float | None


def build_queue(session: Session, now: datetime, hours: int = DEFAULT_HOURS) -> list[QueueHour]:
    """The HOURS whole UTC hours up to NOW (the last one under way), oldest first."""
    first = now.replace(minute=0, second=0, microsecond=0) - (hours - 1) * HOUR
    waited_until = func.coalesce(Build.started_at, Build.finished_at)
    rows = session.execute(
        select(Build.created_at, Build.started_at, Build.finished_at).where(
            Build.created_at < now,
            or_(
                waited_until >= first,
                (waited_until.is_(None)) & (Build.status == BuildStatus.QUEUED.value),
            ),
        )
    ).all()
    created = sorted(c for c, _, _ in rows)
    stopped = sorted(until for _, s, f in rows if (until := s or f) is not None)
    waits: list[list[float]] = [[] for _ in range(hours)]
    for made, started, _ in rows:
        if started is not None and started >= first:
            hour = min(int((started - first) / HOUR), hours - 1)
            waits[hour].append(max((started - made).total_seconds(), 0.0))
    series = []
    for index in range(hours):
        start = first + index * HOUR
        at = min(start + HOUR, now)
        backlog = bisect.bisect_right(created, at) - bisect.bisect_right(stopped, at)
        these = waits[index]
        series.append(
            QueueHour(
                start=start,
                backlog=backlog,
                started=len(these),
                wait_median=statistics.median(these) if these else None,
                wait_max=max(these) if these else None,
            )
        )
    return series
