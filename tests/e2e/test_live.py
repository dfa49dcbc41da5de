"""git push → live behind the router, as a user does it: a real `shipway up`, real git, the
CLI, and HTTP to APP.localhost on the control port."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.e2e.conftest import Instance, start, stop
from tests.e2e.test_push import make_repo, push, wait_for
from tests.helpers import commit, git

pytestmark = pytest.mark.e2e

#: A stdlib-only web app (no dependency install), saying which commit and config it runs.
SERVER = r"""
import json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = open("VERSION").read().strip()
print("serving", VERSION, flush=True)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({
            "version": VERSION,
            "release": os.environ.get("SHIPWAY_RELEASE"),
            "greeting": os.environ.get("GREETING"),
        }).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
"""

FILES = {
    "server.py": SERVER,
    "Procfile": "web: python3 server.py\n",
    "pyproject.toml": '[project]\nname = "live"\nversion = "1"\ndependencies = []\n',
    "VERSION": "one\n",
}


def visit(instance: Instance, host: str) -> httpx.Response:
    return httpx.get(f"{instance.url}/", headers={"Host": host}, timeout=10)


def serving(instance: Instance, host: str) -> dict[str, Any] | None:
    response = visit(instance, host)
    return response.json() if response.status_code == 200 else None


def cli_json(instance: Instance, *args: str) -> Any:
    result = instance.cli(*args, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_push_goes_live_and_changes_roll_out(instance: Instance, tmp_path: Path) -> None:
    assert instance.cli("apps", "create", "live").returncode == 0
    repo = make_repo(tmp_path / "live", FILES)
    first = push(instance, repo, "live")
    assert first.returncode == 0, first.stderr
    assert f"is live at http://live.localhost:{instance.port}" in first.stderr
    assert serving(instance, "live.localhost") == {
        "version": "one",
        "release": "v1",
        "greeting": None,
    }

    commit(repo, {"VERSION": "two\n"})
    second = push(instance, repo, "live")
    assert second.returncode == 0, second.stderr
    assert serving(instance, "live.localhost")["version"] == "two"  # type: ignore[index]

    # A config change is a new release of the same layers, deployed at once.
    assert instance.cli("env", "set", "--app", "live", "GREETING=hello").returncode == 0
    now = wait_for(
        lambda: (s := serving(instance, "live.localhost")) and s["greeting"] == "hello" and s,
        60,
        "the config change to go live",
    )
    assert now == {"version": "two", "release": "v3", "greeting": "hello"}

    # Rollback to v1: its code and its config, without a build.
    builds_before = len(cli_json(instance, "builds", "list", "--app", "live"))
    rolled = instance.cli("rollback", "--app", "live", "--to", "v1")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert serving(instance, "live.localhost") == {
        "version": "one",
        "release": "v4",
        "greeting": None,
    }
    assert len(cli_json(instance, "builds", "list", "--app", "live")) == builds_before
    releases = cli_json(instance, "releases", "list", "--app", "live")
    assert releases[0]["description"] == "Rollback to v1"

    info = cli_json(instance, "apps", "info", "live")
    text = json.dumps(info)
    assert f"http://live.localhost:{instance.port}" in text
    assert '"healthy"' in text and "web.1" in text

    scaled = instance.cli("scale", "--app", "live", "web=2")
    assert scaled.returncode == 0, scaled.stdout + scaled.stderr
    [production] = cli_json(instance, "apps", "info", "live")["environments"]
    assert [(i["name"], i["state"]) for i in production["instances"]] == [
        ("web.1", "healthy"),
        ("web.2", "healthy"),
    ]
    assert instance.cli("scale", "--app", "live", "web=x").returncode == 1

    logs = instance.cli("logs", "--app", "live")
    assert logs.returncode == 0, logs.stderr
    assert "web.1: serving one" in logs.stdout and "web.1: serving two" in logs.stdout


def test_a_release_that_cannot_start_fails_and_the_old_one_stays(
    instance: Instance, tmp_path: Path
) -> None:
    assert instance.cli("apps", "create", "fragile").returncode == 0
    repo = make_repo(tmp_path / "fragile", FILES)
    assert push(instance, repo, "fragile").returncode == 0
    commit(
        repo,
        {"server.py": "import sys\nprint('DATABASE_URL is not set', flush=True)\nsys.exit(2)\n"},
    )
    broken = push(instance, repo, "fragile")
    assert broken.returncode != 0
    assert "web.1 failed to start: exited with code 2" in broken.stderr
    assert "DATABASE_URL is not set" in broken.stderr
    assert serving(instance, "fragile.localhost")["version"] == "one"  # type: ignore[index]


def test_previews_per_branch_and_their_removal(instance: Instance, tmp_path: Path) -> None:
    assert instance.cli("apps", "create", "branches").returncode == 0
    repo = make_repo(tmp_path / "branches", FILES)
    assert push(instance, repo, "branches").returncode == 0
    git(repo, "checkout", "-qb", "feature/login")
    commit(repo, {"VERSION": "preview\n"})
    pushed = push(instance, repo, "branches", "feature/login")
    assert pushed.returncode == 0, pushed.stderr
    assert f"http://branches--feature-login.localhost:{instance.port}" in pushed.stderr
    assert serving(instance, "branches--feature-login.localhost")["version"] == "preview"  # type: ignore[index]
    assert serving(instance, "branches.localhost")["version"] == "one"  # type: ignore[index]

    deleted = push(instance, repo, "branches", ":feature/login")
    assert deleted.returncode == 0, deleted.stderr
    gone = visit(instance, "branches--feature-login.localhost")
    assert gone.status_code == 404 and "branches--feature-login.localhost" in gone.text
    assert serving(instance, "branches.localhost")["version"] == "one"  # type: ignore[index]

    assert instance.cli("apps", "delete", "branches", "--yes").returncode == 0
    after = visit(instance, "branches.localhost")
    assert after.status_code == 404 and "branches.localhost" in after.text
    assert visit(instance, "nothing-here.localhost").status_code == 404


def test_live_apps_come_back_after_down_up_and_after_a_crash(tmp_path: Path) -> None:
    own = start(tmp_path, "restarts")
    try:
        assert own.cli("apps", "create", "durable").returncode == 0
        repo = make_repo(tmp_path / "durable", FILES)
        assert push(own, repo, "durable").returncode == 0
        assert serving(own, "durable.localhost")["version"] == "one"  # type: ignore[index]

        assert own.cli("down").returncode == 0
        assert own.cli("up", "-d", "--port", str(own.port)).returncode == 0
        assert serving(own, "durable.localhost")["version"] == "one"  # type: ignore[index]

        pid = int((own.data / "shipway.pid").read_text())
        # The node and its instances outlive the control plane by design; nothing else may.
        node = json.loads((own.data / "run" / "node.json").read_text())["pid"]
        apps = {node, *(c.pid for c in psutil.Process(node).children(recursive=True))}
        children = [
            c.pid for c in psutil.Process(pid).children(recursive=True) if c.pid not in apps
        ]
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not psutil.pid_exists(pid), 10, "shipway to die")
        time.sleep(0.5)
        assert own.cli("up", "-d", "--port", str(own.port)).returncode == 0
        assert serving(own, "durable.localhost")["version"] == "one"  # type: ignore[index]
        leftovers = [p for p in children if psutil.pid_exists(p)]
        assert [p for p in leftovers if psutil.Process(p).status() != psutil.STATUS_ZOMBIE] == []
    finally:
        stop(own)
