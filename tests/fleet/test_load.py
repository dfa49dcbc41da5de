"""How loaded each pool is: its active builders and their slots from a real NATS registry,
its queued builds and how long the oldest has waited from a real store."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from nats.js import JetStreamContext

from shipway.accounts.roles import Principal
from shipway.deploys import service
from shipway.fleet import load, registry
from shipway.fleet.registry import BuilderRecord
from shipway.fleet.sizing import PoolLoad
from shipway.store import Store
from tests.helpers import new_owner

pytestmark = pytest.mark.integration

QUEUED_AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def owner(store: Store) -> Principal:
    return new_owner(store, "a", "b", "c")


def queue(store: Store, owner: Principal, app: str, pool: str, waiting: float) -> int:
    """A build of APP queued for POOL, WAITING seconds before QUEUED_AT plus a minute."""
    with store.transaction() as session:
        build = service.request(session, owner, app, ref=None, sha=None, source="git").build
        build.pool = pool
        build.created_at = QUEUED_AT + timedelta(seconds=60 - waiting)
        return build.id


def record(pool: str, slots: int, busy: int, state: str = "active") -> BuilderRecord:
    now = QUEUED_AT.timestamp() + 60
    return BuilderRecord(
        id=f"b-{uuid.uuid4().hex[:8]}",
        pool=pool,
        slots=slots,
        busy=busy,
        state=state,
        heartbeat_at=now,
    )


def test_queued_builds_are_counted_by_pool_with_the_oldest_wait(
    store: Store, owner: Principal
) -> None:
    queue(store, owner, "a", "fast", waiting=5)
    queue(store, owner, "b", "fast", waiting=45)
    queue(store, owner, "c", "eu", waiting=10)
    with store.transaction() as session:
        found = load.queued(session)
    assert {pool: q.builds for pool, q in found.items()} == {"fast": 2, "eu": 1}
    assert found["fast"].oldest == QUEUED_AT + timedelta(seconds=15)


def test_only_active_builders_carry_a_pools_load_and_busy_never_exceeds_slots() -> None:
    fleet = [
        record("p", slots=2, busy=1),
        record("p", slots=4, busy=9),  # more than its slots, as a record may say
        record("p", slots=8, busy=0, state="draining"),
        record("p", slots=8, busy=0, state="lost"),
        record("idle", slots=2, busy=0),
    ]
    waiting = {"p": load.Queued(3, QUEUED_AT), "empty": load.Queued(1, QUEUED_AT)}
    found = load.loads(fleet, waiting, QUEUED_AT + timedelta(seconds=30))
    assert found == {
        "empty": PoolLoad(0, 0, 0, 1, oldest_wait=30.0),
        "idle": PoolLoad(1, 2, 0, 0),
        "p": PoolLoad(builders=2, slots=6, busy=5, queued=3, oldest_wait=30.0),
    }
    assert list(found) == ["empty", "idle", "p"]
    assert load.utilisation(found["p"]) == 5 / 6 and load.utilisation(found["empty"]) == 0.0
    assert load.average_load(fleet, "p") == (1 / 2 + 4 / 4) / 2
    assert load.average_load(fleet, "nobody") == 0.0


async def test_a_pools_load_is_measured_from_the_fleet_and_the_store(
    store: Store, owner: Principal, js: JetStreamContext
) -> None:
    pool = f"p-{uuid.uuid4().hex[:8]}"
    builders = [record(pool, slots=2, busy=2), record(pool, slots=2, busy=1)]
    drained = record(pool, slots=2, busy=0, state="drained")
    for builder in (*builders, drained):
        await registry.put(js, builder)
    try:
        queue(store, owner, "a", pool, waiting=20)
        queue(store, owner, "b", pool, waiting=40)
        queue(store, owner, "c", "elsewhere", waiting=0)
        now = QUEUED_AT.timestamp() + 60
        fleet, loads = await load.measure(store, js, now)
        assert {r.id for r in (*builders, drained)} <= {r.id for r in fleet}
        assert loads[pool] == PoolLoad(builders=2, slots=4, busy=3, queued=2, oldest_wait=40.0)
        assert loads["elsewhere"].queued == 1
    finally:
        kv = await registry.bucket(js)
        for builder in (*builders, drained):
            await kv.delete(builder.id)
