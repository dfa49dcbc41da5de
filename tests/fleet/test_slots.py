"""A builder's shared slots: never more taken than there are, whether by pool polls or by
claims of builds sent to the builder; the pool holds one slot for polling, not more; a claim
is served first and gives up after its wait; a wait called off loses no slot."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from temporalio.worker import SlotPermit

from shipway.fleet.slots import SharedSlots


@dataclass
class Ctx:
    permit: Any = None
    slot_info: Any = None


async def poll(slots: SharedSlots) -> SlotPermit:
    return await slots.reserve_slot(Ctx())  # type: ignore[arg-type]


def polling(slots: SharedSlots) -> asyncio.Task[SlotPermit]:
    return asyncio.create_task(poll(slots))


def got_build(slots: SharedSlots, permit: SlotPermit) -> None:
    slots.mark_slot_used(Ctx(permit, object()))  # type: ignore[arg-type]


def done(slots: SharedSlots, permit: SlotPermit) -> None:
    slots.release_slot(Ctx(permit))  # type: ignore[arg-type]


async def settled(*tasks: asyncio.Task[Any]) -> list[bool]:
    await asyncio.sleep(0.02)
    return [task.done() for task in tasks]


async def test_an_idle_builder_polls_its_pool_with_one_slot_and_keeps_one_for_a_claim() -> None:
    slots = SharedSlots(2)
    first = await poll(slots)
    ahead = polling(slots)  # the SDK reserves ahead: it waits until the first poll has a build
    assert await settled(ahead) == [False] and slots.free == 1
    assert await slots.claim(1) and slots.free == 0
    assert not await slots.claim(0.05)  # no slot frees within the wait
    got_build(slots, first)
    assert await settled(ahead) == [False]  # no slot free: the pool is not polled
    slots.release()  # the claimed build ends
    assert await settled(ahead) == [True] and slots.free == 0
    assert slots.try_reserve_slot(Ctx()) is None  # type: ignore[arg-type]


async def test_a_freed_slot_goes_to_a_claim_before_a_pool_poll() -> None:
    slots = SharedSlots(1)
    held = await poll(slots)
    got_build(slots, held)
    pool = polling(slots)
    await asyncio.sleep(0.01)
    claim = asyncio.create_task(slots.claim(1))
    await asyncio.sleep(0.01)
    done(slots, held)
    assert await settled(claim, pool) == [True, False] and claim.result()
    slots.release()
    assert await settled(pool) == [True]


async def test_a_poll_that_gets_no_build_gives_its_slot_back() -> None:
    slots = SharedSlots(1)
    idle = await poll(slots)
    done(slots, idle)
    assert slots.free == 1
    again = await poll(slots)
    assert slots.free == 0 and again is not None


async def test_a_wait_called_off_loses_no_slot() -> None:
    slots = SharedSlots(1)
    held = await poll(slots)
    got_build(slots, held)
    called_off = polling(slots)
    await asyncio.sleep(0.01)
    done(slots, held)  # given, then at once called off
    called_off.cancel()
    await asyncio.gather(called_off, return_exceptions=True)
    assert slots.free == 1
    held = await poll(slots)
    assert not await slots.claim(0.02)  # timed out waiting: nothing held
    done(slots, held)
    assert slots.free == 1


async def test_a_release_from_another_thread_wakes_the_waiting_poll() -> None:
    slots = SharedSlots(1)
    held = await poll(slots)
    got_build(slots, held)
    pool = polling(slots)
    await asyncio.sleep(0.01)
    await asyncio.to_thread(done, slots, held)
    await asyncio.wait_for(pool, 1)
    assert slots.free == 0
