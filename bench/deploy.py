"""Benchmark: git push of a small Flask app → release ready, cold and warm.

The warm case is the target: requirements.txt unchanged since the previous push, so the
dependency layer is reused. Figures per push:
- push: wall time of the whole `git push` (transfer + build + outcome), an upper bound;
- server: from the deployment being recorded (the push's source has arrived) to live;
- steps: checkout, dependencies, app layer (from the build record);
- workflow overhead: server time not spent in the steps.
Prints the figures and appends them to bench/RESULTS.md.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from run import machine, table

from shipway.embedded.ports import any_free

ROOT = Path(__file__).resolve().parents[1]
WARM_PUSHES = 10
GIT_ENV = {
    "GIT_AUTHOR_NAME": "b",
    "GIT_AUTHOR_EMAIL": "b@example.com",
    "GIT_COMMITTER_NAME": "b",
    "GIT_COMMITTER_EMAIL": "b@example.com",
}


def run(*args: str, cwd: Path | None = None, env: dict[str, str]) -> str:
    return subprocess.run(
        args, cwd=cwd, env=env, check=True, capture_output=True, text=True, timeout=600
    ).stdout


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="shipway-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPWAY_")}
    env.update(GIT_ENV, SHIPWAY_DATA=str(tmp / "data"))
    port = any_free()
    shipway = [sys.executable, "-m", "shipway"]
    run(*shipway, "up", "-d", "--port", str(port), env=env)
    try:
        token = (tmp / "data" / "admin-token").read_text().strip()
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        client.post("/apps", json={"name": "bench"}).raise_for_status()
        repo = tmp / "repo"
        shutil.copytree(ROOT / "examples" / "flask", repo)
        run("git", "init", "-q", "-b", "main", cwd=repo, env=env)
        run("git", "add", "-A", cwd=repo, env=env)
        run("git", "commit", "-qm", "v0", cwd=repo, env=env)
        remote = f"http://shipway:{token}@127.0.0.1:{port}/git/bench.git"

        samples: list[dict[str, Any]] = []
        for i in range(WARM_PUSHES + 1):
            if i:
                (repo / "app.py").write_text((repo / "app.py").read_text() + f"\n# {i}\n")
                run("git", "commit", "-qam", f"v{i}", cwd=repo, env=env)
            started = time.perf_counter()
            run("git", "push", "-q", remote, "main", cwd=repo, env=env)
            wall = time.perf_counter() - started
            deployment = client.get("/apps/bench/deployments", params={"limit": 1}).json()[0]
            build = client.get(f"/builds/{deployment['build_id']}").json()
            assert deployment["status"] == "live", deployment
            server_s = float(deployment["duration"])
            steps = build["steps"]
            samples.append(
                {
                    "push": wall,
                    "server": server_s,
                    "warm": build["cache_warm"],
                    **steps,
                    "overhead": server_s - sum(steps.values()),
                }
            )
    finally:
        run(*shipway, "down", env=env)
        shutil.rmtree(tmp, ignore_errors=True)

    cold, warm = samples[0], samples[1:]
    assert not cold["warm"] and all(s["warm"] for s in warm)

    def med(key: str) -> float:
        return statistics.median(s[key] for s in warm)

    rows = [
        ("cold push (deps installed): git push wall time", f"{cold['push']:.2f} s"),
        (
            "cold: server, recorded → live",
            f"{cold['server']:.2f} s "
            f"(checkout {cold['checkout']:.3f}, dependencies {cold['dependencies']:.2f}, "
            f"app layer {cold['app_layer']:.3f}, workflow {cold['overhead']:.3f})",
        ),
        (
            f"warm push, median of {len(warm)}: git push wall time",
            f"{med('push'):.3f} s (min {min(s['push'] for s in warm):.3f}, "
            f"max {max(s['push'] for s in warm):.3f})",
        ),
        ("warm: server, recorded → live (target ≤ 1.0 s)", f"{med('server'):.3f} s"),
        (
            "warm: checkout / dependencies / app layer / workflow overhead",
            f"{med('checkout'):.3f} / {med('dependencies'):.3f} / {med('app_layer'):.3f} / "
            f"{med('overhead'):.3f} s",
        ),
    ]
    table(
        "git push → release ready (examples/flask)",
        (
            f"Machine: {machine()}; SQLite store, embedded Temporal and NATS, the "
            "local builder, bubblewrap sandbox. Warm = requirements.txt unchanged."
        ),
        rows,
    )


if __name__ == "__main__":
    main()
