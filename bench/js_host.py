"""Benchmark: what running V8 in a JS host process costs a call.

One small handler, awaited one call at a time:
- cold: the first call to a new JsProcess, which starts the host (a Python process that sets
  V8 up), ROUNDS times;
- warm: the next CALLS calls to each of those hosts;
- in process: the same handler in a JsRuntime of this process (V8 here), as shipway ran JS
  before it had a host; the floor the host is compared with.
Prints the figures and appends them to bench/RESULTS.md.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

from run import machine, table

from shipway.functions.outcome import Outcome
from shipway.functions.runtimes.js.process import JsProcess
from shipway.functions.runtimes.js.runtime import JsRuntime

ROUNDS = 5
CALLS = 100
SOURCE = "function handler(event) { return event.params.x * 2 }"


async def timed(run: Callable[..., Awaitable[Outcome]]) -> float:
    started = time.perf_counter()
    outcome = await run(SOURCE, {"params": {"x": 21}}, timeout=10, memory_mb=64)
    assert outcome.result == 42, outcome
    return time.perf_counter() - started


def ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[int(len(ordered) * 0.9) - 1]
    return f"median {statistics.median(ordered) * 1000:.2f} ms, p90 {p90 * 1000:.2f} ms"


async def main() -> None:
    cold: list[float] = []
    warm: list[float] = []
    for _ in range(ROUNDS):
        host = JsProcess()
        cold.append(await timed(host.run))
        warm += [await timed(host.run) for _ in range(CALLS)]
        await host.close()
    runtime = JsRuntime()
    await timed(runtime.run)  # V8 set up, the warm pool filled
    here = [await timed(runtime.run) for _ in range(CALLS)]
    await runtime.close()
    table(
        "A JS call through the JS host",
        f"Machine: {machine()}. One handler returning a number, one call at a time, awaited "
        f"from Python: {ROUNDS} new hosts, their first call (cold) and {CALLS} calls after it "
        f"(warm); and {CALLS} calls to V8 in this process (JsRuntime), the floor.",
        [
            ("cold: first call, the host started", ms(cold)),
            ("warm: a call to a running host", ms(warm)),
            ("floor: a call to V8 in this process", ms(here)),
        ],
    )


if __name__ == "__main__":
    asyncio.run(main())
