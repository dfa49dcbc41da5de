"""Benchmark: one node serving 1, 20 and 100 apps of one organization (examples/flask).

All through one real `shipway up -d`, real `git push`es, the router on the control port and
bubblewrap-sandboxed instances (gunicorn, 2 workers, each in its own network namespace):
- first deploys: the first app's first push installs the dependencies; every later app of the
  organization has the same requirements.txt, so its build reuses that dependency layer. From
  the start of `git push` until the app's URL answers, and the build record's duration.
- memory: PSS (/proc/PID/smaps_rollup) of everything below the `shipway node` process, split
  into the supervisor (the reaper program and the two bwrap processes), the network relay
  (slirp4netns) and the app's own processes (the Procfile's shell, gunicorn and its workers);
  the RSS of the node, of `shipway up` and of its embedded Temporal and NATS.
- commit → live: one changed line in app.py of app "bench", from the start of `git push`
  until the new version answers (polled every 5 ms from the push's start, since the push
  waits for the deployment), and until the push ends; interleaved with the floor: a `git push`
  of the same commit to a local bare repo, then the same gunicorn started from the working
  copy, with a venv made once outside shipway, until it answers.
- router latency: sequential GETs to "bench" over one keep-alive connection through the
  router; and straight to its gunicorn inside the instance's network namespace (nsenter), a
  connection per GET, since gunicorn's sync workers close every connection.
Prints the figures and appends them to bench/RESULTS.md. `--stages 1,3 --no-save` for a
quick look.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psutil
from flaskapp import ROOT, Bench, flask_on_shipway, run
from live import set_marker
from run import machine, table

from shipway.embedded.ports import any_free

STAGES = (1, 20, 100)
PUSHES = 5
GETS = 1000
MIB = 1024 * 1024

#: Run inside an instance's network namespace: ARGV = port, count; prints each GET's seconds.
DIRECT = """
import http.client, json, sys, time
port, count = int(sys.argv[1]), int(sys.argv[2])
out = []
for i in range(count + 20):
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/")
    response = conn.getresponse()
    response.read()
    conn.close()
    assert response.status == 200, response.status
    if i >= 20:
        out.append(time.perf_counter() - started)
print(json.dumps(out))
"""


def get(port: int, host: str) -> tuple[int, bytes]:
    """One GET / on a connection of its own: nothing kept between polls."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/", headers={"Host": host})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def answers(port: int, host: str, marker: str) -> bool:
    try:
        status, body = get(port, host)
    except OSError:
        return False
    if status != 200:
        return False
    try:
        return json.loads(body).get("message") == marker
    except ValueError:
        return False


def until_answers(port: int, host: str, marker: str, timeout: float = 120) -> float:
    """Poll every 5 ms until HOST answers with MARKER; returns time.perf_counter() then."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if answers(port, host, marker):
            return time.perf_counter()
        time.sleep(0.005)
    raise SystemExit(f"{host} never answered {marker!r}")


def push(bench: Bench, app: str) -> str:
    """`git push` of main to APP; returns what the remote said (its build log)."""
    done = subprocess.run(
        ["git", "push", bench.remote_of(app), "main"],
        cwd=bench.repo,
        env=bench.env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise SystemExit(f"git push to {app} failed: {done.stdout}{done.stderr}")
    return done.stderr


@dataclass
class FirstDeploy:
    app: str
    seconds: float
    build: float
    steps: dict[str, float]
    reused: bool


def first_deploy(bench: Bench, app: str, marker: str, create: bool = True) -> FirstDeploy:
    """Create APP (unless it exists), push the repo's HEAD to it, wait until it answers."""
    if create:
        bench.api.post("/apps", json={"name": app}).raise_for_status()
    host = host_of(bench, app)
    started = time.perf_counter()
    said = push(bench, app)
    seconds = until_answers(bench.port, host, marker) - started
    build = bench.api.get(f"/apps/{app}/builds", params={"limit": 1}).json()[0]
    return FirstDeploy(
        app, seconds, float(build["duration"]), build["steps"], "reusing layer" in said
    )


def host_of(bench: Bench, app: str) -> str:
    """The Host the router knows APP by, from the URL the API gives it."""
    host = urlsplit(bench.api.get(f"/apps/{app}").json()["url"]).hostname
    assert host, app
    return host


