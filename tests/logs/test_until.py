"""Streams that would follow forever end, and are closed, once the server starts to stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from shipway.logs.stopping import until


async def test_a_stream_ends_when_stopping_is_set() -> None:
    closed = asyncio.Event()

    async def forever() -> AsyncIterator[str]:
        try:
            yield "first"
            while True:
                await asyncio.sleep(3600)
        finally:
            closed.set()

    stopping = asyncio.Event()
    seen = []

    async def read() -> None:
        async for event in until(stopping, forever()):
            seen.append(event)

    reading = asyncio.create_task(read())
    await asyncio.sleep(0.05)
    stopping.set()
    await asyncio.wait_for(reading, 5)
    assert seen == ["first"] and closed.is_set()


async def test_a_stream_that_ends_by_itself_ends() -> None:
    async def three() -> AsyncIterator[str]:
        for event in ("a", "b", "c"):
            yield event

    assert [e async for e in until(asyncio.Event(), three())] == ["a", "b", "c"]
