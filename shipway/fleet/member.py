"""One builder: Temporal workers on its pool's task queue and on its own (builds sent to it
for its warm cache) that share SLOTS, so it runs at most SLOTS builds at once (see
shipway.fleet.slots); and the fleet heartbeat that tells the rest of shipway about it.

Draining (`shipway builders drain ID`, or SIGTERM to a `shipway builder`) stops it taking
tasks; the builds it runs go on to their end, and then it stops and says `drained`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import timedelta
from pathlib import Path

from nats.js import JetStreamContext
from temporalio.client import Client

from shipway import __version__
from shipway.builder.activity import BuilderActivities, Built, builder_name
from shipway.builder.messages import builder_queue, own_queue
from shipway.builder.records import BuildRecords
from shipway.fleet import registry
from shipway.fleet.lifecycle import BUILDERS, BuilderState
from shipway.fleet.slots import SharedSlots
from shipway.store import Store
from shipway.workers import Workers

log = logging.getLogger(__name__)


class Builder:
    def __init__(
        self,
        client: Client,
        records: Store | BuildRecords,
        data_dir: Path,
        js: JetStreamContext,
        *,
        pool: str = "default",
        labels: dict[str, str] | None = None,
        slots: int = 2,
        graceful: float = 960.0,
        name: str | None = None,
        on_built: Built | None = None,
    ) -> None:
        """GRACEFUL: seconds a drain waits for running builds, as long as a build may take
        and a little more; past it they are cancelled and Temporal gives them to another
        builder. A builder inside `shipway up` stops with the server and waits less, and
        records each release it builds at once (ON_BUILT, see BuilderActivities)."""
        self.js = js
        self.pool = pool
        self.labels = dict(labels or {})
        self.slots = slots
        self.id = registry.builder_id(name or builder_name())
        shared = SharedSlots(slots)
        self.activities = BuilderActivities(
            records,
            data_dir,
            js,
            name=self.id,
            slots=shared,
            own_queue=own_queue(self.id),
            on_built=on_built,
        )
        self.workers = [
            Workers(
                client,
                builder_queue(pool),
                workflows=[],
                activities=[self.activities.build],
                graceful=timedelta(seconds=graceful),
                tuner=shared.tuner(),
            ),
            Workers(
                client,
                own_queue(self.id),
                workflows=[],
                activities=[self.activities.build],
                graceful=timedelta(seconds=graceful),
                max_concurrent_activities=1,
            ),
        ]
        self.state = BuilderState.ACTIVE
        self.started_at = time.time()
        self._drain = asyncio.Event()
        self._beating: asyncio.Task[None] | None = None
        #: Whether the heartbeat goes on: cleared on stop, besides cancelling it, since on
        #: Python 3.11 a cancel that lands as an awaited NATS request completes can be lost
        #: (inside asyncio.wait_for), and the heartbeat would then beat on.
        self._beat = True

    @property
    def running(self) -> bool:
        return all(workers.running for workers in self.workers)

    def start(self) -> None:
        """Start taking builds, and heartbeating."""
        for workers in self.workers:
            workers.start()
        self._beating = asyncio.create_task(self._heartbeat(), name=f"fleet-{self.id}")

    def drain(self) -> None:
        """Take no new build; stop once the running ones have ended (see `wait`)."""
        self._drain.set()

    async def wait(self) -> None:
        """Until a drain is asked for (here or through the fleet), then drain and stop."""
        await self._drain.wait()
        await self.stop()

    async def stop(self) -> None:
        """Drain: stop taking builds, let the running ones end, say `drained`."""
        if self.state is BuilderState.DRAINED:
            return
        self.state = BUILDERS.advance(self.state, BuilderState.DRAINING)
        await self._tell("draining")
        await asyncio.gather(*(workers.stop() for workers in self.workers))
        await self._stop_heartbeat()
        self.state = BUILDERS.advance(self.state, BuilderState.DRAINED)
        if await self._tell("drained"):
            with contextlib.suppress(Exception):
                await registry.forget_drain(self.js, self.id)

    async def _tell(self, what: str) -> bool:
        """Put this builder's record; a NATS that is away does not stop a drain."""
        try:
            await asyncio.wait_for(self._put(), registry.HEARTBEAT_EVERY * 2)
        except Exception as e:
            log.warning("builder %s: cannot tell the fleet it is %s: %s", self.id, what, e)
            return False
        return True

    def record(self) -> registry.BuilderRecord:
        return registry.BuilderRecord(
            id=self.id,
            pool=self.pool,
            labels=self.labels,
            slots=self.slots,
            busy=self.activities.running,
            version=__version__,
            state=self.state.value,
            started_at=self.started_at,
            heartbeat_at=time.time(),
        )

    async def _put(self) -> None:
        await registry.put(self.js, self.record())

    async def _stop_heartbeat(self) -> None:
        """End the heartbeat, waiting at most a beat and a bit: a lost cancel ends it at the
        top of its next beat, and it puts nothing after its last."""
        self._beat = False
        if self._beating is None:
            return
        self._beating.cancel()
        await asyncio.wait({self._beating}, timeout=registry.HEARTBEAT_EVERY * 3)
        if not self._beating.done():
            log.warning("builder %s: the fleet heartbeat did not stop", self.id)

    async def _heartbeat(self) -> None:
        while self._beat:
            try:
                await self._put()
                if await registry.drain_requested(self.js, self.id):
                    log.info("builder %s: asked to drain", self.id)
                    self.drain()
            except Exception as e:  # NATS away for a moment; the builds go on
                log.warning("builder %s: fleet heartbeat failed: %s", self.id, e)
            await asyncio.sleep(registry.HEARTBEAT_EVERY)


async def serve(builder: Builder, stop: asyncio.Event) -> None:
    """Until STOP (a signal) or a drain through the fleet; then drain BUILDER (started)."""
    stopping = asyncio.ensure_future(stop.wait())
    draining = asyncio.ensure_future(builder.wait())
    await asyncio.wait({stopping, draining}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not draining.done():
        builder.drain()
    await draining
