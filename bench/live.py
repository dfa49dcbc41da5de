"""Benchmark: commit → live, rollback and wake from zero, for the small Flask example.

All through a real `shipway up -d`, real `git push`, the router on the control port and
bubblewrap-sandboxed instances:
- commit → live: requirements.txt unchanged, app.py changed. From the start of `git push`
  until the new version answers on its URL (the push itself ends once it is live, so this
  includes the transfer, the build, the instance start and the route switch); also from the
  end of the push to the first answer of the new version.
- rollback: from the rollback request (what `shipway rollback --to N` sends) until the old
  version answers.
- wake from zero: the app has an idle timeout; once it is asleep, from sending a request until
  the first byte of the response.
Prints the figures and appends them to bench/RESULTS.md.
"""

from __future__ import annotations

import socket
import statistics
import time
from pathlib import Path

import httpx
from flaskapp import flask_on_shipway
from run import machine, table

PUSHES = 10
ROLLBACKS = 5
WAKES = 5
IDLE_SECONDS = 10


def set_marker(repo: Path, marker: str) -> None:
    app = repo / "app.py"
    text = app.read_text()
    start = text.index('message="')
    end = text.index('"', start + len('message="'))
    app.write_text(text[:start] + f'message="{marker}"' + text[end + 1 :])


def answers(port: int, marker: str) -> bool:
    try:
        response = httpx.get(
            f"http://127.0.0.1:{port}/", headers={"Host": "bench.localhost"}, timeout=5
        )
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and response.json().get("message") == marker


def until_answers(port: int, marker: str, timeout: float = 60) -> float:
    """Poll every 5 ms until the app answers with MARKER; returns time.perf_counter() then."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if answers(port, marker):
            return time.perf_counter()
        time.sleep(0.005)
    raise SystemExit(f"the app never answered {marker!r}")


def first_byte(port: int) -> float:
    """Seconds from sending a GET until the first byte of the answer arrives."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        request = b"GET / HTTP/1.1\r\nHost: bench.localhost\r\nConnection: close\r\n\r\n"
        started = time.perf_counter()
        sock.sendall(request)
        first = sock.recv(1)
        took = time.perf_counter() - started
        assert first == b"H", first
        while sock.recv(65536):
            pass
    return took


def stats(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):.3f} s "
        f"(min {min(values):.3f}, max {max(values):.3f}, n={len(values)})"
    )


def main() -> None:
    push_total: list[float] = []
    after_push: list[float] = []
    rollbacks: list[float] = []
    wakes: list[float] = []
    with flask_on_shipway() as bench:
        port = bench.port
        set_marker(bench.repo, "build 0")
        bench.git("add", "-A")
        bench.git("commit", "-qm", "v0")
        bench.push()  # cold: installs the dependencies
        until_answers(port, "build 0")

        for i in range(1, PUSHES + 1):
            set_marker(bench.repo, f"build {i}")
            bench.git("commit", "-qam", f"v{i}")
            started = time.perf_counter()
            bench.push()
            pushed = time.perf_counter()
            live = until_answers(port, f"build {i}")
            push_total.append(live - started)
            after_push.append(live - pushed)

        # Releases v1..v(PUSHES+1) carry "build 0".."build PUSHES"; roll back to older ones.
        for n in range(ROLLBACKS):
            version = PUSHES - n  # carries "build PUSHES-n-1"
            started = time.perf_counter()
            bench.api.post("/apps/bench/rollback", json={"to": version}).raise_for_status()
            live = until_answers(port, f"build {version - 1}")
            rollbacks.append(live - started)

        bench.api.patch("/apps/bench", json={"idle_timeout": IDLE_SECONDS}).raise_for_status()
        for _ in range(WAKES):
            time.sleep(IDLE_SECONDS + 2)
            info = bench.api.get("/apps/bench/info").json()
            states = {env["name"]: env["state"] for env in info["environments"]}
            assert states.get("production") == "asleep", info
            wakes.append(first_byte(port))

    rows = [
        ("commit → live: git push start → new version answers (target ≤ 2.0 s)", stats(push_total)),
        ("commit → live: git push end → new version answers", stats(after_push)),
        ("rollback request → old version answers (target ≤ 0.5 s)", stats(rollbacks)),
        ("wake from zero → first byte (target ≤ 0.5 s)", stats(wakes)),
    ]
    table(
        "Commit → live, rollback, wake (examples/flask)",
        (
            f"Machine: {machine()}; SQLite store, embedded Temporal and NATS, the local "
            "builder; instances in bubblewrap with their own network namespace (gunicorn, 2 "
            "workers). Commit → live changes app.py only, so the dependency layer is reused."
        ),
        rows,
    )


if __name__ == "__main__":
    main()
