"""Streams that end when the server stops: a response that would follow a log or a tail
forever ends as soon as shutdown begins."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import anyio


async def until(stopping: asyncio.Event, events: AsyncIterator[str]) -> AsyncIterator[str]:
    """EVENTS, ended (and closed) as soon as STOPPING is set: a server that stops does not
    wait on streams that would follow forever. A client that goes away cancels this midway;
    EVENTS is closed then too, quietly."""
    stopped = asyncio.ensure_future(stopping.wait())
    following: asyncio.Future[str] | None = None
    try:
        while True:
            following = asyncio.ensure_future(anext(events))
            await asyncio.wait({following, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not following.done():
                return
            try:
                item = following.result()
            except StopAsyncIteration:
                return
            following = None
            yield item
    finally:
        stopped.cancel()
        # Shielded: a cancelled response keeps cancelling every await of its clean-up.
        with anyio.CancelScope(shield=True):
            if following is not None and not following.done():
                following.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await following
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()
