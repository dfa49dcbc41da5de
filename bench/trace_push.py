"""Benchmark: where the time of a warm commit → live goes, step by step.

A detached `shipway up` sends its spans to an OTLP/HTTP receiver in this process; warm pushes of
examples/flask (one changed line in app.py each) are traced from git's request to the route
switch. Each step is shown as when it starts and ends, in ms after the push's first request
reached shipway (the root span), median over the pushes; beside them, from the pusher's side,
the whole `git push` and the time until the new version answers. Prints the figures and appends
them to bench/RESULTS.md. Nothing here asserts a time.
"""

from __future__ import annotations

import os
import re
import statistics
import sys
import time
from collections.abc import Iterator

import httpx
from flaskapp import ROOT, Bench, flask_on_shipway
from run import machine, table

sys.path.insert(0, str(ROOT))

from tests.otlp import Span, children, environment, receiving

PUSHES = 7

#: The steps shown, by span name, in the order they happen.
STEPS = (
    "git.pre_receive",
    "POST /api/v1/apps/{app}/pushes",
    "StartWorkflow:shipway.Deploy",
    "RunActivity:shipway.build",
    "release.record",
    "RunActivity:shipway.deploy.release",
    "RunActivity:shipway.runtime.go_live",
    "release.early_start",
    "instance.start",
    "sandbox.spawn",
    "sandbox.setup",
    "sandbox.pid1",
    "sandbox.network",
    "instance.health",
    "route.switch",
)


#: The spans under which the node starts the release: on hearing it recorded, or when the
#: workflow asks (a release with a release phase).
STARTS = ("release.early_start", "RunActivity:shipway.runtime.go_live")


def descendants(spans: list[Span], root: Span) -> Iterator[Span]:
    for child in children(spans, root):
        yield child
        yield from descendants(spans, child)


def of_the_release(spans: list[Span], root: Span) -> Iterator[Span]:
    """The push's spans, with those of sandboxes and instances only where they start the new
    release (under STARTS): a push may run other sandboxes meanwhile (a build's, a
    function's), whose steps would otherwise mix with the release's."""
    starts = [s for s in descendants(spans, root) if s.name in STARTS]
    release = {s.span_id for start in starts for s in descendants(spans, start)}
    for span in descendants(spans, root):
        if span.span_id in release or not span.name.startswith(("sandbox.", "instance.")):
            yield span


def push_until_live(bench: Bench, marker: str) -> tuple[float, float]:
    """Seconds from the start of `git push` to its end, and to the new version answering."""
    app = bench.repo / "app.py"
    app.write_text(re.sub(r'message="[^"]*"', f'message="{marker}"', app.read_text()))
    bench.git("commit", "-qam", marker)
    started = time.perf_counter()
    bench.push()
    pushed = time.perf_counter() - started
    url = f"http://127.0.0.1:{bench.port}/"
    while True:
        try:
            answer = httpx.get(url, headers={"Host": "bench.localhost"}, timeout=5)
            if answer.status_code == 200 and answer.json().get("message") == marker:
                return pushed, time.perf_counter() - started
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.005)


def main() -> None:
    offsets: dict[str, list[tuple[float, float]]] = {step: [] for step in STEPS}
    pushed: list[float] = []
    live: list[float] = []
    with receiving() as receiver:
        os.environ.update(environment(receiver))
        with flask_on_shipway() as bench:
            bench.git("add", "-A")
            bench.git("commit", "-qm", "v0")
            bench.push()
            for i in range(1, PUSHES + 1):
                seen = {s.span_id for s in receiver.received() if s.name == "route.switch"}
                took, answered = push_until_live(bench, f"warm {i}")
                pushed.append(took)
                live.append(answered)

                def switched(spans: list[Span], seen: set[str] = seen) -> Span | None:
                    new = [s for s in spans if s.name == "route.switch" and s.span_id not in seen]
                    return new[0] if new else None

                switch = receiver.wait(switched, 30, "the push's route switch")

                def rooted(spans: list[Span], trace: str = switch.trace_id) -> Span | None:
                    roots = [s for s in spans if s.trace_id == trace and not s.parent_id]
                    return roots[0] if roots else None

                root = receiver.wait(rooted, 30, "the push's first request")
                spans = [s for s in receiver.received() if s.trace_id == switch.trace_id]
                for span in of_the_release(spans, root):
                    if span.name in offsets:
                        offsets[span.name].append(
                            ((span.start - root.start) / 1e6, (span.end - root.start) / 1e6)
                        )
    rows = [
        (
            f"{step}: starts / ends, ms after the push's first request",
            f"{statistics.median(s for s, _ in found):.0f} / "
            f"{statistics.median(e for _, e in found):.0f} (n={len(found)})",
        )
        for step, found in offsets.items()
        if found
    ]
    rows += [
        ("git push start → its end, s", f"median {statistics.median(pushed):.3f}"),
        ("git push start → new version answers, s", f"median {statistics.median(live):.3f}"),
    ]
    table(
        "Where a warm commit → live goes (examples/flask, traced)",
        f"{machine()}. A detached `shipway up` (SQLite store, embedded Temporal and NATS, the "
        "local builder) exporting its spans to an OTLP/HTTP receiver in the benchmark's process "
        f"(OTEL_BSP_SCHEDULE_DELAY=100); {PUSHES} warm pushes of one changed line in app.py, "
        "the token in the remote's URL; the new version polled every 5 ms through the router.",
        rows,
    )


if __name__ == "__main__":
    main()
