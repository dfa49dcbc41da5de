"""Benchmark: from a push's pack sent to the first lines of shipway's answer.

Measured on the pusher's side, as a user sees it, from git's `Total N (delta M)` line (the
pack is written) to:
- `remote: -----> Received BRANCH`: shipway's git server has stored the pack and started its
  pre-receive hook;
- `remote: -----> Deploying to ENV`: the pushed tree is archived and its deployment recorded.
Warm pushes of examples/flask, one changed line each. Prints the figures and appends them to
bench/RESULTS.md.
"""

from __future__ import annotations

import statistics
import subprocess
import time

from flaskapp import Bench, flask_on_shipway
from run import machine, table

PUSHES = 10


def timed_push(bench: Bench) -> tuple[float, float]:
    """Seconds from the pack written to the Received line and to the Deploying line."""
    push = subprocess.Popen(
        ["git", "push", "--progress", bench.remote, "main"],
        cwd=bench.repo,
        env=bench.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert push.stderr is not None
    sent = received = deploying = None
    line = b""
    while chunk := push.stderr.read1(4096):
        for byte in chunk.splitlines(keepends=True):
            line += byte
            if not line.endswith((b"\n", b"\r")):
                continue
            now = time.perf_counter()
            if sent is None and line.startswith(b"Total "):
                sent = now
            if received is None and b"-----> Received" in line:
                received = now
            if deploying is None and b"-----> Deploying to" in line:
                deploying = now
            line = b""
    assert push.wait() == 0, "the push failed"
    if sent is None or received is None or deploying is None:
        raise SystemExit("git or shipway said less than a push says")
    return received - sent, deploying - sent


def spread(times: list[float]) -> str:
    return f"{statistics.median(times):.3f} s (min {min(times):.3f}, max {max(times):.3f})"


def main() -> None:
    with flask_on_shipway() as bench:
        bench.git("add", "-A")
        bench.git("commit", "-qm", "v0")
        bench.push()
        samples = []
        for i in range(1, PUSHES + 1):
            app = bench.repo / "app.py"
            app.write_text(app.read_text() + f"\n# {i}\n")
            bench.git("commit", "-qam", f"v{i}")
            samples.append(timed_push(bench))
    rows = [
        (f"pack written → `{said}` shown, median of {PUSHES} warm pushes", spread(times))
        for said, times in (
            ("Received", [r for r, _ in samples]),
            ("Deploying to", [d for _, d in samples]),
        )
    ]
    table(
        "git push: pack written → first lines of the push output (examples/flask)",
        f"{machine()}. Measured on the pusher's side from git's `Total` line to shipway's "
        "`-----> Received` line (the pack stored, the hook started) and to its "
        "`-----> Deploying to` line (the tree archived, the deployment recorded).",
        rows,
    )


if __name__ == "__main__":
    main()
