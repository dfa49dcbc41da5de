"""Benchmark: function calls end to end over HTTP, and schedule accuracy.

Through a real `shipway up -d` and the router on the control port:
- a JS function (a fresh V8 context per call) and a Python function (a sandboxed process
  forked from a warm worker), each called sequentially over one keep-alive connection;
- throughput with 16 concurrent clients;
- schedule accuracy: a `PT2S` trigger; how late each run started (its record's creation)
  after its planned time, over 50 runs.
Prints the figures and appends them to bench/RESULTS.md.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
from run import machine, table

from shipway.embedded.ports import any_free

CALLS = 300
CONCURRENT = 16
SECONDS = 5.0
SCHEDULED_RUNS = 50
JS = "function handler(event) { return {x: event.params.x} }\n"
PY = 'def handler(event):\n    return {"x": event["params"]["x"]}\n'
START = "2020-01-01T00:00:00Z"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def latency(client: httpx.Client, name: str) -> list[float]:
    samples = []
    for i in range(CALLS):
        started = time.perf_counter()
        response = client.post(f"/fn/{name}", json={"x": i})
        samples.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    return samples[20:]  # the first calls warm the connection and the runtime


async def throughput(url: str, token: str, name: str) -> float:
    done = 0
    deadline = time.perf_counter() + SECONDS

    async def client() -> None:
        nonlocal done
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
            while time.perf_counter() < deadline:
                response = await http.post(f"/fn/{name}", json={"x": 1})
                assert response.status_code == 200, response.text
                done += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CONCURRENT)))
    return done / (time.perf_counter() - started)


def schedule_delays(api: httpx.Client) -> list[float]:
    """Seconds between each scheduled run's planned time and its start."""
    deadline = time.monotonic() + SCHEDULED_RUNS * 2 + 60
    runs: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        runs = [
            r
            for r in api.get("/functions/tick/runs", params={"limit": 500}).json()
            if str(r["trigger"]).startswith("schedule:")
        ]
        if len(runs) >= SCHEDULED_RUNS:
            break
        time.sleep(2)
    delays = []
    for run in runs[:SCHEDULED_RUNS]:
        started = datetime.fromisoformat(str(run["created_at"])).timestamp()
        planned = started - (started % 2)  # the PT2S grid from START, an even second
        delays.append(started - planned)
    return delays


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="shipway-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPWAY_")}
    env["SHIPWAY_DATA"] = str(tmp / "data")
    port = any_free()
    shipway = [sys.executable, "-m", "shipway"]
    subprocess.run([*shipway, "up", "-d", "--port", str(port)], env=env, check=True)
    url = f"http://127.0.0.1:{port}"
    try:
        token = (tmp / "data" / "admin-token").read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}
        api = httpx.Client(base_url=f"{url}/api/v1", headers=headers, timeout=60)
        for name, source, filename in (("js", JS, "f.js"), ("py", PY, "f.py")):
            api.post(f"/functions/{name}", json={"source": source, "filename": filename})
        calls = httpx.Client(base_url=url, headers=headers, timeout=60)
        js = latency(calls, "js")
        py = latency(calls, "py")
        js_rate = asyncio.run(throughput(url, token, "js"))
        py_rate = asyncio.run(throughput(url, token, "py"))
        trigger = {"tick": {"spec": f"R/{START}/PT2S", "params": {"x": 1}}}
        api.post(
            "/functions/tick", json={"source": JS, "filename": "f.js", "triggers": trigger}
        ).raise_for_status()
        delays = schedule_delays(api)
        api.delete("/functions/tick")
    finally:
        subprocess.run([*shipway, "down"], env=env, check=True)
        shutil.rmtree(tmp, ignore_errors=True)

    def ms(values: list[float]) -> str:
        return (
            f"p50 {statistics.median(values) * 1000:.2f} ms, "
            f"p95 {percentile(values, 95) * 1000:.2f} ms (n={len(values)})"
        )

    rows = [
        ("JS function, fresh V8 context, POST /fn/NAME (target ≤ 5 ms median)", ms(js)),
        ("Python function, forked sandboxed process (target ≤ 20 ms median)", ms(py)),
        (f"JS throughput, {CONCURRENT} concurrent clients", f"{js_rate:,.0f} calls/s"),
        (f"Python throughput, {CONCURRENT} concurrent clients", f"{py_rate:,.0f} calls/s"),
        (
            f"schedule accuracy, PT2S, {len(delays)} runs: start after planned time (target ≤ 1 s)",
            f"median {statistics.median(delays):.3f} s, max {max(delays):.3f} s",
        ),
    ]
    table(
        "Functions",
        f"Machine: {machine()}; `shipway up -d` with its embedded Temporal and NATS; calls "
        "through the router, one keep-alive connection, a deployer token; run records are "
        "written behind the calls.",
        rows,
    )


if __name__ == "__main__":
    main()
