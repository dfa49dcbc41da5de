"""The data plane outlives the control plane: a live app answers every request while the main
shipway process is killed with SIGKILL and started again, and while it is stopped for an
upgrade and started again; the node keeps its instances, and the control plane takes them
over without restarting them."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import psutil
import pytest

from tests.e2e.conftest import Instance, start, stop
from tests.e2e.test_push import make_repo, node_app, push, wait_for
from tests.helpers import commit
from tests.load import Load

pytestmark = pytest.mark.e2e

HOST = "steady.localhost"


def served(load: Load, more: int = 200) -> None:
    """Wait until LOAD has been answered MORE times again."""
    mark = load.tally.ok
    wait_for(lambda: load.tally.ok >= mark + more, 60, f"{more} more answers")


def instance_pids(node_pid: int) -> set[int]:
    """The processes the node runs for its instances (the sandboxes and what is in them)."""
    return {p.pid for p in psutil.Process(node_pid).children(recursive=True)}


def control_plane_pid(own: Instance) -> int:
    return int((own.data / "shipway.pid").read_text())


def test_apps_answer_across_a_kill_and_an_upgrade(tmp_path: Path) -> None:
    own = start(tmp_path, "steady")
    try:
        assert own.cli("apps", "create", "steady").returncode == 0
        repo = make_repo(tmp_path / "steady", node_app("true"))
        assert push(own, repo, "steady").returncode == 0
        node = json.loads((own.data / "run" / "node.json").read_text())["pid"]
        running = instance_pids(node)
        assert running

        with Load(own.port, HOST) as load:
            served(load)
            killed = control_plane_pid(own)
            os.kill(killed, signal.SIGKILL)
            wait_for(lambda: not psutil.pid_exists(killed), 10, "the control plane to die")
            served(load)  # with no control plane at all
            assert own.cli("up", "-d", "--port", str(own.port)).returncode == 0
            served(load)

            stopped = own.cli("down", "--keep-apps")
            assert stopped.returncode == 0, stopped.stderr
            assert "Apps keep serving" in stopped.stdout
            served(load)  # stopped for an upgrade
            assert own.cli("up", "-d", "--port", str(own.port)).returncode == 0
            served(load)
        assert load.tally.failures == 0, load.tally.failed
        assert load.tally.ok > 1000

        # Taken over, not restarted: the same node runs the same processes.
        assert json.loads((own.data / "run" / "node.json").read_text())["pid"] == node
        assert instance_pids(node) == running
        info = json.loads(own.cli("apps", "info", "steady", "--json").stdout)
        [production] = [e for e in info["environments"] if e["name"] == "production"]
        assert [i["restarts"] for i in production["instances"]] == [0]

        # A node that dies is started again by the control plane, and serves the app again.
        os.kill(node, signal.SIGKILL)

        def new_node() -> int | None:
            state = own.data / "run" / "node.json"
            pid = json.loads(state.read_text())["pid"] if state.exists() else None
            return pid if pid not in (None, node) else None

        node = wait_for(new_node, 60, "a new node")
        with Load(own.port, HOST) as load:
            served(load, 50)

        # The control plane that came back deploys as ever.
        commit(
            repo,
            {
                "server.js": "require('http').createServer((q, s) => s.end('two'))"
                ".listen(process.env.PORT)\n"
            },
        )
        again = push(own, repo, "steady")
        assert again.returncode == 0, again.stderr
    finally:
        stop(own)
    assert not psutil.pid_exists(node) or psutil.Process(node).status() == psutil.STATUS_ZOMBIE
