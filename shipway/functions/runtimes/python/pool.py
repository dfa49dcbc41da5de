"""Different Python functions never share a sandbox.

Calls that run at the same time in one Python worker share its uid, /tmp and process
namespace (see runtime.py). So each function (of each organization) gets a PythonRuntime of
its own, in its own sandbox and scratch dir: started by the function's first call, stopped
after IDLE_SECONDS without one, and started again by the next. Only calls of the same
function ever share a worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

from shipway.functions.outcome import Call, Outcome
from shipway.functions.runtimes.python.runtime import PythonRuntime

#: Seconds a function's Python worker is kept without a call.
IDLE_SECONDS = 300.0


class _Worker:
    def __init__(self, runtime: PythonRuntime) -> None:
        self.runtime = runtime
        self.running = 0
        self.last_call = time.monotonic()


class PythonWorkers:
    def __init__(self, scratch: Path, *, idle_seconds: float = IDLE_SECONDS) -> None:
        self.scratch = scratch
        self.idle_seconds = idle_seconds
        self._workers: dict[tuple[int, str], _Worker] = {}
        self._sweeper: asyncio.Task[None] | None = None

    async def run(
        self,
        source: str,
        event: dict[str, Any],
        *,
        organization_id: int,
        function: str,
        timeout: float,
        memory_mb: int,
        call: Call | None,
        env: dict[str, str],
    ) -> Outcome:
        key = (organization_id, function)
        worker = self._workers.get(key)
        if worker is None:
            runtime = PythonRuntime(self.scratch / str(organization_id) / function)
            worker = self._workers[key] = _Worker(runtime)
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.create_task(self._sweep(), name="python-workers-sweeper")
        worker.running += 1
        try:
            return await worker.runtime.run(
                source, event, timeout=timeout, memory_mb=memory_mb, call=call, env=env
            )
        finally:
            worker.running -= 1
            worker.last_call = time.monotonic()

    def started(self) -> list[tuple[int, str]]:
        """The (organization, function) pairs with a worker now."""
        return sorted(self._workers)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        workers, self._workers = self._workers, {}
        await asyncio.gather(*(w.runtime.close() for w in workers.values()))

    async def _sweep(self) -> None:
        """Stop the workers idle for IDLE_SECONDS; end once none is left."""
        while self._workers:
            await asyncio.sleep(min(self.idle_seconds / 4, 30.0))
            now = time.monotonic()
            for key, worker in list(self._workers.items()):
                if worker.running == 0 and now - worker.last_call >= self.idle_seconds:
                    del self._workers[key]
                    await worker.runtime.close()
