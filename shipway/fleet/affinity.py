"""Cache affinity: a build goes first to the builder that last built its app, where its
dependency layers and caches are warm, if that builder is alive, in the build's pool and
frees a slot within WAIT; otherwise to any builder of the pool, which warms its own cache.
A builder with one slot takes pool builds only (see shipway.fleet.slots), so none is waited
for.

The deploy workflow puts the build on the warm builder's own task queue with a
schedule-to-start timeout of WAIT, then on the pool's queue."""

from __future__ import annotations

from collections.abc import Iterable

from shipway.fleet.lifecycle import BuilderState
from shipway.fleet.registry import BuilderRecord

#: Seconds a build waits for the builder with its warm cache to free a slot.
WAIT = 2.0


def warm_builder(
    last: str | None, pool: str, fleet: Iterable[BuilderRecord], now: float
) -> str | None:
    """The builder to try first for a build in POOL whose app was last built by LAST, as the
    FLEET is at NOW; None when there is none worth waiting for."""
    if last is None:
        return None
    for record in fleet:
        if record.id == last:
            seen = record.seen(now)
            alive = seen.state == BuilderState.ACTIVE.value
            if alive and seen.pool == pool and seen.slots > 1:
                return seen.id
            return None
    return None
