"""An app's log: the output of all its instances and what the runtime did, as one stream.

It is a log like a build's (kind "app", one per app), so `shipway logs --app APP -f` and its
SSE endpoint follow it the same way. Lines come from sandboxes through a synchronous callback;
one task per app writes them in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

from shipway.logs import LogWriter
from shipway.store import Store

log = logging.getLogger(__name__)

KIND = "app"
#: Lines waiting to be written; past this, new lines are dropped and counted.
BACKLOG = 10_000


class AppLog:
    def __init__(self, store: Store, js: Any, app_id: int) -> None:
        self.store = store
        self.js = js
        self.app_id = app_id
        self.dropped = 0
        self._queue: asyncio.Queue[str | None] = asyncio.Queue(BACKLOG)
        self._secrets: set[str] = set()
        self._writer: LogWriter | None = None
        self._task = asyncio.create_task(self._drain(), name=f"app-log-{app_id}")

    def say(self, line: str) -> None:
        """Add LINE; never blocks, so a chatty instance cannot stall the runtime."""
        try:
            self._queue.put_nowait(line)
        except asyncio.QueueFull:
            self.dropped += 1

    def hide(self, secrets: Iterable[str]) -> None:
        """Mask these values too from now on (a release's secrets)."""
        new = set(secrets) - self._secrets
        if new:
            self._secrets |= new
            if self._writer is not None:
                self._writer.hide(self._secrets)

    async def _drain(self) -> None:
        while (line := await self._queue.get()) is not None:
            try:
                if self._writer is None:
                    self._writer = await LogWriter.open(
                        self.store, self.js, KIND, self.app_id, secrets=self._secrets
                    )
                if self.dropped:
                    dropped, self.dropped = self.dropped, 0
                    await self._writer.write(f"[shipway] {dropped} lines dropped: too many at once")
                await self._writer.write(line)
            except Exception as e:  # the log must never take the runtime down
                log.warning("app %d: cannot write its log: %s", self.app_id, e)

    async def close(self) -> None:
        """Write what is queued, then store it."""
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._task, 5)
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await self._writer.flush()
