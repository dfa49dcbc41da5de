"""How an app, or a whole organization, delivers to production: the four DORA metrics over a
window of days, with a daily series for charts.

All of it is read from the production deployments that reached a verdict (went live, or
failed) in the window, in one query; a deployment went live at its `finished_at`, which stays
as it was when a newer one retires it. The definitions (docs/delivery.md):

- a *change* is a production deployment that is not a rollback: a push (git, or a webhook's),
  an upload or a config change;
- *deployments*: the changes that went live;
- *lead time*: from a pushed or uploaded change's commit time to the moment it went live;
- a *failure*: a change that failed, or that went live and was undone by a rollback (the next
  production deployment to go live after it was a rollback); the *change failure rate* is the
  failures' share of the changes that went live or failed;
- *time to restore*: from a failure (when it failed; for one undone by a rollback, when it went
  live) to the next production deployment that went live.

Days are UTC days; the window is the last DAYS of them, today (so far) included. Each figure
falls on the day of its deployment's verdict: a failure's restore on the day of the failure.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import Session

from shipway.accounts.roles import Principal, Role
from shipway.apps import service as apps
from shipway.apps.service import PRODUCTION
from shipway.deploys.lifecycle import DeploymentStatus
from shipway.deploys.service import ROLLBACK
from shipway.errors import ValidationError
from shipway.store.tables import App, Deployment, Environment
from shipway.store.types import utcnow

DEFAULT_DAYS = 30
MAX_DAYS = 365
#: The sources of the deployments that built their own commit: only theirs has a lead time.
BUILT = frozenset({"git", "upload"})
_WENT_LIVE = frozenset({DeploymentStatus.LIVE.value, DeploymentStatus.RETIRED.value})
_VERDICTS = (*_WENT_LIVE, DeploymentStatus.FAILED.value)


@dataclass(frozen=True)
class DeliveryDay:
    """One UTC day of the window; durations are in seconds, None where nothing was measured."""

    day: date
    #: Changes that went live.
    deployments: int
    #: Changes that went live or failed.
    changes: int
    #: Of those, the ones that failed or were undone by a rollback.
    failures: int
    change_failure_rate: float | None
    lead_time_median: float | None
    lead_time_p90: float | None
    #: Failures of the day after which a deployment has gone live since.
    restores: int
    time_to_restore_median: float | None


@dataclass(frozen=True)
class Delivery:
    """The window's figures, then its days, oldest first."""

    start: datetime
    end: datetime
    days: int
    deployments: int
    deployments_per_day: float
    lead_time_median: float | None
    lead_time_p90: float | None
    changes: int
    failures: int
    change_failure_rate: float | None
    restores: int
    time_to_restore_median: float | None
    #: Failures with no deployment gone live since: production is still on what it had.
    unrestored: int
    series: list[DeliveryDay]


def for_app(
    session: Session,
    principal: Principal,
    app_name: str,
    days: int = DEFAULT_DAYS,
    *,
    now: datetime | None = None,
) -> Delivery:
    """The delivery metrics of APP_NAME's production over the last DAYS UTC days up to NOW."""
    principal.require(Role.VIEWER)
    app = apps.get(session, principal, app_name)
    return _measure(session, Environment.app_id == app.id, days, now)


def for_organization(
    session: Session, principal: Principal, days: int = DEFAULT_DAYS, *, now: datetime | None = None
) -> Delivery:
    """The delivery metrics of the production of every app of the principal's organization,
    taken together, over the last DAYS UTC days up to NOW."""
    principal.require(Role.VIEWER)
    tenant = select(App.id).where(App.organization_id == principal.organization_id)
    return _measure(session, Environment.app_id.in_(tenant.scalar_subquery()), days, now)


@dataclass
class _Bucket:
    """What one day gathers."""

    deployments: int = 0
    changes: int = 0
    failures: int = 0
    lead_times: list[float] = field(default_factory=list)
    restores: list[float] = field(default_factory=list)
    unrestored: int = 0


@dataclass(frozen=True)
class _Verdict:
    """A production deployment that went live or failed, as the metrics need it."""

    environment_id: int
    status: str
    source: str
    at: datetime
    committed_at: datetime | None

    @property
    def live(self) -> bool:
        return self.status in _WENT_LIVE

    @property
    def change(self) -> bool:
        return self.source != ROLLBACK


