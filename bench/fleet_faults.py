"""Benchmark: how fast the builder fleet acts on a cancel, a newer push and a lost builder.

All with real processes: a detached `shipway up` whose dispatch rules send the benchmark's
apps to pools that only `shipway builder` processes serve (never the builder inside the
server), real `git push`es of a Node app whose npm postinstall runs `sleep N` inside the
bubblewrap sandbox, and psutil to see that sleep. Each figure is measured ROUNDS times, each
round with its own sleep length so that its processes are told apart from the others'.
- cancel: from POST /api/v1/builds/ID/cancel (what `shipway builds cancel ID` sends) until
  the build's sandboxed sleep is gone;
- supersede: while build A runs, a new commit is pushed to the same app; from the start of
  that push, and from its build appearing in the app's builds, until A's sleep is gone;
- builder lost: two builders of one slot serve the pool; the one running the build is sent
  SIGKILL (or SIGSTOP, and SIGCONT once the build is done elsewhere); from the signal until
  the build names the other builder (its retry has begun), and until it has succeeded.
  Every such build must end succeeded with exactly one release: lost or published twice
  are counted. A killed builder is replaced before the next round.
Sandboxes and builds are polled every POLL seconds, the builds in the store (read-only), so
that polling this often adds no load to the API whose timing is measured.
Prints the figures and appends them to bench/RESULTS.md.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil
from flaskapp import GIT_ENV, run
from run import machine, table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shipway.embedded.ports import any_free
from tests import helpers
from tests.e2e.test_push import node_app

ROUNDS = 5
POLL = 0.02
#: The pool of the cancel and supersede apps (one builder), and that of the lost builders.
AWAY, LOSSY = "away", "lossy"
RULES = f"rules:\n  - {{region: {AWAY}, pool: {AWAY}}}\n  - {{region: {LOSSY}, pool: {LOSSY}}}\n"

T = TypeVar("T")


@dataclass
class Fleet:
    """A running shipway, its API, and the `shipway builder` processes started beside it."""

    tmp: Path
    port: int
    env: dict[str, str]
    api: httpx.Client
    builders: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def data(self) -> Path:
        return self.tmp / "data"

    def start_builder(self, pool: str, slots: int) -> str:
        """A new builder of POOL; returns its id once it is active in the fleet."""
        shipway = [sys.executable, "-m", "shipway", "builder", "--data", str(self.data)]
        with (self.tmp / f"builder-{pool}-{len(self.builders)}.log").open("ab") as log:
            process = subprocess.Popen(
                [*shipway, "--pool", pool, "--slots", str(slots)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        def joined() -> str | None:
            return next(
                (
                    b["id"]
                    for b in self.get("/builders")
                    if b["id"].endswith(f"-{process.pid}") and b["state"] == "active"
                ),
                None,
            )

        try:
            builder = wait_for(joined, 60, f"builder {process.pid} to join pool {pool}", 0.25)
        except BaseException:
            process.kill()
            raise
        self.builders[builder] = process
        return builder

    def get(self, path: str) -> Any:
        response = self.api.get(path)
        response.raise_for_status()
        return response.json()

    def builds(self, app: str) -> list[dict[str, Any]]:
        """The app's builds, newest first."""
        return self.get(f"/apps/{app}/builds")  # type: ignore[no-any-return]

    def build(self, build_id: int) -> tuple[str, str | None, int]:
        """Build BUILD_ID's status and builder, and the id of its app's newest build, as the
        store has them now: cheap enough to ask every POLL seconds."""
        store = f"file:{self.data / 'shipway.db'}?mode=ro"
        with contextlib.closing(sqlite3.connect(store, uri=True, timeout=10)) as db:
            status, builder, newest = db.execute(
                "SELECT status, builder, (SELECT max(id) FROM builds AS b WHERE b.app_id = "
                "builds.app_id) FROM builds WHERE id = ?",
                (build_id,),
            ).fetchone()
        return status, builder, newest

    def newer(self, build_id: int) -> bool:
        """Whether BUILD_ID's app has a newer build."""
        return self.build(build_id)[2] != build_id

    def create_app(self, name: str, region: str) -> None:
        self.api.post("/apps", json={"name": name, "region": region}).raise_for_status()

    def push(self, repo: Path, app: str) -> Push:
        token = self.api.headers["Authorization"].removeprefix("Bearer ")
        return Push([f"http://shipway:{token}@127.0.0.1:{self.port}/git/{app}.git"], repo, self.env)

    def stop_builders(self) -> None:
        for process in self.builders.values():
            process.kill()  # a stopped process dies of SIGKILL too
            process.wait(timeout=30)
        self.builders.clear()


