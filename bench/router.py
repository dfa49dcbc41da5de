"""Benchmark: what the router adds over calling an app directly, and how it compares to nginx.

A trivial upstream (a raw asyncio responder in its own process) answers every GET with 13
bytes. Measured against it, directly, through the Router (in its own process) and through
nginx (one worker, upstream keep-alive on) when an `nginx` binary exists:
- latency: sequential GETs over one keep-alive connection, median and p95; once with the
  processes where the scheduler puts them, once with all of them on one core, where no
  wake-up crosses cores (a virtual machine pays dearly for those, proxy or not);
- throughput: requests/s with CONNECTIONS concurrent keep-alive clients, by `wrk` when it
  is installed, else by a Python client (which then limits the figures itself); with wrk,
  also with a new path in every request, so that no head is ever the same twice.
Prints the figures and appends them to bench/RESULTS.md (not with `--dry-run`). Nothing here
asserts a time.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psutil
import uvloop
from run import machine, table, wait_for_port

from shipway.embedded.ports import any_free
from shipway.router import Route, Router, RouteTable, TcpUpstream

HOST = "app.localhost"
REQUEST = f"GET / HTTP/1.1\r\nHost: {HOST}\r\nUser-Agent: bench\r\n\r\n".encode()
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!"
SEQUENTIAL = 3000
WARM_UP = 300
CONNECTIONS = 32
SECONDS = 4
#: Throughput is measured in rounds that alternate the targets, and the median kept, so a
#: noisy neighbour on the machine skews all targets alike.
ROUNDS = 3


class _Responder(asyncio.Protocol):
    """Answers each request head with RESPONSE; bodiless GETs only, pipelining allowed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.pending = b""

    def data_received(self, data: bytes) -> None:
        self.pending += data
        heads = self.pending.count(b"\r\n\r\n")
        if heads:
            self.pending = self.pending[self.pending.rfind(b"\r\n\r\n") + 4 :]
            self.transport.write(RESPONSE * heads)


async def _serve_upstream(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Responder, "127.0.0.1", port, backlog=1024)
    await server.serve_forever()


async def _serve_router(port: int, upstream_port: int) -> None:
    table = RouteTable()
    app = TcpUpstream("127.0.0.1", upstream_port, name="web.1")
    table.switch(HOST, Route("app", "production", (app,)))
    router = Router(table, app, "localhost")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(1024)
    server = await router.serve(sock)
    await server.serve_forever()


@contextmanager
def _process(args: list[str], port: int) -> Iterator[int]:
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, process)
        yield process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)


