"""Benchmarks of the foundation: start-up time and API latency, on this machine.

Run with `make bench`. Prints the figures and appends them to bench/RESULTS.md with the
machine and date. Nothing here asserts a time: figures are for reading and comparing.
"""

from __future__ import annotations

import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from shipway.embedded.ports import any_free

RESULTS = Path(__file__).parent / "RESULTS.md"


def shipway(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shipway", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )


def timed_start(env: dict[str, str], port: int) -> float:
    started = time.perf_counter()
    shipway("up", "-d", "--port", str(port), env=env)
    return time.perf_counter() - started


def percentiles(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    q = statistics.quantiles(ms, n=100)
    return f"p50 {q[49]:.1f} ms, p95 {q[94]:.1f} ms, p99 {q[98]:.1f} ms (n={len(ms)})"


def sample(client: httpx.Client, method: str, path: str, n: int, body_of=None) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for i in range(n):
        started = time.perf_counter()
        response = client.request(method, path, json=body_of(i) if body_of else None)
        out.append(time.perf_counter() - started)
        response.raise_for_status()
    return out


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """Until PROCESS accepts connections on PORT; RuntimeError if it exits or TIMEOUT passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def main() -> None:
    figures: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPWAY_")}
        env["SHIPWAY_DATA"] = str(Path(tmp) / "data")
        port = any_free()
        figures.append(("`shipway up -d` to ready, first start", f"{timed_start(env, port):.2f} s"))
        shipway("down", env=env)
        figures.append(("`shipway up -d` to ready, restart", f"{timed_start(env, port):.2f} s"))
        try:
            token = (Path(tmp) / "data" / "admin-token").read_text().strip()
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as c:
                sample(c, "GET", "/api/v1/apps", 20)  # warm up
                figures.append(("GET /healthz", percentiles(sample(c, "GET", "/healthz", 300))))
                figures.append(
                    (
                        "GET /healthz?deep=true (probe workflow)",
                        percentiles(sample(c, "GET", "/healthz?deep=true", 40)),
                    )
                )
                figures.append(
                    (
                        "POST /api/v1/apps",
                        percentiles(
                            sample(c, "POST", "/api/v1/apps", 200, lambda i: {"name": f"app-{i}"})
                        ),
                    )
                )
                figures.append(
                    (
                        "GET /api/v1/apps (200 apps)",
                        percentiles(sample(c, "GET", "/api/v1/apps", 200)),
                    )
                )
                figures.append(
                    (
                        "GET /api/v1/apps/NAME",
                        percentiles(sample(c, "GET", "/api/v1/apps/app-7", 300)),
                    )
                )
        finally:
            shipway("down", env=env)

    table(
        "Foundation",
        f"Machine: {machine()}; SQLite store, embedded Temporal and NATS, sequential requests "
        "over one keep-alive connection.",
        figures,
    )


def table(title: str, notes: str, rows: list[tuple[str, str]], save: bool = True) -> None:
    """Print a section of figures and, with SAVE, append it to RESULTS.md, dated."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"\n## {title} — {stamp}\n", notes + "\n", "", "| what | figure |", "| --- | --- |"]
    lines += [f"| {what} | {figure} |" for what, figure in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if not save:
        return
    if not RESULTS.exists():
        RESULTS.write_text("# Benchmark results\n\nFigures from `make bench`, newest last.\n")
    with RESULTS.open("a") as out:
        out.write(text)


if __name__ == "__main__":
    main()
