"""A builder's slots: how many builds it runs at once, whichever queue they come from.

A builder has two Temporal workers. The one on its pool's queue reserves a slot here before
each poll (so it never takes a pool build it has no slot for). The one on the builder's own
queue (builds sent to it for its warm cache) polls with no slot; a build it takes claims one
at its start, waiting at most the affinity wait, and is handed back to the pool if none
frees (see shipway.fleet.affinity). A claim is served before a pool poll: it has a build in
hand. The pool worker holds one slot for polling, not more (the SDK would reserve ahead),
so an idle builder with two slots has one for a claim. The SDK may release slots from
another thread, hence the lock."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

from temporalio.worker import (
    CustomSlotSupplier,
    FixedSizeSlotSupplier,
    SlotMarkUsedContext,
    SlotPermit,
    SlotReleaseContext,
    SlotReserveContext,
    WorkerTuner,
)


class _Permit(SlotPermit):
    used = False


@dataclass(eq=False)
class _Waiter:
    claim: bool
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None] = field(init=False)
    #: Set under the lock once a slot is given: the future may be cancelled before it is set.
    given: bool = False

    def __post_init__(self) -> None:
        self.future = self.loop.create_future()


class SharedSlots(CustomSlotSupplier):
    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._free = slots
        #: Slots held by pool polls that have no build yet: one at most.
        self._polls = 0
        self._waiting: list[_Waiter] = []
        self._lock = threading.Lock()

    @property
    def free(self) -> int:
        return self._free

    async def claim(self, wait: float) -> bool:
        """A slot for a build taken from the builder's own queue, if one frees within WAIT
        seconds; give it back with `release`."""
        try:
            async with asyncio.timeout(wait):
                await self._take(claim=True)
        except TimeoutError:
            return False
        return True

    def release(self, poll: bool = False) -> None:
        """A slot is free again (held by a pool POLL that got no build)."""
        with self._lock:
            self._free += 1
            if poll:
                self._polls -= 1
            given = self._give()
        if given is not None:
            given.loop.call_soon_threadsafe(_settle, given.future)

    async def reserve_slot(self, ctx: SlotReserveContext) -> SlotPermit:
        await self._take(claim=False)
        return _Permit()

    def try_reserve_slot(self, ctx: SlotReserveContext) -> SlotPermit | None:
        return None  # builders take no eager tasks

    def mark_slot_used(self, ctx: SlotMarkUsedContext) -> None:
        if isinstance(ctx.permit, _Permit) and not ctx.permit.used:
            with self._lock:
                ctx.permit.used = True
                self._polls -= 1
                given = self._give()  # the pool may be polled again
            if given is not None:
                given.loop.call_soon_threadsafe(_settle, given.future)

    def release_slot(self, ctx: SlotReleaseContext) -> None:
        self.release(poll=isinstance(ctx.permit, _Permit) and not ctx.permit.used)

    def tuner(self) -> WorkerTuner:
        """The pool worker's tuner: its activity slots are these (a builder runs no workflow)."""
        one = FixedSizeSlotSupplier(1)
        return WorkerTuner.create_composite(
            workflow_supplier=one,
            activity_supplier=self,
            local_activity_supplier=one,
            nexus_supplier=one,
        )

    def _allowed(self, claim: bool) -> bool:
        return self._free > 0 and (claim or self._polls == 0)

    def _give(self) -> _Waiter | None:
        """The waiter to give a free slot to, the longest waiting claim first; lock held."""
        for claim in (True, False):
            waiter = next((w for w in self._waiting if w.claim is claim), None)
            if waiter is not None and self._allowed(claim):
                self._waiting.remove(waiter)
                self._hold(claim)
                waiter.given = True
                return waiter
        return None

    def _hold(self, claim: bool) -> None:
        self._free -= 1
        if not claim:
            self._polls += 1

    async def _take(self, *, claim: bool) -> None:
        waiter = _Waiter(claim, asyncio.get_running_loop())
        with self._lock:
            ahead = [w for w in self._waiting if w.claim or not claim]
            if self._allowed(claim) and not ahead:
                self._hold(claim)
                return
            self._waiting.append(waiter)
        try:
            await waiter.future
        except asyncio.CancelledError:
            with self._lock:
                if waiter in self._waiting:
                    self._waiting.remove(waiter)
            if waiter.given:  # the slot came as the wait was called off: pass it on
                self.release(poll=not claim)
            raise


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
