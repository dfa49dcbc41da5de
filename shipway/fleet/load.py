"""How loaded each pool is: its live builders and their slots from the fleet, its queued
builds from the store. What the autoscaler sizes pools by, and what the API and /metrics
show."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from nats.js import JetStreamContext
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shipway.deploys.lifecycle import BuildStatus
from shipway.fleet import registry
from shipway.fleet.lifecycle import BuilderState
from shipway.fleet.registry import BuilderRecord
from shipway.fleet.sizing import PoolLoad
from shipway.store import Store
from shipway.store.tables import Build


@dataclass(frozen=True)
class Queued:
    builds: int
    oldest: datetime


def queued(session: Session) -> dict[str, Queued]:
    """Builds waiting for a builder, by pool: how many, and since when the oldest waits."""
    rows = session.execute(
        select(Build.pool, func.count(), func.min(Build.created_at))
        .where(Build.status == BuildStatus.QUEUED.value)
        .group_by(Build.pool)
    )
    return {pool: Queued(count, oldest) for pool, count, oldest in rows}


def loads(
    fleet: Iterable[BuilderRecord], waiting: dict[str, Queued], now: datetime
) -> dict[str, PoolLoad]:
    """Each pool with a live builder or a queued build, as it is at NOW."""
    pools: dict[str, PoolLoad] = {}
    for record in fleet:
        if record.state != BuilderState.ACTIVE.value:
            continue  # draining builders take no new build; lost ones none at all
        was = pools.get(record.pool, PoolLoad(0, 0, 0, 0))
        pools[record.pool] = PoolLoad(
            builders=was.builders + 1,
            slots=was.slots + record.slots,
            busy=was.busy + min(record.busy, record.slots),
            queued=0,
        )
    for pool, queue in waiting.items():
        was = pools.get(pool, PoolLoad(0, 0, 0, 0))
        pools[pool] = PoolLoad(
            builders=was.builders,
            slots=was.slots,
            busy=was.busy,
            queued=queue.builds,
            oldest_wait=max((now - queue.oldest).total_seconds(), 0.0),
        )
    return dict(sorted(pools.items()))


async def measure(
    store: Store, js: JetStreamContext, now: float
) -> tuple[list[BuilderRecord], dict[str, PoolLoad]]:
    """The fleet as of NOW, and each pool's load: what the autoscaler and the API read."""
    fleet = await registry.builders(js, now)

    def waiting() -> dict[str, Queued]:
        with store.transaction() as session:
            return queued(session)

    found = loads(fleet, await asyncio.to_thread(waiting), datetime.fromtimestamp(now, UTC))
    return fleet, found


def utilisation(load: PoolLoad) -> float:
    """The share of the pool's slots in use (0 with no slot)."""
    return load.busy / load.slots if load.slots else 0.0


def average_load(fleet: Iterable[BuilderRecord], pool: str) -> float:
    """The mean share of its slots each active builder of POOL has in use."""
    shares = [
        min(r.busy, r.slots) / r.slots
        for r in fleet
        if r.pool == pool and r.state == BuilderState.ACTIVE.value and r.slots
    ]
    return sum(shares) / len(shares) if shares else 0.0
