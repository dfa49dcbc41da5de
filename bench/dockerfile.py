"""Benchmark: a Dockerfile app (examples/dockerfile-python) on a machine with no registry.

- The first build, with debian:bookworm-slim present and nothing else: `git push` until the
  push reports the release live, and the build's own time, each beside a plain
  `podman build` of the same Dockerfile into a storage of its own holding the same base (the
  floor), A and B interleaved, on a fresh shipway each round.
- A warm push: only app.py changed, so every step up to `COPY . /app` comes from the cache:
  `git push` until the push reports the release live (it answers by then).
- `shipway images base debian:bookworm-slim`, once (mmdebstrap from Debian's packages).
Prints the figures and appends them to bench/RESULTS.md.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from flaskapp import ROOT, Bench, cli, flask_on_shipway, spread, timed
from run import machine, table

from shipway.oci.podman import ULIMITS, Podman

EXAMPLE = "dockerfile-python"
BASE = "debian:bookworm-slim"
ROUNDS = 3
PUSHES = 7


def last_build_seconds(bench: Bench) -> float:
    builds = bench.api.get("/apps/bench/builds").raise_for_status().json()
    seconds: float = builds[0]["duration"]
    return seconds


def floor(base_archive: Path) -> float:
    """A plain `podman build` of the example into a storage of its own with only the base."""
    tmp = Path(tempfile.mkdtemp(prefix="shipway-floor-"))
    podman = Podman(tmp / "data")
    try:
        asyncio.run(podman.run("load", "--input", str(base_archive), timeout=600))
        context = tmp / "context"
        shutil.copytree(ROOT / "examples" / EXAMPLE, context)
        started = time.perf_counter()
        subprocess.run(
            podman.argv("build", "--quiet", *ULIMITS, "--tag", "floor:1", str(context)),
            check=True,
            capture_output=True,
            timeout=900,
        )
        return time.perf_counter() - started
    finally:
        subprocess.run(podman.argv("rm", "--all", "--force"), capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(podman.runroot, ignore_errors=True)


def push(bench: Bench) -> float:
    return timed("git", "push", "-q", bench.remote, "main", bench=bench, cwd=bench.repo)


def first_push(bench: Bench) -> tuple[float, float]:
    bench.git("add", "-A")
    bench.git("commit", "-qm", "first")
    pushed = push(bench)
    return pushed, last_build_seconds(bench)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="shipway-bench-base-"))
    archive = work / "base.tar"
    pushes: list[float] = []
    builds: list[float] = []
    floors: list[float] = []
    warm: list[float] = []
    warm_builds: list[float] = []
    made = 0.0
    try:
        for round_ in range(ROUNDS):
            with flask_on_shipway(EXAMPLE) as bench:
                data = Path(bench.env["SHIPWAY_DATA"])
                if round_ == 0:
                    made = cli("images", "base", BASE, bench=bench)
                    asyncio.run(
                        Podman(data).run(
                            "save", "--output", str(archive), f"docker.io/library/{BASE}"
                        )
                    )
                else:
                    cli("images", "import", str(archive), bench=bench)
                if round_ % 2 == 0:
                    pushed, built = first_push(bench)
                    floors.append(floor(archive))
                else:
                    floors.append(floor(archive))
                    pushed, built = first_push(bench)
                pushes.append(pushed)
                builds.append(built)
                if round_ == ROUNDS - 1:
                    app = bench.repo / "app.py"
                    for n in range(PUSHES):
                        app.write_text(app.read_text() + f"\n# change {n}\n")
                        bench.git("commit", "-qam", f"change {n}")
                        warm.append(
                            timed(
                                "git",
                                "push",
                                "-q",
                                bench.remote,
                                "main",
                                bench=bench,
                                cwd=bench.repo,
                            )
                        )
                        warm_builds.append(last_build_seconds(bench))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ratio_push = [p / f for p, f in zip(pushes, floors, strict=True)]
    ratio_build = [b / f for b, f in zip(builds, floors, strict=True)]
    rows = [
        (f"`shipway images base {BASE}` (mmdebstrap, then stored)", f"{made:.1f} s"),
        ("floor: plain `podman build` of the example, base present, cold cache", spread(floors)),
        ("first build, shipway's own (base pinned, podman build, image inspected)", spread(builds)),
        ("first `git push` → live (build, then the container started and healthy)", spread(pushes)),
        (
            "first build ÷ floor, per round (target ≤ 1.20)",
            ", ".join(f"{r:.2f}" for r in ratio_build)
            + f" (median {statistics.median(ratio_build):.2f})",
        ),
        (
            "first push → live ÷ floor, per round",
            ", ".join(f"{r:.2f}" for r in ratio_push)
            + f" (median {statistics.median(ratio_push):.2f})",
        ),
        ("warm push, only app.py changed → live (target ≤ 3 s)", spread(warm)),
        ("warm push: the build's own part", spread(warm_builds)),
    ]
    table(
        "Dockerfile apps: podman builds and containers (examples/dockerfile-python)",
        f"{machine()}. A detached `shipway up` (SQLite, embedded Temporal and NATS), no "
        "container registry reachable; podman 4.3 with runc. Each round is a fresh shipway "
        "and a fresh floor storage with only the base, A/B order alternating. "
        + json.dumps({"rounds": ROUNDS, "warm pushes": PUSHES}),
        rows,
    )


if __name__ == "__main__":
    main()
