"""The delivery metrics over real rows: deployments made with chosen times, on SQLite and on
PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from shipway.accounts.roles import Principal, Role
from shipway.deploys import delivery
from shipway.deploys.lifecycle import DeploymentStatus
from shipway.errors import NotFound, ValidationError
from shipway.store import Store
from shipway.store.tables import App, Deployment, Environment
from tests.helpers import new_owner

NOW = datetime(2026, 6, 30, 15, 0, tzinfo=UTC)
HOUR = 3600.0
LIVE, RETIRED, FAILED = DeploymentStatus.LIVE, DeploymentStatus.RETIRED, DeploymentStatus.FAILED


def at(day: int, hour: float = 12.0) -> datetime:
    """A moment of June 2026 (the window of 30 days up to NOW is June)."""
    return datetime(2026, 6, day, tzinfo=UTC) + timedelta(hours=hour)


def deployed(
    store: Store,
    app: str,
    status: DeploymentStatus,
    finished: datetime,
    *,
    source: str = "git",
    lead: float | None = None,
    environment: str = "production",
) -> None:
    """A deployment of APP that ended as STATUS at FINISHED (went live then, for a live or
    retired one), of a commit made LEAD hours before."""
    with store.transaction() as session:
        app_id = session.scalar(select(App.id).where(App.name == app).order_by(App.id))
        env_id = session.scalar(
            select(Environment.id).where(
                Environment.app_id == app_id, Environment.name == environment
            )
        )
        if env_id is None:  # a preview, made on first use
            env = Environment(app_id=app_id, name=environment, kind="preview")
            session.add(env)
            session.flush()
            env_id = env.id
        session.add(
            Deployment(
                app_id=app_id,
                environment_id=env_id,
                status=status.value,
                source=source,
                commit_sha="a" * 40 if lead is not None else None,
                author="Ada <ada@example.com>" if lead is not None else None,
                committed_at=finished - timedelta(hours=lead) if lead is not None else None,
                created_at=finished - timedelta(minutes=5),
                finished_at=finished,
            )
        )


@pytest.fixture
def owner(store: Store) -> Principal:
    return new_owner(store, "web", "api")


def test_no_deployments_give_zeros_and_nulls_for_every_day(store: Store, owner: Principal) -> None:
    with store.transaction() as session:
        found = delivery.for_app(session, owner, "web", now=NOW)
    assert (found.deployments, found.changes, found.failures, found.restores) == (0, 0, 0, 0)
    assert found.deployments_per_day == 0.0 and found.unrestored == 0
    assert found.lead_time_median is found.lead_time_p90 is None
    assert found.change_failure_rate is found.time_to_restore_median is None
    assert found.start == datetime(2026, 6, 1, tzinfo=UTC) and found.end == NOW
    assert [d.day for d in found.series] == [date(2026, 6, n) for n in range(1, 31)]
    assert all(d.deployments == 0 and d.change_failure_rate is None for d in found.series)


def test_deploy_frequency_counts_the_changes_that_went_live_each_day(
    store: Store, owner: Principal
) -> None:
    for hour in (9, 10, 11):
        deployed(store, "web", RETIRED, at(3, hour))
    deployed(store, "web", RETIRED, at(10), source="upload")
    deployed(store, "web", RETIRED, at(11), source="config")
    deployed(store, "web", LIVE, at(30, 14))
    # Not counted: before the window, a preview's, a stopped one, and the moment after NOW.
    deployed(store, "web", RETIRED, datetime(2026, 5, 31, 23, 59, tzinfo=UTC))
    deployed(store, "web", RETIRED, at(3), environment="feature")
    deployed(store, "web", DeploymentStatus.SUPERSEDED, at(3))
    deployed(store, "web", RETIRED, NOW + timedelta(seconds=1))
    with store.transaction() as session:
        found = delivery.for_app(session, owner, "web", now=NOW)
    per_day = {d.day.day: d.deployments for d in found.series if d.deployments}
    assert per_day == {3: 3, 10: 1, 11: 1, 30: 1}
    assert found.deployments == 6 and found.deployments_per_day == round(6 / 30, 3)
    assert (found.changes, found.failures, found.change_failure_rate) == (6, 0, 0.0)


def test_lead_time_runs_from_the_commit_to_live_for_pushed_changes_only(
    store: Store, owner: Principal
) -> None:
    for lead in (1, 2, 3, 10):
        deployed(store, "web", RETIRED, at(5), lead=lead)
    deployed(store, "web", RETIRED, at(6), lead=4)
    # A config change and a rollback carry their release's commit, made long before: no lead
    # time of theirs; an upload without a commit has none either.
    deployed(store, "web", RETIRED, at(6, 13), source="config", lead=500)
    deployed(store, "web", LIVE, at(6, 14), source="rollback", lead=600)
    deployed(store, "web", RETIRED, at(7), source="upload")
    with store.transaction() as session:
        found = delivery.for_app(session, owner, "web", 30, now=NOW)
    day5, day6, day7 = (found.series[n] for n in (4, 5, 6))
    assert day5.lead_time_median == 2.5 * HOUR
    # Between the closest ranks: 3 h + 0.7 * (10 h - 3 h).
    assert day5.lead_time_p90 == pytest.approx(7.9 * HOUR)
    assert day6.lead_time_median == day6.lead_time_p90 == 4 * HOUR
    assert day7.deployments == 1 and day7.lead_time_median is None
    assert found.lead_time_median == 3 * HOUR
    assert found.lead_time_p90 == pytest.approx(7.6 * HOUR)


def test_a_failure_counts_until_the_next_deployment_goes_live(
    store: Store, owner: Principal
) -> None:
    deployed(store, "web", RETIRED, at(2, 9))
    deployed(store, "web", FAILED, at(2, 10))
    deployed(store, "web", FAILED, at(2, 11))
    deployed(store, "web", RETIRED, at(2, 11.5))
    deployed(store, "web", FAILED, at(20))
    deployed(store, "web", LIVE, at(21))
    deployed(store, "web", FAILED, at(29))
    with store.transaction() as session:
        found = delivery.for_app(session, owner, "web", now=NOW)
    day2, day20, day29 = found.series[1], found.series[19], found.series[28]
    assert (day2.changes, day2.failures, day2.change_failure_rate) == (4, 2, 0.5)
    assert (day2.restores, day2.time_to_restore_median) == (2, 1.0 * HOUR)
    assert (day20.restores, day20.time_to_restore_median) == (1, 24 * HOUR)
    assert (day29.failures, day29.restores, day29.time_to_restore_median) == (1, 0, None)
    assert (found.changes, found.failures) == (7, 4)
    assert found.change_failure_rate == round(4 / 7, 4)
    assert (found.restores, found.unrestored) == (3, 1)
    assert found.time_to_restore_median == 1.5 * HOUR


def test_a_change_undone_by_a_rollback_is_a_failure_restored_when_the_rollback_went_live(
    store: Store, owner: Principal
) -> None:
    deployed(store, "web", RETIRED, at(8, 9), lead=1)
    deployed(store, "web", RETIRED, at(8, 10), lead=1)
    deployed(store, "web", FAILED, at(8, 11), source="rollback")  # tried, never live
    deployed(store, "web", LIVE, at(8, 12), source="rollback")
    with store.transaction() as session:
        found = delivery.for_app(session, owner, "web", now=NOW)
    day8 = found.series[7]
    # The rollbacks are not changes: two changes, the second undone by the rollback.
    assert (day8.deployments, day8.changes, day8.failures) == (2, 2, 1)
    assert day8.change_failure_rate == 0.5
    assert (day8.restores, day8.time_to_restore_median) == (1, 2 * HOUR)
    assert found.unrestored == 0


def test_the_window_is_the_last_days_up_to_now(store: Store, owner: Principal) -> None:
    deployed(store, "web", RETIRED, at(23, 23.5))
    deployed(store, "web", RETIRED, at(24, 0.5))
    deployed(store, "web", LIVE, at(30, 1))
    with store.transaction() as session:
        week = delivery.for_app(session, owner, "web", 7, now=NOW)
        today = delivery.for_app(session, owner, "web", 1, now=NOW)
    assert week.start == datetime(2026, 6, 24, tzinfo=UTC)
    assert [d.deployments for d in week.series] == [1, 0, 0, 0, 0, 0, 1]
    assert today.deployments == 1 and today.deployments_per_day == 1.0


def test_an_organization_takes_every_apps_production_together(
    store: Store, owner: Principal
) -> None:
    deployed(store, "web", RETIRED, at(4, 9), lead=2)
    deployed(store, "web", FAILED, at(4, 10))
    deployed(store, "api", LIVE, at(4, 11), lead=4)  # another app: restores nothing of web's
    deployed(store, "web", LIVE, at(4, 13))
    other = new_owner(store, "web", organization="other")
    with store.transaction() as session:
        other_app = session.scalar(
            select(App.id).where(App.name == "web", App.organization_id == other.organization_id)
        )
        env = session.scalar(select(Environment.id).where(Environment.app_id == other_app))
        assert other_app is not None and env is not None
        session.add(
            Deployment(
                app_id=other_app,
                environment_id=env,
                status=LIVE.value,
                source="git",
                finished_at=at(4, 12),
            )
        )
    with store.transaction() as session:
        found = delivery.for_organization(session, owner, now=NOW)
        theirs = delivery.for_organization(session, other, now=NOW)
    assert (found.deployments, found.changes, found.failures) == (3, 4, 1)
    assert found.time_to_restore_median == 3 * HOUR
    assert found.lead_time_median == 3 * HOUR
    assert (theirs.deployments, theirs.changes) == (1, 1)


def test_days_out_of_range_and_another_tenants_app_are_refused(
    store: Store, owner: Principal
) -> None:
    viewer = Principal(owner.organization_id, Role.VIEWER, "token:1")
    stranger = new_owner(store, organization="stranger")
    with store.transaction() as session:
        assert delivery.for_app(session, viewer, "web", now=NOW).days == 30
        for days in (0, 366):
            with pytest.raises(ValidationError):
                delivery.for_app(session, viewer, "web", days, now=NOW)
        with pytest.raises(NotFound):
            delivery.for_app(session, stranger, "web", now=NOW)
