"""Benchmark: a live app under load while the control plane is killed, and while it is
stopped for an upgrade.

A real `shipway up -d` serves the Flask example; wrk sends keep-alive requests to it through
the router for a fixed time. Three runs:
- steady: nothing happens (the baseline rate);
- kill -9: 3 s in, the main shipway process gets SIGKILL; 6 s in, `shipway up -d` again;
- upgrade: 3 s in, `shipway down --keep-apps`; 6 s in, `shipway up -d` again.
Every answer that is not a 2xx, and every socket error wrk counts, is a failed request.
Prints the figures and appends them to bench/RESULTS.md.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time

from flaskapp import Bench, flask_on_shipway, run
from run import machine, table

SECONDS = 15
CONNECTIONS = 16
FAULT_AT, BACK_AT = 3.0, 6.0


def wrk(port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            "wrk",
            "-t2",
            f"-c{CONNECTIONS}",
            f"-d{SECONDS}s",
            "-H",
            "Host: bench.localhost",
            f"http://127.0.0.1:{port}/",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def tally(output: str) -> tuple[int, int]:
    """Requests wrk sent, and how many of them failed (non-2xx answers and socket errors)."""
    found = re.search(r"(\d+) requests in", output)
    if found is None:
        raise SystemExit(f"wrk said:\n{output}")
    failed = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    failed += int(non_2xx.group(1)) if non_2xx else 0
    return int(found.group(1)), failed


def shipway(bench: Bench, *args: str) -> None:
    run(sys.executable, "-m", "shipway", *args, env=bench.env)


def under_load(bench: Bench, fault: str | None) -> tuple[int, int, float]:
    """Requests, failures, and seconds the control plane was away during one wrk run."""
    load = wrk(bench.port)
    away = 0.0
    if fault is not None:
        time.sleep(FAULT_AT)
        gone = time.monotonic()
        if fault == "kill":
            pid = int((bench.repo.parent / "data" / "shipway.pid").read_text())
            os.kill(pid, signal.SIGKILL)
        else:
            shipway(bench, "down", "--keep-apps")
        time.sleep(max(0.0, BACK_AT - FAULT_AT - (time.monotonic() - gone)))
        shipway(bench, "up", "-d", "--port", str(bench.port))
        away = time.monotonic() - gone
    output, _ = load.communicate(timeout=SECONDS + 60)
    requests, failed = tally(output)
    return requests, failed, away


def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    rows = []
    with flask_on_shipway() as bench:
        bench.git("add", "-A")
        bench.git("commit", "-qm", "bench")
        bench.push()
        load_before = os.getloadavg()[0]
        for label, fault in (("steady", None), ("kill -9", "kill"), ("upgrade", "upgrade")):
            requests, failed, away = under_load(bench, fault)
            what = f"{label}: requests served / failed in {SECONDS} s"
            figure = f"{requests - failed:,} / {failed}"
            if fault is not None:
                figure += f" (control plane away {away:.1f} s, back up included)"
            rows.append((what, figure))
    notes = (
        f"Machine: {machine()}; SQLite store, embedded Temporal and NATS, the Flask example "
        f"(gunicorn) behind the node's router; wrk -t2 -c{CONNECTIONS} -d{SECONDS}s on "
        f"loopback; the fault {FAULT_AT:g} s in, `shipway up -d` from {BACK_AT:g} s. "
        f"Load average before: {load_before:.2f}."
    )
    table("Data plane across a kill -9 and an upgrade of the control plane", notes, rows)


if __name__ == "__main__":
    main()