def pss(pid: int) -> int:
    """Bytes of PSS of process PID; 0 once it has gone."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


def rss(process: psutil.Process) -> int:
    try:
        return int(process.memory_info().rss)
    except psutil.Error:
        return 0


@dataclass
class Memory:
    apps: int
    instances: int = 0
    reaper: int = 0
    bwrap: int = 0
    network: int = 0
    networks: int = 0
    app: int = 0
    other: int = 0
    others: list[str] = field(default_factory=list)
    node_rss: int = 0
    control_rss: int = 0
    services_rss: int = 0

    @property
    def supervisor(self) -> int:
        return self.reaper + self.bwrap

    @property
    def total(self) -> int:
        return self.supervisor + self.network + self.app + self.other

    def per_app(self, value: int) -> str:
        return f"{value / self.apps / MIB:.2f}"


def node_process(bench: Bench) -> psutil.Process:
    return psutil.Process(json.loads((bench.data / "run" / "node.json").read_text())["pid"])


def instances(node: psutil.Process) -> list[psutil.Process]:
    """The supervisors the node runs, one per instance."""
    return [c for c in node.children() if is_supervisor(c)]


def is_supervisor(process: psutil.Process) -> bool:
    """Whether PROCESS runs the sandbox's reaper program (built from reaper.c)."""
    cmdline = safe_cmdline(process)
    return bool(cmdline) and Path(cmdline[0]).name.startswith("reaper-")


def safe_cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:
        return []


def memory(bench: Bench, apps: int) -> Memory:
    """Each process below the node, put in its part, and the RSS of the node and control plane."""
    node = node_process(bench)
    control = psutil.Process(int((bench.data / "shipway.pid").read_text().split()[0]))
    out = Memory(apps)
    for child in node.children():
        if is_supervisor(child):
            out.instances += 1
            out.reaper += pss(child.pid)
            for below in child.children(recursive=True):
                if below.name() == "bwrap":
                    out.bwrap += pss(below.pid)
                else:
                    out.app += pss(below.pid)
        elif child.name() == "slirp4netns":
            out.networks += 1
            out.network += pss(child.pid)
        else:
            out.others.append(child.name())
            out.other += sum(pss(p.pid) for p in [child, *child.children(recursive=True)])
    out.node_rss = rss(node)
    out.control_rss = rss(control)
    out.services_rss = sum(rss(c) for c in control.children() if c.pid != node.pid)
    return out


def settle(bench: Bench, apps: int) -> None:
    """Wait until the node runs one instance per app (retired ones gone), then a moment more."""
    node = node_process(bench)
    deadline = time.monotonic() + 90
    while len(instances(node)) != apps and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(3)


def through_router(port: int, host: str, count: int) -> list[float]:
    """COUNT sequential GETs over one keep-alive connection, after 20 to warm up."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    out = []
    try:
        for i in range(count + 20):
            started = time.perf_counter()
            conn.request("GET", "/", headers={"Host": host})
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise SystemExit(f"the router answered {response.status}")
            if i >= 20:
                out.append(time.perf_counter() - started)
    finally:
        conn.close()
    return out


def straight(bench: Bench, app: str, count: int) -> list[float] | None:
    """COUNT GETs straight to APP's gunicorn, from inside its network namespace."""
    nsenter = shutil.which("nsenter")
    if nsenter is None or os.geteuid() != 0:
        return None
    for process in node_process(bench).children(recursive=True):
        try:
            environ = process.environ()
            name = process.name()
        except psutil.Error:
            continue
        if name == "gunicorn" and environ.get("SHIPWAY_APP") == app:
            master = process.parent() if process.parent().name() == "gunicorn" else process
            argv = [nsenter, f"--net=/proc/{master.pid}/ns/net", sys.executable, "-c", DIRECT]
            argv += [environ["PORT"], str(count)]
            done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
            if done.returncode != 0:
                print(f"straight to the instance failed: {done.stderr}", file=sys.stderr)
                return None
            return [float(s) for s in json.loads(done.stdout)]
    return None


