"""Deadlines for many connections at once, checked by one periodic sweep.

A timer per request (asyncio.timeout, call_later) costs a heap entry, a handle and a
cancellation on the hot path; a watched entry costs a dict insert and delete. Deadlines fire
up to one tick late, which suits keep-alive and response timeouts of seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

log = logging.getLogger(__name__)


class Expirable(Protocol):
    """Something that can be told its deadline has passed."""

    def expire(self) -> None: ...


class Watchdog:
    """Calls `expire()` on each watched item whose deadline has passed."""

    def __init__(self, tick: float) -> None:
        self.tick = tick
        self._deadlines: dict[Expirable, float] = {}
        self._task: asyncio.Task[None] | None = None

    def watch(self, item: Expirable, seconds: float) -> None:
        """Expire ITEM in SECONDS (plus up to one tick) unless it is unwatched first."""
        self._deadlines[item] = time.monotonic() + seconds
        if self._task is None:  # the sweep runs until close()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="watchdog")

    def unwatch(self, item: Expirable) -> None:
        """Cancel ITEM's deadline, if it has one."""
        self._deadlines.pop(item, None)

    def sweep(self) -> None:
        """Expire every item that is past its deadline."""
        now = time.monotonic()
        late = [item for item, deadline in self._deadlines.items() if deadline <= now]
        for item in late:
            del self._deadlines[item]
            try:
                item.expire()
            except Exception:
                log.exception("router: expiring %r failed", item)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            self.sweep()

    def close(self) -> None:
        """Stop sweeping."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
