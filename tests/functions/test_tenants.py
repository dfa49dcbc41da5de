"""Python calls of different tenants run in different sandboxes; an idle tenant's worker
stops. Real bubblewrap sandboxes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from shipway.functions.outcome import RunStatus
from shipway.functions.tenants import TenantPython

HOLD = """import time

def handler(event):
    open("/tmp/held-by-" + event["params"]["who"], "w").close()
    time.sleep(2)
    return "held"
"""
LOOK = """import os

def handler(event):
    return sorted(name for name in os.listdir("/tmp") if name.startswith("held-by-"))
"""


async def call(python: TenantPython, organization_id: int, source: str, params: Any) -> Any:
    outcome = await python.run(
        source,
        {"params": params, "env": {}, "trigger": "http", "run_id": 1},
        organization_id=organization_id,
        timeout=30,
        memory_mb=128,
        call=None,
        env={},
    )
    assert outcome.status is RunStatus.SUCCEEDED, outcome.error
    return outcome.result


async def test_tenants_never_share_a_sandbox(tmp_path: Path) -> None:
    python = TenantPython(tmp_path)
    try:
        await asyncio.gather(call(python, 1, LOOK, {}), call(python, 2, LOOK, {}))  # warm up
        holding = asyncio.create_task(call(python, 1, HOLD, {"who": "acme"}))
        await asyncio.sleep(1.0)
        seen_by_acme = await call(python, 1, LOOK, {})
        seen_by_globex = await call(python, 2, LOOK, {})
        assert await holding == "held"
    finally:
        await python.close()
    assert seen_by_acme == ["held-by-acme"]  # the same tenant's calls share a sandbox
    assert seen_by_globex == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1", "2"]


async def test_an_idle_tenants_worker_stops_and_starts_again(tmp_path: Path) -> None:
    python = TenantPython(tmp_path, idle_seconds=0.2)
    try:
        assert await call(python, 7, LOOK, {}) == []
        assert python.started() == [7]
        for _ in range(100):
            if not python.started():
                break
            await asyncio.sleep(0.05)
        assert python.started() == []
        assert await call(python, 7, LOOK, {}) == []
    finally:
        await python.close()
