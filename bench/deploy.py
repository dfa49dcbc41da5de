"""Benchmark: git push of a small Flask app → release ready, cold and warm.

The warm case is the target: requirements.txt unchanged since the previous push, so the
dependency layer is reused. Figures per push:
- push: wall time of the whole `git push` (transfer + build + outcome), an upper bound;
- server: from the deployment being recorded (the push's source has arrived) to live;
- steps: checkout, dependencies, app layer (from the build record);
- workflow overhead: server time not spent in the build steps: the workflow, and starting
  the release's instances until they answer their health check.
Prints the figures and appends them to bench/RESULTS.md.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from flaskapp import flask_on_shipway
from run import machine, table

WARM_PUSHES = 10


def main() -> None:
    samples: list[dict[str, Any]] = []
    with flask_on_shipway() as bench:
        bench.git("add", "-A")
        bench.git("commit", "-qm", "v0")
        for i in range(WARM_PUSHES + 1):
            if i:
                app = bench.repo / "app.py"
                app.write_text(app.read_text() + f"\n# {i}\n")
                bench.git("commit", "-qam", f"v{i}")
            started = time.perf_counter()
            bench.push()
            wall = time.perf_counter() - started
            deployment = bench.api.get("/apps/bench/deployments", params={"limit": 1}).json()[0]
            build = bench.api.get(f"/builds/{deployment['build_id']}").json()
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
            f"app layer {cold['app_layer']:.3f}, workflow and start {cold['overhead']:.3f})",
        ),
        (
            f"warm push, median of {len(warm)}: git push wall time",
            f"{med('push'):.3f} s (min {min(s['push'] for s in warm):.3f}, "
            f"max {max(s['push'] for s in warm):.3f})",
        ),
        ("warm: server, recorded → live (target ≤ 1.0 s)", f"{med('server'):.3f} s"),
        (
            "warm: checkout / dependencies / app layer / workflow and instance start",
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
