"""Benchmark: webhook deliveries from a git host to a detached `shipway up`.

The host is the stand-in the tests use (tests/githost.py): a real HTTP server on this machine
serving the repository through git's own http-backend and taking commit-status calls. The
Flask example is pushed to it, the app is connected with `shipway apps connect`, and each
commit is delivered as a signed GitHub push. Figures:
- answer: from sending a delivery to holding shipway's answer (the target: within 1 s; the
  build runs after the answer), for pushes (recorded, workflow started) and pings (verified,
  recorded, nothing started);
- delivery → live: from sending a push delivery to its deployment being live, and to the
  host holding the final commit status; first (cold cache) and the rest (warm);
- fetch: bytes of the git-upload-pack answers the host sent for each delivery; the first
  fetch brings the whole history (with a megabyte of random data), each later one only the
  new commit.
Prints the figures and appends them to bench/RESULTS.md.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from flaskapp import ROOT, flask_on_shipway
from run import machine, percentiles, table

sys.path.insert(0, str(ROOT))

from shipway.webhooks.verify import Provider
from tests.githost import StandInHost
from tests.webhooks import deliveries

SECRET = "bench-secret"
PUSHES = 10
PINGS = 100


def main() -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        StandInHost(Path(tmp)) as host,
        flask_on_shipway() as bench,
    ):
        bare = host.add_repo("acme/bench")
        bench.git("remote", "add", "host", str(bare))
        # A megabyte of history the first fetch brings and later ones must not bring again.
        (bench.repo / "static").mkdir(exist_ok=True)
        (bench.repo / "static" / "noise.bin").write_bytes(os.urandom(1024 * 1024))
        bench.git("add", "-A")
        bench.git("commit", "-qm", "v0")
        bench.api.put(
            "/apps/bench/connection",
            json={
                "provider": "github",
                "repo": "acme/bench",
                "secret": SECRET,
                "token": host.token,
                "api_url": host.api_url(Provider.GITHUB),
            },
        ).raise_for_status()
        hooks = httpx.Client(base_url=f"http://127.0.0.1:{bench.port}", timeout=30)
        push_answers, to_live, to_status, fetched = [], [], [], []
        for i in range(PUSHES):
            if i:
                app = bench.repo / "app.py"
                app.write_text(app.read_text() + f"\n# {i}\n")
                bench.git("commit", "-qam", f"v{i}")
            bench.git("push", "-q", "host", "main")
            sha = bench.git("rev-parse", "HEAD").strip()
            event, body = deliveries.push(Provider.GITHUB, "main", sha)
            headers = deliveries.signed(Provider.GITHUB, SECRET, event, body, f"push-{i}")
            packs = len(host.pack_bytes)
            started = time.perf_counter()
            answer = hooks.post("/hooks/github/bench", content=body, headers=headers)
            push_answers.append(time.perf_counter() - started)
            assert answer.status_code == 202, answer.text
            live, reported = _until_live_and_reported(bench.api, host, sha, f"push-{i}")
            to_live.append(live - started)
            to_status.append(reported - started)
            fetched.append(sum(host.pack_bytes[packs:]))
        pings = []
        for _ in range(PINGS):
            body = b'{"zen": "Keep it logically awesome."}'
            headers = deliveries.signed(Provider.GITHUB, SECRET, "ping", body, str(uuid.uuid4()))
            started = time.perf_counter()
            hooks.post("/hooks/github/bench", content=body, headers=headers).raise_for_status()
            pings.append(time.perf_counter() - started)

    warm_live, warm_status = to_live[1:], to_status[1:]
    rows = [
        ("answer to a push delivery (recorded, workflow started)", _spread(push_answers)),
        ("answer to a ping (verified, recorded)", percentiles(pings)),
        ("push delivery → live, first (cold cache)", f"{to_live[0]:.2f} s"),
        ("push delivery → live, warm (median)", f"{statistics.median(warm_live):.2f} s"),
        ("push delivery → final commit status at the host, warm (median)",
         f"{statistics.median(warm_status):.2f} s"),
        ("first fetch: bytes the host sent (whole history)", f"{fetched[0]:,}"),
        ("later fetches: bytes the host sent (one new commit, median)",
         f"{statistics.median(fetched[1:]):,.0f}"),
    ]  # fmt: skip
    table(
        "Webhooks",
        f"Machine: {machine()}; SQLite store, embedded Temporal and NATS; a stand-in GitHub on "
        f"the same machine; the Flask example, {PUSHES} pushes each delivered once, then "
        f"{PINGS} pings.",
        rows,
    )


def _spread(samples: list[float]) -> str:
    ms = [s * 1000 for s in samples]
    return f"median {statistics.median(ms):.1f} ms, max {max(ms):.1f} ms (n={len(ms)})"


def _until_live_and_reported(
    api: httpx.Client, host: StandInHost, sha: str, delivery: str
) -> tuple[float, float]:
    """When the delivery's deployment went live, and when the host got the final status."""
    live = reported = 0.0
    deadline = time.monotonic() + 600
    while not (live and reported):
        if time.monotonic() > deadline:
            raise SystemExit(f"delivery {delivery} did not settle in 10 minutes")
        now = time.perf_counter()
        if not live:
            found = [
                d for d in api.get("/apps/bench/deliveries").json() if d["delivery_id"] == delivery
            ]
            if found and found[0]["deployment_id"]:
                deployment = api.get(f"/deployments/{found[0]['deployment_id']}").json()
                if deployment["status"] == "live":
                    live = now
                elif deployment["status"] in ("failed", "superseded", "cancelled"):
                    raise SystemExit(f"deployment of {delivery}: {deployment}")
        if not reported and any(s.sha == sha and s.state == "success" for s in host.statuses):
            reported = now
        time.sleep(0.02)
    return live, reported


if __name__ == "__main__":
    main()
