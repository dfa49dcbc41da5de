"""What the deploy benchmarks share: a detached `shipway up` in a fresh data dir, with the
Flask example committed in a git repo and an app "bench" to push it to."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from shipway.embedded.ports import any_free

ROOT = Path(__file__).resolve().parents[1]
GIT_ENV = {
    "GIT_AUTHOR_NAME": "b",
    "GIT_AUTHOR_EMAIL": "b@example.com",
    "GIT_COMMITTER_NAME": "b",
    "GIT_COMMITTER_EMAIL": "b@example.com",
}


@dataclass
class Bench:
    port: int
    api: httpx.Client
    repo: Path
    env: dict[str, str]

    @property
    def remote(self) -> str:
        return self.remote_of("bench")

    @property
    def data(self) -> Path:
        """shipway's data dir: admin-token, run/node.json, shipway.pid."""
        return Path(self.env["SHIPWAY_DATA"])

    def remote_of(self, app: str) -> str:
        """The URL `git push` deploys APP through, the admin token in it."""
        token = self.api.headers["Authorization"].removeprefix("Bearer ")
        return f"http://shipway:{token}@127.0.0.1:{self.port}/git/{app}.git"

    def git(self, *args: str) -> str:
        return run("git", *args, cwd=self.repo, env=self.env)

    def push(self) -> None:
        self.git("push", "-q", self.remote, "main")


def run(*args: str, cwd: Path | None = None, env: dict[str, str]) -> str:
    return subprocess.run(
        args, cwd=cwd, env=env, check=True, capture_output=True, text=True, timeout=600
    ).stdout


@contextmanager
def flask_on_shipway(example: str = "flask") -> Iterator[Bench]:
    """shipway running detached, app "bench" created, examples/EXAMPLE in a repo not yet
    committed (the caller may change it first); stopped and removed afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix="shipway-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPWAY_")}
    env.update(GIT_ENV, SHIPWAY_DATA=str(tmp / "data"))
    port = any_free()
    shipway = [sys.executable, "-m", "shipway"]
    run(*shipway, "up", "-d", "--port", str(port), env=env)
    try:
        token = (tmp / "data" / "admin-token").read_text().strip()
        api = httpx.Client(
            base_url=f"http://127.0.0.1:{port}/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        api.post("/apps", json={"name": "bench"}).raise_for_status()
        repo = tmp / "repo"
        shutil.copytree(ROOT / "examples" / example, repo)
        bench = Bench(port, api, repo, env)
        bench.git("init", "-q", "-b", "main")
        yield bench
    finally:
        run(*shipway, "down", env=env)
        shutil.rmtree(tmp, ignore_errors=True)


def timed(*argv: str, bench: Bench, cwd: Path | None = None) -> float:
    """Seconds ARGV took to run in BENCH's environment; exits with its output if it failed."""
    started = time.perf_counter()
    done = subprocess.run(argv, env=bench.env, cwd=cwd, capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stdout}{done.stderr}")
    return seconds


def cli(*args: str, bench: Bench) -> float:
    """Seconds a `shipway ARGS` command took."""
    return timed(sys.executable, "-m", "shipway", *args, bench=bench)


def spread(times: list[float]) -> str:
    """The median of TIMES, with every figure."""
    shown = ", ".join(f"{t:.2f}" for t in times)
    return f"median {statistics.median(times):.2f} s (n={len(times)}: {shown})"
