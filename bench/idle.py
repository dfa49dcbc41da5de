"""The control plane at rest: its memory and CPU with nothing to do.

One detached `shipway up` in a fresh data dir (SQLite store, embedded Temporal and NATS).
Measured twice, each time after SETTLE seconds with nothing asked of it:

- fresh: just started;
- after use: once examples/flask was pushed (and answers) and a JS function was deployed
  and called, so that what a first use loads is loaded, and once the JS host that ran the
  calls has ended (after its idle time; it is counted with the control plane while it runs).

Each time: the RSS and PSS of `shipway up` itself, of its Temporal and of its NATS (the
control plane; the node, which runs the apps, is shown beside it), and the CPU they used
over WATCH seconds, as a share of one core. Target: RSS ≤ 300 MiB, CPU ≤ 1 %.

Run with `python bench/idle.py`; it appends its figures to bench/RESULTS.md.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import httpx
import psutil
from flaskapp import Bench, flask_on_shipway
from run import machine, table
from scale import node_process, pss, rss

SETTLE = 20.0
WATCH = 30.0
MIB = 1 << 20
JS = "function handler(event) { return { hello: event.params.name || 'world' } }"
HOST = "shipway.functions.runtimes.js.host"


@dataclass
class Part:
    name: str
    process: psutil.Process

    def cpu(self) -> float:
        times = self.process.cpu_times()
        return float(times.user + times.system)


def control_plane(bench: Bench) -> list[Part]:
    """`shipway up` and the servers it runs; the node (data plane) is left out."""
    main = psutil.Process(int((bench.data / "shipway.pid").read_text().split()[0]))
    node = node_process(bench).pid
    parts = [Part("shipway up", main)]
    for child in main.children():
        if child.pid == node:
            continue
        name = "Temporal" if child.name() == "temporal" else child.name()
        parts.append(Part("NATS" if name == "nats-server" else name, child))
    return parts


def js_host_ended(bench: Bench) -> float:
    """Seconds until no JS host runs under `shipway up` (it ends after its idle time)."""
    main = psutil.Process(int((bench.data / "shipway.pid").read_text().split()[0]))
    started = time.monotonic()
    while any(HOST in " ".join(child.cmdline()) for child in main.children()):
        if time.monotonic() - started > 300:
            raise SystemExit("the JS host did not end within 300 s of the last call")
        time.sleep(0.5)
    return time.monotonic() - started


def measure(bench: Bench, phase: str) -> list[tuple[str, str]]:
    time.sleep(SETTLE)
    parts = control_plane(bench)
    before = {part.name: part.cpu() for part in parts}
    time.sleep(WATCH)
    cpu = {part.name: (part.cpu() - before[part.name]) / WATCH for part in parts}
    rows = [
        (
            f"{phase}: {part.name}",
            f"RSS {rss(part.process) / MIB:.0f} MiB, PSS {pss(part.process.pid) / MIB:.0f} MiB, "
            f"CPU {cpu[part.name] * 100:.2f} %",
        )
        for part in parts
    ]
    total_rss = sum(rss(part.process) for part in parts)
    total_pss = sum(pss(part.process.pid) for part in parts)
    rows.append(
        (
            f"{phase}: control plane (target RSS ≤ 300 MiB, CPU ≤ 1 %)",
            f"RSS {total_rss / MIB:.0f} MiB, PSS {total_pss / MIB:.0f} MiB, "
            f"CPU {sum(cpu.values()) * 100:.2f} %",
        )
    )
    node = node_process(bench)
    rows.append((f"{phase}: the node, beside it", f"RSS {rss(node) / MIB:.0f} MiB"))
    for what, figure in rows:
        print(f"{what}: {figure}", flush=True)
    return rows


def use(bench: Bench) -> None:
    """A push to live and a JS function deployed and called."""
    bench.git("add", "-A")
    bench.git("commit", "-q", "-m", "first")
    bench.push()
    bench.api.post(
        "/functions/hello", json={"source": JS, "filename": "hello.js"}
    ).raise_for_status()
    calls = httpx.Client(
        base_url=f"http://127.0.0.1:{bench.port}", headers=bench.api.headers, timeout=60
    )
    with calls:
        for _ in range(20):
            calls.post("/fn/hello", json={"name": "bench"}).raise_for_status()


def main() -> None:
    load = os.getloadavg()[0]
    with flask_on_shipway() as bench:
        rows = measure(bench, "fresh")
        use(bench)
        ended = js_host_ended(bench)
        print(f"the JS host ended {ended:.0f} s after the last call", flush=True)
        rows += measure(bench, "after use")
    table(
        "Control plane at rest",
        f"Machine: {machine()}. One detached `shipway up` in a fresh data dir (SQLite store, "
        f"embedded Temporal and NATS), measured {SETTLE:.0f} s after start (fresh), and "
        f"after a `git push` of examples/flask to live and 20 calls of a JS function, "
        f"{SETTLE:.0f} s after the JS host that ran them had ended, {ended:.0f} s after the "
        f"last call (after use). RSS from psutil, PSS from /proc/PID/smaps_rollup; CPU is "
        f"user + system time over the next {WATCH:.0f} s, as a share of one core. 1-minute "
        f"load average {load:.2f} before, {os.getloadavg()[0]:.2f} after.",
        rows,
    )


if __name__ == "__main__":
    main()