def _nginx_conf(tmp: Path, port: int, upstream_port: int) -> Path:
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = "\n".join(
        f"  {kind}_temp_path {tmp / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = tmp / "nginx.conf"
    conf.write_text(
        f"""{user}worker_processes 1;
daemon off;
pid {tmp / "nginx.pid"};
error_log {tmp / "error.log"} warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 1000000;
{temp}
  upstream app {{
    server 127.0.0.1:{upstream_port};
    keepalive 32;
    keepalive_requests 1000000;
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto http;
      proxy_set_header X-Request-Id $request_id;
      add_header X-Request-Id $request_id;
    }}
  }}
}}
"""
    )
    return conf


def _content_length(head: bytes) -> int:
    match = re.search(rb"(?i)content-length: *(\d+)", head)
    if match is None:
        raise RuntimeError(f"no Content-Length in {head!r}")
    return int(match.group(1))


def _read_response(sock: socket.socket, buffer: bytes) -> bytes:
    """Read one sized response; returns what was read past it."""
    while (end := buffer.find(b"\r\n\r\n")) < 0:
        buffer += sock.recv(65536)
    total = end + 4 + _content_length(buffer[:end])
    while len(buffer) < total:
        buffer += sock.recv(65536)
    return buffer[total:]


def latency(port: int) -> list[float]:
    """Seconds per GET, sequential over one keep-alive connection."""
    samples = []
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rest = b""
        for i in range(WARM_UP + SEQUENTIAL):
            started = time.perf_counter()
            sock.sendall(REQUEST)
            rest = _read_response(sock, rest)
            if i >= WARM_UP:
                samples.append(time.perf_counter() - started)
    return samples


#: A wrk script giving every request a path of its own.
NEW_PATHS = """
counter = 0
request = function()
  counter = counter + 1
  return wrk.format(nil, "/item/" .. counter .. "?page=" .. counter % 7)
end
"""


def throughput(port: int, script: Path | None = None) -> tuple[float, int]:
    """Requests per second with CONNECTIONS concurrent keep-alive clients, and how many were
    made; SCRIPT, a wrk script that makes the requests."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return asyncio.run(_python_load(port))
    scripted = ["-s", str(script)] if script else []
    out = subprocess.run(
        [
            wrk,
            "-t1",
            f"-c{CONNECTIONS}",
            f"-d{SECONDS}s",
            *scripted,
            "-H",
            f"Host: {HOST}",
            f"http://127.0.0.1:{port}/",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = re.search(r"Requests/sec:\s*([\d.]+)", out)
    made = re.search(r"(\d+) requests in", out)
    assert rate and made, out
    return float(rate.group(1)), int(made.group(1))


async def _python_load(port: int) -> tuple[float, int]:
    done = 0
    stop = time.monotonic() + SECONDS

    async def client() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.monotonic() < stop:
            writer.write(REQUEST)
            head = await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(_content_length(head))
            done += 1
        writer.close()

    started = time.monotonic()
    await asyncio.gather(*(client() for _ in range(CONNECTIONS)))
    return done / (time.monotonic() - started), done


def ms(samples: list[float]) -> tuple[float, float]:
    """Median and p95, in milliseconds."""
    q = statistics.quantiles([s * 1000 for s in samples], n=100)
    return statistics.median(samples) * 1000, q[94]


def _nginx() -> str | None:
    """The nginx binary, also where Debian puts it outside a non-root PATH."""
    found = shutil.which("nginx")
    if found:
        return found
    return next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None)


def _family(pid: int) -> list[psutil.Process]:
    """PID and its children (nginx's workers)."""
    process = psutil.Process(pid)
    return [process, *process.children()]


def _pin(pids: list[int], cpus: set[int]) -> None:
    """Put the processes PIDS and their children on CPUS."""
    for pid in pids:
        for each in _family(pid):
            each.cpu_affinity(sorted(cpus))


def _cpu(pid: int) -> tuple[float, float]:
    """User and kernel CPU seconds of PID and its children so far."""
    times = [each.cpu_times() for each in _family(pid)]
    return sum(t.user for t in times), sum(t.system for t in times)


def _latencies(targets: dict[str, int], where: str) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    medians: dict[str, float] = {}
    for name, port in targets.items():
        medians[name], p95 = ms(latency(port))
        rows.append(
            (f"GET latency, {name}{where}", f"p50 {medians[name]:.3f} ms, p95 {p95:.3f} ms")
        )
    for name in ("router", "nginx"):
        if name in medians:
            added = medians[name] - medians["direct"]
            target = " (target ≤ 0.1 ms)" if name == "router" else ""
            rows.append((f"added latency of the {name}{where}, p50", f"{added:.3f} ms{target}"))
    return rows


def measure(targets: dict[str, int], pids: dict[str, int], script: Path) -> list[tuple[str, str]]:
    """Latency and throughput of each target (served by the process PIDS names), what each
    request cost that process, and how the router compares."""
    rows = _latencies(targets, "")
    cpus = os.sched_getaffinity(0)
    _pin([os.getpid(), *pids.values()], {min(cpus)})
    try:
        rows += _latencies(targets, ", all on one core")
    finally:
        _pin([os.getpid(), *pids.values()], cpus)
    runs: dict[str, tuple[str, Path | None]] = {name: (name, None) for name in targets}
    if shutil.which("wrk"):
        runs |= {f"{name}, a new path each": (name, script) for name in ("router", "nginx")}
    samples: dict[str, list[float]] = {name: [] for name in runs}
    costs: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    for _ in range(ROUNDS):
        for name, (target, each) in runs.items():
            user, kernel = _cpu(pids[target])
            rate, made = throughput(targets[target], each)
            after = _cpu(pids[target])
            samples[name].append(rate)
            costs[name].append(((after[0] - user) / made, (after[1] - kernel) / made))
    rates = {name: statistics.median(values) for name, values in samples.items()}
    for name, rate in rates.items():
        rows.append((f"throughput, {name}", f"{rate:,.0f} req/s"))
    for name, cost in costs.items():
        user = statistics.median(c[0] for c in cost) * 1e6
        kernel = statistics.median(c[1] for c in cost) * 1e6
        who = "the upstream" if name == "direct" else f"the {name.partition(',')[0]}"
        rows.append(
            (f"CPU per request of {who}, {name}", f"user {user:.1f} µs, kernel {kernel:.1f} µs")
        )
    for kind in ("", ", a new path each"):
        if f"nginx{kind}" in rates:
            ratio = rates[f"router{kind}"] / rates[f"nginx{kind}"]
            rows.append((f"throughput ratio router / nginx{kind} (target ≥ 0.8)", f"{ratio:.2f}"))
    return rows


def main(record: bool) -> None:
    upstream_port, router_port, nginx_port = any_free(), any_free(), any_free()
    me = [sys.executable, __file__]
    nginx = _nginx()
    busy = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        upstream = [*me, "upstream", str(upstream_port)]
        router = [*me, "router", str(router_port), str(upstream_port)]
        pids = {"direct": stack.enter_context(_process(upstream, upstream_port))}
        pids["router"] = stack.enter_context(_process(router, router_port))
        targets = {"direct": upstream_port, "router": router_port}
        if nginx:
            conf = _nginx_conf(Path(tmp), nginx_port, upstream_port)
            command = [nginx, "-p", tmp, "-c", str(conf), "-e", str(Path(tmp) / "error.log")]
            pids["nginx"] = stack.enter_context(_process(command, nginx_port))
            targets["nginx"] = nginx_port
        script = Path(tmp) / "new_paths.lua"
        script.write_text(NEW_PATHS)
        rows = measure(targets, pids, script)
    report(rows, "wrk" if shutil.which("wrk") else "a Python asyncio client", busy, record)


def report(rows: list[tuple[str, str]], load: str, busy: float, record: bool) -> None:
    notes = (
        f"Machine: {machine()}. A raw asyncio upstream answering 13 bytes; the router (the "
        "node's code on uvloop, as the node runs it: a bodiless request over a pooled "
        "connection answered in callbacks) and nginx (1 worker, upstream keep-alive) each in "
        "their own process. "
        f"Latency: {SEQUENTIAL} sequential GETs over one keep-alive connection, the processes "
        "where the scheduler puts them, then all on one core. Throughput: "
        f"{CONNECTIONS} keep-alive connections, median of {ROUNDS} rounds of {SECONDS} s "
        f"alternating the targets, driven by {load}; load generator, proxy and upstream share "
        "the machine's cores. The router keeps parsed heads by their bytes, so the same request "
        "again skips the parse: 'a new path each' (a wrk script) shows the figures when no "
        "head repeats. CPU per request: the process's user and kernel time over a round, "
        "divided by the requests made in it, median of the rounds. 1-minute load average "
        f"before the run: {busy:.2f}."
    )
    table("Router overhead", notes, rows, save=record)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "upstream":
        asyncio.run(_serve_upstream(int(sys.argv[2])))
    elif len(sys.argv) > 1 and sys.argv[1] == "router":
        uvloop.run(_serve_router(int(sys.argv[2]), int(sys.argv[3])))  # as the node runs it
    else:
        main(record="--dry-run" not in sys.argv)
