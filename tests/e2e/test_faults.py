"""Faults of the parts builds depend on, with real processes: the NATS server or the
Temporal server killed mid-build and restarted by shipway's supervisor. The builds complete,
and their logs, followed live across the restart and as stored, lose no line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Instance, start, stop
from tests.e2e.test_push import api, make_repo, node_app, push, wait_for

pytestmark = pytest.mark.e2e

LINES = 30


def chatty_node_app(lines: int = LINES, every_ms: int = 150) -> dict[str, str]:
    """A Node app whose install step prints line-1 … line-LINES, one every EVERY_MS."""
    script = (
        "let i = 0; const t = setInterval(() => { console.log('line-' + ++i);"
        f" if (i === {lines}) clearInterval(t); }}, {every_ms});"
    )
    return {**node_app(f'node -e "{script}"'), "Procfile": "web: node server.js"}


def numbered(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip().startswith("line-")]


@pytest.mark.parametrize("part", ["nats", "temporal"])
def test_a_build_completes_when_a_server_it_uses_is_restarted(tmp_path: Path, part: str) -> None:
    running = start(tmp_path, f"restart-{part}")
    follower = None
    try:
        assert running.cli("apps", "create", "chatty").returncode == 0
        repo = make_repo(tmp_path / "chatty", chatty_node_app())
        pushed: dict[str, subprocess.CompletedProcess[str]] = {}
        pusher = threading.Thread(target=lambda: pushed.update(r=push(running, repo, "chatty")))
        pusher.start()
        [build] = wait_for(lambda: api(running, "/apps/chatty/builds"), 60, "the build")
        follower = subprocess.Popen(
            [sys.executable, "-m", "shipway", "builds", "logs", "-f", str(build["id"])],
            env=running.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_for(lambda: "line-6" in log_events(running, build["id"]), 120, "lines to flow")
        victim = running.health()[1]["components"][part]["pid"]
        os.kill(victim, signal.SIGKILL)
        pusher.join(300)
        assert pushed["r"].returncode == 0, pushed["r"].stdout + pushed["r"].stderr
        followed, errors = follower.communicate(timeout=120)
        expected = [f"line-{n}" for n in range(1, LINES + 1)]
        assert numbered(followed) == expected, errors
        assert numbered(stored_log(running, build["id"])) == expected
        [deployment] = api(running, "/apps/chatty/deployments")
        assert deployment["status"] == "live"
        assert running.health()[1]["components"][part]["restarts"] == 1
    finally:
        if follower is not None:
            follower.kill()
        stop(running)


def log_events(instance: Instance, build_id: int) -> str:
    """The build's stored log as the API streams it (what `builds logs` reads): cheap to poll."""
    return httpx.get(
        f"{instance.url}/api/v1/builds/{build_id}/logs",
        params={"follow": "false"},
        headers={"Authorization": f"Bearer {instance.token}"},
        timeout=30,
    ).text


def stored_log(instance: Instance, build_id: int) -> str:
    shown = instance.cli("builds", "logs", str(build_id))
    return shown.stdout