class Floor:
    """The same commit without shipway: a push to a local bare repo, then gunicorn itself."""

    def __init__(self, tmp: Path, bench: Bench) -> None:
        self.bench = bench
        self.bare = tmp / "floor.git"
        self.venv = tmp / "venv"
        run("git", "init", "-q", "--bare", str(self.bare), env=bench.env)
        run("/usr/bin/python3", "-m", "venv", str(self.venv), env=bench.env)
        requirements = str(ROOT / "examples" / "flask" / "requirements.txt")
        pip = str(self.venv / "bin" / "pip")
        run(pip, "install", "-q", "-r", requirements, env=bench.env)
        bench.git("push", "-q", str(self.bare), "main")

    def once(self, marker: str) -> float:
        """Seconds from the push's start until the new gunicorn answers with MARKER."""
        port = any_free()
        started = time.perf_counter()
        self.bench.git("push", "-q", str(self.bare), "main")
        argv = ["app:app", "--bind", f"127.0.0.1:{port}", "--workers", "2"]
        gunicorn = subprocess.Popen(
            [str(self.venv / "bin" / "gunicorn"), *argv],
            cwd=self.bench.repo,
            # No bytecode beside app.py: two pushes within a second, whose app.py differs by
            # one digit, leave its mtime and size alike, and the second gunicorn would run the
            # first's code.
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            live = until_answers(port, "127.0.0.1", marker, timeout=60)
        finally:
            gunicorn.terminate()
            try:
                gunicorn.wait(timeout=30)
            except subprocess.TimeoutExpired:
                gunicorn.kill()
                gunicorn.wait()
        return live - started


@dataclass
class Pushes:
    """Commit → live of one app, each push followed by the floor for the same commit."""

    live: list[float] = field(default_factory=list)
    pushed: list[float] = field(default_factory=list)
    server: list[float] = field(default_factory=list)
    build: list[float] = field(default_factory=list)
    floor: list[float] = field(default_factory=list)


def commit_to_live(bench: Bench, floor: Floor, apps: int, count: int) -> Pushes:
    host = host_of(bench, "bench")
    out = Pushes()
    for i in range(1, count + 1):
        marker = f"{apps} apps, push {i}"
        set_marker(bench.repo, marker)
        bench.git("commit", "-qam", marker)
        # The new version is looked for from the push's start: the push itself waits for the
        # deployment, so the version can answer before git is done.
        with ThreadPoolExecutor(1) as poller:
            started = time.perf_counter()
            answered = poller.submit(until_answers, bench.port, host, marker)
            bench.push()
            out.pushed.append(time.perf_counter() - started)
            out.live.append(answered.result() - started)
        deployment = bench.api.get("/apps/bench/deployments", params={"limit": 1}).json()[0]
        build = bench.api.get(f"/builds/{deployment['build_id']}").json()
        out.server.append(float(deployment["duration"]))
        out.build.append(float(build["duration"]))
        out.floor.append(floor.once(marker))
        print(f"  push {i}: {out.live[-1]:.3f} s, floor {out.floor[-1]:.3f} s", flush=True)
    return out


class Neighbours:
    """Test runs and other benchmarks seen on the machine while this one measured."""

    def __init__(self) -> None:
        self.seen: dict[str, set[str]] = {}

    def look(self, where: str) -> None:
        me = psutil.Process()
        ours = {me.pid, *(p.pid for p in me.parents())}  # a `timeout` or `time` running this one
        for process in psutil.process_iter(["pid", "cmdline"]):
            words = process.info["cmdline"] or []
            if process.info["pid"] in ours:
                continue
            name = next((w for w in words if "pytest" in w), None) and "pytest"
            name = name or next(
                (Path(w).name for w in words if "bench/" in w and w.endswith(".py")),
                None,
            )
            if name:
                self.seen.setdefault(name, set()).add(where)

    def __str__(self) -> str:
        if not self.seen:
            return "no test run or other benchmark was seen running meanwhile"
        return "seen running meanwhile: " + "; ".join(
            f"{name} (during {', '.join(sorted(where))})" for name, where in self.seen.items()
        )


@dataclass
class Stage:
    apps: int
    memory: Memory
    router: list[float]
    direct: list[float] | None
    pushes: Pushes


def spread(values: list[float], digits: int = 3) -> str:
    return (
        f"median {statistics.median(values):.{digits}f} s (min {min(values):.{digits}f}, "
        f"max {max(values):.{digits}f}, n={len(values)})"
    )


def percentiles(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    q = statistics.quantiles(ms, n=100)
    return f"p50 {q[49]:.2f} ms, p95 {q[94]:.2f} ms (n={len(ms)})"


@contextmanager
def clock(what: str) -> Iterator[None]:
    started = time.monotonic()
    print(f"{what} …", flush=True)
    yield
    print(f"{what}: {time.monotonic() - started:.0f} s", flush=True)


def measure(
    stages: tuple[int, ...], pushes: int, gets: int, neighbours: Neighbours
) -> tuple[FirstDeploy, list[FirstDeploy], list[Stage], float]:
    """Deploy apps up to each stage's count, then measure that stage."""
    began = time.monotonic()
    firsts: list[FirstDeploy] = []
    done: list[Stage] = []
    tmp = Path(tempfile.mkdtemp(prefix="shipway-bench-floor-"))
    port = 0
    try:
        with flask_on_shipway() as bench:
            port = bench.port
            marker = "build 0"
            set_marker(bench.repo, marker)
            bench.git("add", "-A")
            bench.git("commit", "-qm", "v0")
            with clock("a venv for the floor"):
                floor = Floor(tmp, bench)
            with clock("the first app (installs the dependencies)"):
                cold = first_deploy(bench, "bench", marker, create=False)
            deployed = 1
            for target in stages:
                with clock(f"deploying up to {target} apps"):
                    while deployed < target:
                        deployed += 1
                        firsts.append(first_deploy(bench, f"app-{deployed:03d}", marker))
                        print(f"  app {deployed}/{target}: {firsts[-1].seconds:.2f} s", flush=True)
                        neighbours.look(f"the deploys up to {target} apps")
                with clock(f"{target} apps: memory and router latency"):
                    settle(bench, target)
                    mem = memory(bench, target)
                    router = through_router(bench.port, host_of(bench, "bench"), gets)
                    direct = straight(bench, "bench", gets)
                neighbours.look(f"the measures at {target} apps")
                with clock(f"{target} apps: commit → live and the floor"):
                    measured = commit_to_live(bench, floor, target, pushes)
                neighbours.look(f"the measures at {target} apps")
                marker = f"{target} apps, push {pushes}"
                done.append(Stage(target, mem, router, direct, measured))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        forget_credentials(port)
    return cold, firsts, done, time.monotonic() - began


def forget_credentials(port: int) -> None:
    """Remove a credential section git may have written for the server's address."""
    section = f"credential.http://127.0.0.1:{port}"
    listed = subprocess.run(
        ["git", "config", "--global", "--get-regexp", "^credential\\."],
        capture_output=True,
        text=True,
    ).stdout
    if port and any(line.startswith(section + ".") for line in listed.splitlines()):
        subprocess.run(["git", "config", "--global", "--remove-section", section], check=False)


def rows_of(
    cold: FirstDeploy, firsts: list[FirstDeploy], stages: list[Stage]
) -> list[tuple[str, str]]:
    steps = ", ".join(f"{k} {v:.2f}" for k, v in cold.steps.items())
    rows = [
        (
            "first app, first push (installs the dependencies): git push start → answers",
            f"{cold.seconds:.2f} s (build {cold.build:.2f} s: {steps})",
        )
    ]
    if firsts:
        reused = sum(f.reused for f in firsts)
        rows += [
            (
                f"next {len(firsts)} apps, first push: git push start → answers",
                spread([f.seconds for f in firsts], 2),
            ),
            (
                "their builds, the build record's duration (target ≤ 1.5 s)",
                f"{spread([f.build for f in firsts])}; "
                f"{reused} of {len(firsts)} said the dependencies were reused",
            ),
            (
                "their builds, the sum of the build's steps",
                spread([sum(f.steps.values()) for f in firsts]),
            ),
        ]
    for s in stages:
        m, p = s.memory, s.pushes
        beyond = m.supervisor + m.network
        rows += [
            (
                f"{s.apps} apps: PSS per app, everything below the node",
                f"{m.per_app(m.total)} MiB (instances {m.instances}, slirp4netns "
                f"{m.networks}{', other: ' + ', '.join(m.others) if m.others else ''})",
            ),
            (
                f"{s.apps} apps: per app, supervisor (reaper + 2 bwrap) / slirp4netns / app",
                f"{m.per_app(m.supervisor)} (reaper {m.per_app(m.reaper)}, bwrap "
                f"{m.per_app(m.bwrap)}) / {m.per_app(m.network)} / {m.per_app(m.app)} MiB",
            ),
            (
                f"{s.apps} apps: beyond the app's own processes, per app (target ≤ 5 MiB)",
                f"{m.per_app(beyond)} MiB (supervisor and slirp4netns)",
            ),
            (
                f"{s.apps} apps: RSS of the node / `shipway up` / Temporal + NATS",
                f"{m.node_rss / MIB:.0f} / {m.control_rss / MIB:.0f} / "
                f"{m.services_rss / MIB:.0f} MiB",
            ),
            (f"{s.apps} apps: commit → live, git push start → answers", spread(p.live)),
            (f"{s.apps} apps: commit → live, git push start → its end", spread(p.pushed)),
            (
                f"{s.apps} apps: commit → live, server: deployment recorded → live / its build",
                f"median {statistics.median(p.server):.3f} / {statistics.median(p.build):.3f} s",
            ),
            (f"{s.apps} apps: floor, git push to a bare repo + gunicorn start", spread(p.floor)),
            (
                f"{s.apps} apps: shipway / floor (target ≤ 2)",
                f"{statistics.median(p.live) / statistics.median(p.floor):.2f} "
                "(ratio of the medians)",
            ),
            (
                f"{s.apps} apps: GET through the router, one keep-alive connection",
                percentiles(s.router),
            ),
        ]
        if s.direct:
            rows.append(
                (
                    f"{s.apps} apps: GET straight to gunicorn, a connection each",
                    percentiles(s.direct),
                )
            )
    if len(stages) > 1:
        first, last = stages[0], stages[-1]
        ratio = statistics.median(last.pushes.live) / statistics.median(first.pushes.live)
        rows.append(
            (
                f"commit → live with {last.apps} apps / with {first.apps} (target ≤ 1.2)",
                f"{ratio:.2f} (ratio of the medians)",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", default=",".join(map(str, STAGES)))
    parser.add_argument("--pushes", type=int, default=PUSHES)
    parser.add_argument("--gets", type=int, default=GETS)
    parser.add_argument("--no-save", action="store_true", help="print, do not append")
    args = parser.parse_args()
    stages = tuple(sorted({int(n) for n in args.stages.split(",")}))
    load_before = os.getloadavg()[0]
    neighbours = Neighbours()
    neighbours.look("the start")
    cold, firsts, done, took = measure(stages, args.pushes, args.gets, neighbours)
    load_after = os.getloadavg()[0]
    notes = (
        f"Machine: {machine()}. One detached `shipway up` (SQLite store, embedded Temporal and "
        "NATS, the local builder), examples/flask (gunicorn, 2 workers) in bubblewrap with a "
        "network namespace of its own (slirp4netns); every app in the admin's organization, "
        "so all but the first reuse its dependency layer. First deploys: POST /apps, then "
        "`git push` until the app's URL answers through the router (polled every 5 ms, a new "
        "connection each); the build's duration is its record's (GET /apps/APP/builds). "
        f"At {', '.join(map(str, stages))} idle apps: PSS from /proc/PID/smaps_rollup of "
        "every process below `shipway node`: supervisor = the reaper program + the two bwrap "
        "processes, app = the Procfile's /bin/sh + gunicorn + 2 workers, and the node's "
        "slirp4netns, one per instance; RSS of the node, of `shipway up` and of its Temporal "
        f"and NATS. Commit → live: {args.pushes} pushes of one changed line in app.py of one "
        "app, the new version polled every 5 ms from the push's start (a new connection "
        "each), each push followed by the floor for the same commit: `git push` to a local bare "
        "repo, then the same gunicorn (a venv made once outside shipway with the same "
        "requirements, 127.0.0.1, 2 workers) started from the working copy until it "
        f"answers. Router: {args.gets} sequential GETs over one keep-alive connection (after "
        "20 to warm up); straight: the same from inside the instance's network namespace "
        "(nsenter), a connection per GET since gunicorn's sync workers close each. "
        f"The whole run took {took / 60:.1f} min; the machine is shared: 1-minute load "
        f"average {load_before:.2f} before, {load_after:.2f} after; {neighbours}."
    )
    table(
        "Many apps on one node (examples/flask)",
        notes,
        rows_of(cold, firsts, done),
        save=not args.no_save,
    )


if __name__ == "__main__":
    main()
