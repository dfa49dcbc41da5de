"""Benchmark: a cold first build beside its floor, in one run, rounds interleaved.

A cold build is an app's first, in an organization of its own: no dependency layer to reuse
and empty download caches. shipway's data directory is new, so the first Python round also
prepares the machine's Python virtualenv seed (made once per machine and runtime, then
copied into every install): that round shows what a machine's very first build costs. Each
round creates a new organization and an app in it, pushes
the example, and reads the build's steps; then, in a fresh directory with an empty download
cache, runs the floor, what a person would run by hand: `python3 -m venv && pip install -r
requirements.txt` (examples/flask) or `npm ci && npm run build` (examples/node), with the
flags shipway's install uses. The ratio is the build's own time (every step) over the floor's,
per round. Both download from the package registries (the floor's pip without this machine's
pip settings, which the build's cannot see either: no local wheel directory), so the figures
move with the network; the per-round ratio is what counts. Prints the figures and appends
them to bench/RESULTS.md (not with --no-save). Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from flaskapp import ROOT, Bench, flask_on_shipway, run
from run import machine, table

PIP = ("--disable-pip-version-check", "--no-input", "--progress-bar off")


def floor(example: str, cache: Path, bench: Bench) -> float:
    """Seconds of the plain install of EXAMPLE, in a copy of it, downloading into CACHE."""
    with tempfile.TemporaryDirectory(prefix="shipway-floor-") as tmp:
        work = Path(tmp) / "app"
        shutil.copytree(ROOT / "examples" / example, work)
        if example == "node":
            script = f"npm ci --no-audit --no-fund --cache {cache} && npm run build"
        else:
            script = (
                f"/usr/bin/python3 -m venv venv && venv/bin/pip install {' '.join(PIP)} "
                f"--cache-dir {cache} -r requirements.txt"
            )
        # The build's pip sees none of this machine's pip settings (a sandbox has no home of
        # the user's, and no PIP_ variable): it downloads from the package index. So does the
        # floor, rather than find the wheels in a local directory that pip.conf names.
        env = {k: v for k, v in bench.env.items() if not k.startswith("PIP_")}
        env["PIP_CONFIG_FILE"] = os.devnull
        started = time.perf_counter()
        done = subprocess.run(
            ["/bin/sh", "-c", script], cwd=work, env=env, capture_output=True, timeout=900
        )
        seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the floor failed: {done.stdout.decode()}{done.stderr.decode()}")
    return seconds


def cold_build(bench: Bench, example: str, round_: int) -> dict[str, Any]:
    """Push EXAMPLE to a new app of a new organization; the push's wall time and the build's
    steps."""
    org = bench.api.post("/orgs", json={"name": f"cold-{example}-{round_}"})
    org.raise_for_status()
    token = org.json()["owner_token"]
    headers = {"Authorization": f"Bearer {token}"}
    app = f"{example}-{round_}"
    api = httpx.Client(base_url=bench.api.base_url, headers=headers, timeout=60)
    api.post("/apps", json={"name": app}).raise_for_status()
    repo = bench.data.parent / f"{app}-repo"
    shutil.copytree(ROOT / "examples" / example, repo)
    for args in (("init", "-q", "-b", "main"), ("add", "-A"), ("commit", "-qm", "first")):
        run("git", *args, cwd=repo, env=bench.env)
    remote = f"http://shipway:{token}@127.0.0.1:{bench.port}/git/{app}.git"
    started = time.perf_counter()
    run("git", "push", "-q", remote, "main", cwd=repo, env=bench.env)
    wall = time.perf_counter() - started
    [deployment] = api.get(f"/apps/{app}/deployments", params={"limit": 1}).json()
    build = api.get(f"/builds/{deployment['build_id']}").json()
    assert deployment["status"] == "live" and not build["cache_warm"], (deployment, build)
    steps = {k: float(v) for k, v in build["steps"].items()}
    return {"push": wall, "total": sum(steps.values()), "steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--examples", default="flask,node")
    parser.add_argument("--no-save", action="store_true")
    options = parser.parse_args()
    rows: list[tuple[str, str]] = []
    with flask_on_shipway() as bench:
        for example in options.examples.split(","):
            builds, floors = [], []
            for round_ in range(options.rounds):
                with tempfile.TemporaryDirectory(prefix="shipway-cache-") as cache:
                    floors.append(floor(example, Path(cache), bench))
                builds.append(cold_build(bench, example, round_))
                print(f"{example} round {round_}: {builds[-1]}, floor {floors[-1]:.2f} s")
            ratios = [b["total"] / f for b, f in zip(builds, floors, strict=True)]

            def shown(times: list[float]) -> str:
                listed = ", ".join(f"{t:.2f}" for t in times)
                return f"median {statistics.median(times):.2f} s ({listed})"

            what = "npm ci && npm run build" if example == "node" else "venv && pip install"
            rows += [
                (f"{example}: cold build, every step", shown([b["total"] for b in builds])),
                (
                    f"{example}: of which installing",
                    shown([b["steps"]["dependencies"] for b in builds]),
                ),
                (f"{example}: floor, plain {what}", shown(floors)),
                (
                    f"{example}: build / floor, per round (target ≤ 1.2)",
                    f"median {statistics.median(ratios):.2f} "
                    f"({', '.join(f'{r:.2f}' for r in ratios)})",
                ),
                (f"{example}: first push, git push wall time", shown([b["push"] for b in builds])),
            ]
    table(
        "Cold first build beside its floor (examples/flask, examples/node)",
        f"Machine: {machine()}; SQLite store, embedded Temporal and NATS, the local builder, "
        f"bubblewrap sandbox; {options.rounds} rounds per example, floor and build "
        "interleaved, each with empty download caches (a new organization per build); the "
        "floor's pip without this machine's pip settings (PIP_CONFIG_FILE=/dev/null, no PIP_ "
        "variable), as the build's pip runs. shipway's data directory is new: flask's first "
        "round also prepares the machine's Python virtualenv seed, once.",
        rows,
        save=not options.no_save,
    )


if __name__ == "__main__":
    main()
