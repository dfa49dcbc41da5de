"""Benchmark: what traces cost on a hot path, the router, when they are off and when they are on.

The router runs in a process of its own in front of bench/router.py's raw upstream, twice: once
without OTEL_EXPORTER_OTLP_ENDPOINT (traces off: nothing of the SDK is loaded, no thread
runs) and once pointed at an OTLP/HTTP sink in this process (each proxied request a server
span, exported in batches). Also measured: what a span costs a caller when traces are off, and
what a `shipway` process holds of OpenTelemetry then. Prints the figures and appends them to
bench/RESULTS.md (not with `--dry-run`). Nothing here asserts a time.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import router as proxy
from run import machine, table

from shipway import tracing
from shipway.embedded.ports import any_free

#: What a process of shipway's holds of OpenTelemetry with traces off: printed as JSON.
PROBE = """
import json, sys, threading, timeit
from shipway import server, tracing
from shipway.nodes import agent
from opentelemetry import trace
setup = tracing.setup("control-plane")
per_span = min(timeit.repeat(lambda: tracing.span("x").__enter__(), number=100000, repeat=3))
print(json.dumps({
    "setup": setup,
    "sdk": sorted(m for m in sys.modules if m.startswith("opentelemetry.sdk")),
    "provider": type(trace.get_tracer_provider()).__name__,
    "threads": threading.active_count(),
    "span_ns": per_span / 100000 * 1e9,
}))
"""


class _Sink(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that takes every batch and keeps nothing."""

    spans_bytes = 0

    def do_POST(self) -> None:
        _Sink.spans_bytes += len(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def sink() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def _router(port: int, upstream: int, env: dict[str, str]) -> Iterator[None]:
    args = [sys.executable, __file__, "router", str(port), str(upstream)]
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proxy._wait_for_port(port, process)
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


def probe() -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    ).stdout
    answer: dict[str, Any] = json.loads(out.splitlines()[-1])
    return answer


def main(record: bool) -> None:
    upstream, off_port, on_port, sampled_port = any_free(), any_free(), any_free(), any_free()
    quiet = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    with ExitStack() as stack:
        url = stack.enter_context(sink())
        stack.enter_context(
            proxy._process([sys.executable, proxy.__file__, "upstream", str(upstream)], upstream)
        )
        stack.enter_context(_router(off_port, upstream, quiet))
        traced = {**quiet, "OTEL_EXPORTER_OTLP_ENDPOINT": url}
        stack.enter_context(_router(on_port, upstream, traced))
        ratio = {
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.01",
        }
        stack.enter_context(_router(sampled_port, upstream, {**traced, **ratio}))
        targets = {
            "direct": upstream,
            "traces off": off_port,
            "traces on": on_port,
            "traces on, 1% sampled": sampled_port,
        }
        rows = proxy.measure(targets)
    rows = [(name, value) for name, value in rows if "nginx" not in name and "added" not in name]
    held = probe()
    rows += [
        ("traces off: tracing.setup() installs", "nothing" if not held["setup"] else "a provider"),
        ("traces off: OpenTelemetry SDK modules loaded", str(len(held["sdk"]))),
        ("traces off: tracer provider", held["provider"]),
        ("traces off: threads in the process", str(held["threads"])),
        ("traces off: one `with tracing.span(…)`", f"{held['span_ns']:.0f} ns"),
        ("traces on: bytes of spans the sink took", f"{_Sink.spans_bytes:,}"),
    ]
    notes = (
        f"Machine: {machine()}. The router in its own process in front of a raw asyncio "
        f"upstream answering 13 bytes, without and with OTEL_EXPORTER_OTLP_ENDPOINT (an OTLP/HTTP "
        f"sink in the benchmark's process; default batching), every request sampled or 1% of "
        f"them (parentbased_traceidratio). Latency: {proxy.SEQUENTIAL} "
        f"sequential GETs over one keep-alive connection; throughput: {proxy.CONNECTIONS} "
        f"connections, median of {proxy.ROUNDS} rounds of {proxy.SECONDS} s."
    )
    table("Traces: their cost on the router", notes, rows, save=record)


async def _serve(port: int, upstream: int) -> None:
    tracing.setup("node")
    await proxy._serve_router(port, upstream)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "router":
        asyncio.run(_serve(int(sys.argv[2]), int(sys.argv[3])))
    else:
        main(record="--dry-run" not in sys.argv)
