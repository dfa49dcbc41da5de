"""Python functions of different tenants never share a sandbox.

Calls that run at the same time in one Python worker share its uid, /tmp and process
namespace (see python.py). So each organization gets a PythonRuntime of its own, in its own
sandbox and scratch dir: started by the tenant's first Python call, stopped after IDLE_SECONDS
without one, and started again by the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

from shipway.functions.outcome import Call, Outcome
from shipway.functions.python import PythonRuntime

#: Seconds a tenant's Python worker is kept without a call.
IDLE_SECONDS = 300.0


class _Tenant:
    def __init__(self, runtime: PythonRuntime) -> None:
        self.runtime = runtime
        self.running = 0
        self.last_call = time.monotonic()


class TenantPython:
    def __init__(self, scratch: Path, *, idle_seconds: float = IDLE_SECONDS) -> None:
        self.scratch = scratch
        self.idle_seconds = idle_seconds
        self._tenants: dict[int, _Tenant] = {}
        self._sweeper: asyncio.Task[None] | None = None

    async def run(
        self,
        source: str,
        event: dict[str, Any],
        *,
        organization_id: int,
        timeout: float,
        memory_mb: int,
        call: Call | None,
        env: dict[str, str],
    ) -> Outcome:
        tenant = self._tenants.get(organization_id)
        if tenant is None:
            runtime = PythonRuntime(self.scratch / str(organization_id))
            tenant = self._tenants[organization_id] = _Tenant(runtime)
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.create_task(self._sweep(), name="python-tenants-sweeper")
        tenant.running += 1
        try:
            return await tenant.runtime.run(
                source, event, timeout=timeout, memory_mb=memory_mb, call=call, env=env
            )
        finally:
            tenant.running -= 1
            tenant.last_call = time.monotonic()

    def started(self) -> list[int]:
        """The organizations with a Python worker now."""
        return sorted(self._tenants)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        tenants, self._tenants = self._tenants, {}
        await asyncio.gather(*(t.runtime.close() for t in tenants.values()))

    async def _sweep(self) -> None:
        """Stop the workers of tenants idle for IDLE_SECONDS; end once none is left."""
        while self._tenants:
            await asyncio.sleep(min(self.idle_seconds / 4, 30.0))
            now = time.monotonic()
            for organization_id, tenant in list(self._tenants.items()):
                if tenant.running == 0 and now - tenant.last_call >= self.idle_seconds:
                    del self._tenants[organization_id]
                    await tenant.runtime.close()