class Push(threading.Thread):
    """`git push` of REPO's main in the background: it lasts as long as the build."""

    def __init__(self, url: list[str], repo: Path, env: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.args = ["git", "-C", str(repo), "push", "-q", *url, "main"]
        self.env = env
        self.result: subprocess.CompletedProcess[str] | None = None
        self.started_at = time.perf_counter()
        self.start()

    def run(self) -> None:
        self.result = subprocess.run(
            self.args, env=self.env, capture_output=True, text=True, timeout=600
        )

    def outcome(self, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        self.join(timeout)
        if self.result is None:
            raise SystemExit(f"`{' '.join(self.args[3:5])}` did not end in {timeout:.0f} s")
        return self.result


@contextmanager
def fleet_on_shipway() -> Iterator[Fleet]:
    """shipway running detached with the benchmark's dispatch rules; afterwards every builder
    started here is killed, shipway stopped and its data removed."""
    tmp = Path(tempfile.mkdtemp(prefix="shipway-bench-fleet-"))
    rules = tmp / "fleet.yml"
    rules.write_text(RULES)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPWAY_")}
    env.update(
        GIT_ENV,
        GIT_TERMINAL_PROMPT="0",
        SHIPWAY_DATA=str(tmp / "data"),
        SHIPWAY_FLEET_RULES=str(rules),
    )
    port = any_free()
    shipway = [sys.executable, "-m", "shipway"]
    fleet = None
    try:
        run(*shipway, "up", "-d", "--port", str(port), env=env)
        token = (tmp / "data" / "admin-token").read_text().strip()
        api = httpx.Client(
            base_url=f"http://127.0.0.1:{port}/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        fleet = Fleet(tmp, port, env, api)
        yield fleet
    finally:
        if fleet is not None:
            fleet.stop_builders()
        subprocess.run([*shipway, "down"], env=env, capture_output=True, timeout=300)
        shutil.rmtree(tmp, ignore_errors=True)


def commit(repo: Path, seconds: str, env: dict[str, str]) -> None:
    """REPO (made if new) with a commit of the app that sleeps SECONDS while it builds."""
    if not repo.exists():
        repo.mkdir(parents=True)
        run("git", "init", "-q", "-b", "main", cwd=repo, env=env)
    for name, text in node_app(f"sleep {seconds}").items():
        (repo / name).write_text(text)
    run("git", "add", "-A", cwd=repo, env=env)
    run("git", "commit", "-qm", f"sleep {seconds}", cwd=repo, env=env)


def sandboxed(*argv: str) -> list[psutil.Process]:
    """The processes running ARGV in a sandbox (see tests.helpers.sandboxed)."""
    found = []
    for pid in helpers.sandboxed(*argv):
        with contextlib.suppress(psutil.Error):  # gone meanwhile
            found.append(psutil.Process(pid))
    return found


def alive(proc: psutil.Process) -> bool:
    """Whether PROC still runs: exited and not yet reaped counts as gone."""
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def wait_for(
    predicate: Callable[[], T | None], timeout: float, what: str, every: float = POLL
) -> T:
    """PREDICATE's first true value, asked every EVERY seconds."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")


def when(predicate: Callable[[], object], timeout: float, what: str) -> float:
    """time.perf_counter() at which PREDICATE first held, asked every POLL seconds."""
    return wait_for(lambda: time.perf_counter() if predicate() else None, timeout, what)


def gone(procs: list[psutil.Process], timeout: float = 60) -> float:
    """time.perf_counter() at which every process of PROCS had exited."""
    pids = ", ".join(str(p.pid) for p in procs)
    return when(lambda: not any(alive(p) for p in procs), timeout, f"processes {pids} to exit")


def building(fleet: Fleet, seconds: str) -> list[psutil.Process]:
    """The sandboxed `sleep SECONDS` of a build, once it runs."""
    return wait_for(lambda: sandboxed("sleep", seconds), 180, f"sleep {seconds}", 0.05)


def summary(samples: list[float]) -> str:
    shown = ", ".join(f"{s:.2f}" for s in samples)
    return (
        f"p50 {statistics.median(samples):.2f} s, max {max(samples):.2f} s "
        f"(n={len(samples)}: {shown})"
    )


def cancels(fleet: Fleet) -> list[float]:
    """Seconds from asking to cancel a running build until its sandbox is gone."""
    fleet.create_app("cancelled", AWAY)
    repo = fleet.tmp / "cancelled"
    took = []
    for i in range(ROUNDS):
        seconds = str(200 + i)
        commit(repo, seconds, fleet.env)
        pushed = fleet.push(repo, "cancelled")
        sleep = building(fleet, seconds)
        build = fleet.builds("cancelled")[0]
        assert build["status"] == "building" and build["builder"] in fleet.builders, build
        started = time.perf_counter()
        fleet.api.post(f"/builds/{build['id']}/cancel").raise_for_status()
        took.append(gone(sleep) - started)
        assert pushed.outcome().returncode != 0
        assert fleet.builds("cancelled")[0]["status"] == "cancelled"
    return took


def supersedes(fleet: Fleet) -> tuple[list[float], list[float]]:
    """Seconds from pushing a newer commit, and from its build being listed, until the older
    build's sandbox is gone. The newer build is cancelled after each round."""
    fleet.create_app("superseded", AWAY)
    repo = fleet.tmp / "superseded"
    from_push, from_listed = [], []
    with ThreadPoolExecutor(1) as watcher:
        for i in range(ROUNDS):
            older, newer = str(210 + i), str(220 + i)
            commit(repo, older, fleet.env)
            first = fleet.push(repo, "superseded")
            sleep = building(fleet, older)
            build = fleet.builds("superseded")[0]
            assert build["status"] == "building" and build["builder"] in fleet.builders, build
            commit(repo, newer, fleet.env)
            second = fleet.push(repo, "superseded")
            listed = watcher.submit(
                when, partial(fleet.newer, build["id"]), 60, "the newer build to be listed"
            )
            ended = gone(sleep)
            from_push.append(ended - second.started_at)
            from_listed.append(ended - listed.result())
            assert first.outcome().returncode != 0
            latest = fleet.builds("superseded")[0]
            fleet.api.post(f"/builds/{latest['id']}/cancel")  # 409 if it has ended already
            second.outcome()
            [old] = [b for b in fleet.builds("superseded") if b["id"] == build["id"]]
            assert old["status"] == "superseded", old
            gone(sandboxed("sleep", newer))
    return from_push, from_listed


@dataclass
class Lost:
    """One round of a lost builder: seconds from the signal on."""

    moved: float
    succeeded: float
    #: Until the sandbox of a killed builder was gone; None when stopped (it was not killed).
    orphan_gone: float | None
    #: How the build ended, and how many releases the app has: succeeded and 1, or it was
    #: lost (not succeeded) or published twice.
    status: str
    releases: int


def lose_builder(fleet: Fleet, fault: signal.Signals, i: int) -> Lost:
    """A build whose builder gets FAULT mid-build, on a new app: it must complete elsewhere."""
    app = f"{fault.name.lower()}-{i}"
    fleet.create_app(app, LOSSY)
    seconds = f"{3 + (i + 1) / 10 + (1 if fault is signal.SIGSTOP else 0):.1f}"
    repo = fleet.tmp / app
    commit(repo, seconds, fleet.env)
    pushed = fleet.push(repo, app)
    sleep = building(fleet, seconds)
    [build] = fleet.builds(app)
    victim = build["builder"]
    assert victim in fleet.builders, build
    with ThreadPoolExecutor(1) as watcher:
        started = time.perf_counter()
        fleet.builders[victim].send_signal(fault)
        orphan = watcher.submit(gone, sleep, 120) if fault is signal.SIGKILL else None
        moved = when(
            lambda: fleet.build(build["id"])[1] not in (victim, None), 120, "the build to move"
        )
        done = when(
            lambda: fleet.build(build["id"])[0] not in ("queued", "building"),
            120,
            "the build to end",
        )
        orphan_gone = orphan.result() - started if orphan is not None else None
    pushed.outcome()
    if fault is signal.SIGKILL:
        fleet.builders.pop(victim).wait(timeout=30)
        fleet.start_builder(LOSSY, 1)
    else:
        fleet.builders[victim].send_signal(signal.SIGCONT)
        wait_for(
            lambda: any(
                b["id"] == victim and b["state"] == "active" and b["busy"] == 0
                for b in fleet.get("/builders")
            ),
            60,
            f"{victim} to come back idle",
            0.2,
        )
    [ended], releases = fleet.builds(app), fleet.get(f"/apps/{app}/releases")
    if ended["status"] != "succeeded" or len(releases) != 1:
        print(f"{app}: build {ended}\nreleases {releases}", file=sys.stderr)
    return Lost(moved - started, done - started, orphan_gone, ended["status"], len(releases))


def lost_builders(fleet: Fleet) -> dict[signal.Signals, list[Lost]]:
    for _ in range(2):
        fleet.start_builder(LOSSY, 1)
    return {
        fault: [lose_builder(fleet, fault, i) for i in range(ROUNDS)]
        for fault in (signal.SIGKILL, signal.SIGSTOP)
    }


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up as on Ctrl-C
    began, load = time.perf_counter(), os.getloadavg()[0]
    with fleet_on_shipway() as fleet:
        fleet.start_builder(AWAY, 2)
        cancelled = cancels(fleet)
        from_push, from_listed = supersedes(fleet)
        lost = lost_builders(fleet)
    rows = [
        ("cancel → the build's sandbox gone (target ≤ 2 s)", summary(cancelled)),
        ("newer push started → the older build's sandbox gone", summary(from_push)),
        (
            "newer build listed → the older build's sandbox gone (target ≤ 2 s)",
            summary(from_listed),
        ),
    ]
    for fault, rounds in lost.items():
        rows += [
            (
                f"{fault.name} the builder → the build retried on the other (target ≤ 30 s)",
                summary([r.moved for r in rounds]),
            ),
            (
                f"{fault.name} the builder → the build succeeded",
                summary([r.succeeded for r in rounds]),
            ),
        ]
        if fault is signal.SIGKILL:
            rows.append(
                (
                    "SIGKILL the builder → its sandbox gone",
                    summary([r.orphan_gone for r in rounds if r.orphan_gone is not None]),
                )
            )
    every = [r for rounds in lost.values() for r in rounds]
    rows.append(
        (
            "builds with a lost builder: succeeded / lost (ended otherwise) / published twice",
            f"{sum(r.status == 'succeeded' for r in every)} / "
            f"{sum(r.status != 'succeeded' for r in every)} / "
            f"{sum(r.releases > 1 for r in every)} of {len(every)}",
        )
    )
    table(
        "Builder fleet: cancel, supersede, lost builder",
        f"Machine: {machine()}; SQLite store, embedded Temporal and NATS, `shipway builder` "
        "processes beside a detached `shipway up` (the cancelled and superseded builds on one "
        "builder of 2 slots, the lost ones on two builders of 1 slot), bubblewrap sandbox; a "
        "Node app whose postinstall sleeps; build heartbeat timeout 10 s. Processes and "
        f"builds polled every {POLL * 1000:.0f} ms. Whole run {time.perf_counter() - began:.0f} s; "
        f"load average before it {load:.2f}.",
        rows,
    )


if __name__ == "__main__":
    main()