def _measure(
    session: Session, which: ColumnElement[bool], days: int, now: datetime | None
) -> Delivery:
    if not 1 <= days <= MAX_DAYS:
        raise ValidationError(f"days must be 1 to {MAX_DAYS}", details={"days": days})
    end = (now or utcnow()).astimezone(UTC)
    first = end.date() - timedelta(days=days - 1)
    start = datetime.combine(first, time.min, UTC)
    buckets = [_Bucket() for _ in range(days)]
    verdicts = [
        _Verdict(environment, status, source, at, committed_at)
        for environment, status, source, at, committed_at in session.execute(
            _verdicts(which, start, end)
        )
        if at is not None  # always so: the query asks for it
    ]
    for environment in _by_environment(verdicts):
        _tally(environment, buckets, first)
    whole = _Bucket(
        deployments=sum(b.deployments for b in buckets),
        changes=sum(b.changes for b in buckets),
        failures=sum(b.failures for b in buckets),
        lead_times=[t for b in buckets for t in b.lead_times],
        restores=[t for b in buckets for t in b.restores],
        unrestored=sum(b.unrestored for b in buckets),
    )
    return Delivery(
        start=start,
        end=end,
        days=days,
        deployments=whole.deployments,
        deployments_per_day=round(whole.deployments / days, 3),
        lead_time_median=_median(whole.lead_times),
        lead_time_p90=_p90(whole.lead_times),
        changes=whole.changes,
        failures=whole.failures,
        change_failure_rate=_rate(whole.failures, whole.changes),
        restores=len(whole.restores),
        time_to_restore_median=_median(whole.restores),
        unrestored=whole.unrestored,
        series=[_day(first + timedelta(days=n), b) for n, b in enumerate(buckets)],
    )


def _verdicts(
    which: ColumnElement[bool], start: datetime, end: datetime
) -> Select[int, str, str, datetime | None, datetime | None]:
    """The deployments of the production environments WHICH selects that went live or failed
    from START to END, environment by environment, in the order of their verdicts."""
    production = select(Environment.id).where(Environment.name == PRODUCTION, which)
    return (
        select(
            Deployment.environment_id,
            Deployment.status,
            Deployment.source,
            Deployment.finished_at,
            Deployment.committed_at,
        )
        .where(
            Deployment.environment_id.in_(production.scalar_subquery()),
            Deployment.status.in_(_VERDICTS),
            Deployment.finished_at >= start,
            Deployment.finished_at <= end,
        )
        .order_by(Deployment.environment_id, Deployment.finished_at, Deployment.id)
    )


def _by_environment(verdicts: list[_Verdict]) -> list[list[_Verdict]]:
    """VERDICTS (ordered by environment, then time) cut into one list per environment."""
    groups: list[list[_Verdict]] = []
    for verdict in verdicts:
        if not groups or groups[-1][0].environment_id != verdict.environment_id:
            groups.append([])
        groups[-1].append(verdict)
    return groups


def _tally(verdicts: Sequence[_Verdict], buckets: list[_Bucket], first: date) -> None:
    """Add one environment's VERDICTS, in time order, to the days' BUCKETS."""
    next_live = _next_live(verdicts)
    for i, verdict in enumerate(verdicts):
        if not verdict.change:
            continue
        bucket = buckets[(verdict.at.date() - first).days]
        bucket.changes += 1
        after = next_live[i]
        if verdict.live:
            bucket.deployments += 1
            if verdict.source in BUILT and verdict.committed_at is not None:
                bucket.lead_times.append(_seconds(verdict.committed_at, verdict.at))
            failed = after is not None and not after.change
        else:
            failed = True
        if not failed:
            continue
        bucket.failures += 1
        if after is None:
            bucket.unrestored += 1
        else:
            bucket.restores.append(_seconds(verdict.at, after.at))


def _next_live(verdicts: Sequence[_Verdict]) -> list[_Verdict | None]:
    """For each of VERDICTS, the first later one that went live (None if none has yet)."""
    found: list[_Verdict | None] = [None] * len(verdicts)
    following: _Verdict | None = None
    for i in range(len(verdicts) - 1, -1, -1):
        found[i] = following
        if verdicts[i].live:
            following = verdicts[i]
    return found


def _day(day: date, bucket: _Bucket) -> DeliveryDay:
    return DeliveryDay(
        day=day,
        deployments=bucket.deployments,
        changes=bucket.changes,
        failures=bucket.failures,
        change_failure_rate=_rate(bucket.failures, bucket.changes),
        lead_time_median=_median(bucket.lead_times),
        lead_time_p90=_p90(bucket.lead_times),
        restores=len(bucket.restores),
        time_to_restore_median=_median(bucket.restores),
    )


def _seconds(start: datetime, end: datetime) -> float:
    """Seconds from START to END; a commit dated after it went live (a clock off) counts 0."""
    return max((end - start).total_seconds(), 0.0)


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def _p90(values: list[float]) -> float | None:
    """The 90th percentile, interpolated between the closest ranks; the value itself alone."""
    if len(values) < 2:
        return round(values[0], 3) if values else None
    return round(statistics.quantiles(values, n=10, method="inclusive")[-1], 3)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
