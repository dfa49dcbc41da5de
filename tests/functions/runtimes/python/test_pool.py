"""Python calls of different functions run in different sandboxes, of the same function in
one; an idle function's worker stops. Real bubblewrap sandboxes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from shipway.functions.outcome import RunStatus
from shipway.functions.runtimes.python.pool import PythonWorkers

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


async def call(
    python: PythonWorkers, organization_id: int, function: str, source: str, params: Any
) -> Any:
    outcome = await python.run(
        source,
        {"params": params, "env": {}, "trigger": "http", "run_id": 1},
        organization_id=organization_id,
        function=function,
        timeout=30,
        memory_mb=128,
        call=None,
        env={},
    )
    assert outcome.status is RunStatus.SUCCEEDED, outcome.error
    return outcome.result


async def test_functions_never_share_a_sandbox(tmp_path: Path) -> None:
    python = PythonWorkers(tmp_path)
    try:
        await asyncio.gather(
            call(python, 1, "hold", LOOK, {}),
            call(python, 1, "other", LOOK, {}),
            call(python, 2, "hold", LOOK, {}),
        )  # all three workers started
        holding = asyncio.create_task(call(python, 1, "hold", HOLD, {"who": "acme"}))
        await asyncio.sleep(1.0)
        seen_by_itself = await call(python, 1, "hold", LOOK, {})
        seen_by_another = await call(python, 1, "other", LOOK, {})
        seen_by_another_tenant = await call(python, 2, "hold", LOOK, {})
        assert await holding == "held"
    finally:
        await python.close()
    assert seen_by_itself == ["held-by-acme"]  # calls of one function share its sandbox
    assert seen_by_another == [] and seen_by_another_tenant == []
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.glob("*/*")) == [
        "1/hold",
        "1/other",
        "2/hold",
    ]


async def test_an_idle_functions_worker_stops_and_starts_again(tmp_path: Path) -> None:
    python = PythonWorkers(tmp_path, idle_seconds=0.2)
    try:
        assert await call(python, 7, "look", LOOK, {}) == []
        assert python.started() == [(7, "look")]
        for _ in range(100):
            if not python.started():
                break
            await asyncio.sleep(0.05)
        assert python.started() == []
        assert await call(python, 7, "look", LOOK, {}) == []
    finally:
        await python.close()
