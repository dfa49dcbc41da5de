"""The build queue hour by hour, read from the builds: the backlog at each hour's end and the
waits of the builds that started in it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shipway.accounts.roles import Principal
from shipway.deploys import service
from shipway.fleet import history
from shipway.store import Store
from tests.helpers import new_owner

NOW = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


@pytest.fixture
def owner(store: Store) -> Principal:
    return new_owner(store, "web")


def build(
    store: Store,
    owner: Principal,
    created: timedelta,
    started: timedelta | None = None,
    finished: timedelta | None = None,
    status: str | None = None,
) -> None:
    """A build made CREATED before NOW, started and finished so long before NOW (None: not)."""
    with store.transaction() as session:
        row = service.request(session, owner, "web", ref=None, sha=None, source="git").build
        row.created_at = NOW - created
        row.started_at = NOW - started if started is not None else None
        row.finished_at = NOW - finished if finished is not None else None
        row.status = status or ("succeeded" if finished is not None else "building")
        if started is None and finished is None:
            row.status = "queued"


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def test_backlog_and_waits_hour_by_hour(store: Store, owner: Principal) -> None:
    # Made at 09:50, waited 20 min, started at 10:10.
    build(store, owner, minutes(160), started=minutes(140), finished=minutes(130))
    # Made at 10:20, started at 10:25 (5 min); made at 10:40, started at 11:40 (60 min).
    build(store, owner, minutes(130), started=minutes(125), finished=minutes(120))
    build(store, owner, minutes(110), started=minutes(50), finished=minutes(45))
    # Made at 11:50, cancelled in the queue at 12:10 without starting.
    build(store, owner, minutes(40), finished=minutes(20), status="cancelled")
    # Made at 12:05 and 12:25, still waiting now.
    build(store, owner, minutes(25))
    build(store, owner, minutes(5))
    # Long done before the window: not read.
    build(store, owner, timedelta(days=3), started=timedelta(days=3), finished=timedelta(days=2))

    with store.transaction() as session:
        series = history.build_queue(session, NOW, hours=4)

    assert [h.start.hour for h in series] == [9, 10, 11, 12]
    assert all(h.start.tzinfo is not None for h in series)
    # At 10:00 one waits; at 11:00 the one made at 10:40; at 12:00 the one cancelled later;
    # now the two queued.
    assert [h.backlog for h in series] == [1, 1, 1, 2]
    assert [h.started for h in series] == [0, 2, 1, 0]
    assert series[1].wait_median == pytest.approx(12.5 * 60)
    assert series[1].wait_max == pytest.approx(20 * 60)
    assert series[2].wait_median == series[2].wait_max == pytest.approx(60 * 60)
    assert series[0].wait_median is None and series[3].wait_max is None


def test_a_quiet_fleet_is_all_zeros(store: Store, owner: Principal) -> None:
    with store.transaction() as session:
        series = history.build_queue(session, NOW, hours=24)
    assert len(series) == 24 and series[-1].start == NOW.replace(minute=0)
    assert {(h.backlog, h.started, h.wait_median) for h in series} == {(0, 0, None)}


def test_a_build_waiting_since_before_the_window_counts_in_every_hour(
    store: Store, owner: Principal
) -> None:
    build(store, owner, timedelta(days=2))
    with store.transaction() as session:
        series = history.build_queue(session, NOW, hours=3)
    assert [h.backlog for h in series] == [1, 1, 1]
