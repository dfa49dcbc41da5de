"""The autoscaler: every few seconds, sizes each pool that has a policy (`pools:` in the fleet
rules, see shipway.fleet.sizing) to the load it carries, and asks for that size when it
changes: by running the pool's command (`COMMAND POOL COUNT`), by POSTing to its webhook,
or, with neither, by starting and draining local builder processes itself. A pool with min
0 scales to zero when idle and is woken by the next queued build."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
import time
from dataclasses import asdict, dataclass

import httpx
from nats.aio.subscription import Subscription

from shipway import children, eventbus
from shipway.fleet import load
from shipway.fleet.lifecycle import BuilderState
from shipway.fleet.local import LocalBuilders
from shipway.fleet.sizing import Policy, PoolLoad, Sizer
from shipway.links import NatsLink
from shipway.store import Store

log = logging.getLogger(__name__)

#: Seconds between looks at the pools.
EVERY = 2.0
#: Seconds a scaling command or webhook may take.
ACT_TIMEOUT = 60.0
#: The events of an app that queue a build (shipway.deploys.service.request).
QUEUEING = ("push", "deploy.upload")


@dataclass(frozen=True)
class Sizing:
    """A pool's load, and the builders it should have."""

    pool: str
    load: PoolLoad
    desired: int


class Autoscaler:
    def __init__(
        self,
        store: Store,
        link: NatsLink,
        policies: dict[str, Policy],
        local: LocalBuilders | None,
    ) -> None:
        self.store = store
        self.link = link
        self.js = link.js
        self.policies = policies
        self.local = local
        #: The last sizing of each pool.
        self.sizing: dict[str, Sizing] = {}
        self._asked: dict[str, int] = {}
        self._sizers: dict[str, Sizer] = {}
        self._task: asyncio.Task[None] | None = None
        self._poked = asyncio.Event()
        self._subscriptions: list[Subscription] = []

    def poke(self) -> None:
        """Look now rather than at the next tick: a build was queued (perhaps for a pool
        scaled to zero)."""
        self._poked.set()

    async def start(self) -> None:
        """Size the pools every EVERY seconds, and at once whenever a build is queued, by a
        push or an upload through any control plane (their events, shipway.eventbus)."""

        async def queued(_: object) -> None:
            self.poke()

        for action in QUEUEING:
            self._subscriptions.append(
                await self.link.nc.subscribe(eventbus.subject("app", "*", action), cb=queued)
            )
        self._task = asyncio.create_task(self._run(), name="autoscaler")

    async def close(self) -> None:
        for subscription in self._subscriptions:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def step(self, now: float | None = None) -> list[Sizing]:
        """Size every pool with a policy once, asking for a new size where it changed."""
        now = time.time() if now is None else now
        fleet, loads = await load.measure(self.store, self.js, now)
        sized = []
        for pool, policy in self.policies.items():
            current = loads.get(pool, PoolLoad(0, 0, 0, 0))
            want = self._sizers.setdefault(pool, Sizer(policy)).size(current, now)
            sizing = Sizing(pool, current, want)
            self.sizing[pool] = sizing
            sized.append(sizing)
            if self._asked.get(pool) != want:
                others = {
                    r.id for r in fleet if r.pool == pool and r.state == BuilderState.ACTIVE.value
                }
                if self.local is not None:
                    others -= self.local.ids(pool)
                await self._ask(policy, sizing, len(others))
        return sized

    async def _run(self) -> None:
        while True:
            try:
                await self.step()
            except Exception as e:  # the store or NATS away for a moment: look again
                log.warning("autoscaler: %s", e)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(EVERY):
                    await self._poked.wait()
            self._poked.clear()

    async def _ask(self, policy: Policy, sizing: Sizing, elsewhere: int) -> None:
        """Ask for SIZING; ELSEWHERE: the pool's active builders not run here."""
        log.info(
            "pool %s: %d builders wanted (%d now, %d/%d slots busy, %d queued)",
            sizing.pool,
            sizing.desired,
            sizing.load.builders,
            sizing.load.busy,
            sizing.load.slots,
            sizing.load.queued,
        )
        try:
            if policy.command:
                await _run_command(policy.command, sizing)
            elif policy.webhook:
                await _post(policy.webhook, sizing)
            elif self.local is not None:
                self.local.keep(sizing.pool, max(sizing.desired - elsewhere, 0), policy.slots)
        except Exception as e:  # asked again at the next look
            log.warning("pool %s: scaling to %d failed: %s", sizing.pool, sizing.desired, e)
            return
        self._asked[sizing.pool] = sizing.desired


async def _run_command(command: str, sizing: Sizing) -> None:
    process = await children.start(
        *shlex.split(command),
        sizing.pool,
        str(sizing.desired),
        stdin=children.DEVNULL,
        stdout=children.PIPE,
        stderr=children.STDOUT,
    )
    try:
        async with asyncio.timeout(ACT_TIMEOUT):
            output, _ = await process.communicate()
    except TimeoutError:
        process.kill()
        raise
    if process.returncode != 0:
        said = output.decode(errors="replace").strip()[-500:]
        raise RuntimeError(f"{command} exited with {process.returncode}: {said}")


async def _post(url: str, sizing: Sizing) -> None:
    body = {"pool": sizing.pool, "desired": sizing.desired, "load": asdict(sizing.load)}
    async with httpx.AsyncClient(timeout=ACT_TIMEOUT) as client:
        response = await client.post(url, json=body)
        response.raise_for_status()
