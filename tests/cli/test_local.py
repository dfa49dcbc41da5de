"""The CLI's JSON and probe output against a real `shipway up`: status --deep, deploy --json,
builds logs --json, logs -f --json, fn deploy --json, open, up and down --json."""

from __future__ import annotations

import json
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipway.embedded.ports import any_free
from tests.e2e.conftest import clean_env, shipway

pytestmark = pytest.mark.e2e

HELLO = """function handler(event) {
  console.log("hello", event.params.name);
  return "hi " + event.params.name;
}
"""


@dataclass
class Running:
    env: dict[str, str]
    state: dict[str, Any]
    home: Path

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return shipway(*args, env=self.env)

    def json(self, *args: str) -> Any:
        result = self.cli(*args, "--json")
        assert result.returncode == 0, result.stdout + result.stderr
        return json.loads(result.stdout)

    def json_lines(self, *args: str) -> list[Any]:
        result = self.cli(*args, "--json")
        assert result.returncode == 0, result.stdout + result.stderr
        return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """`shipway up -d --json`, and `shipway down --json` after the module's tests."""
    tmp = tmp_path_factory.mktemp("cli-local")
    env = clean_env(tmp, SHIPWAY_DATA=str(tmp / "data"))
    started = shipway("up", "-d", "--json", "--port", str(any_free()), env=env, timeout=180)
    assert started.returncode == 0, started.stdout + started.stderr
    state = json.loads(started.stdout)
    assert state["url"].startswith("http://") and state["data_dir"] == str(tmp / "data")
    yield Running(env, state, Path(env["HOME"]))
    stopped = shipway("down", "--json", env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert json.loads(stopped.stdout) == {
        "data_dir": str(tmp / "data"),
        "pid": state["pid"],
        "node_pid": None,
        "apps_serving": False,
    }


def test_status_deep_shows_the_probe(running: Running) -> None:
    deep = running.cli("status", "--deep")
    assert deep.returncode == 0, deep.stderr
    assert re.search(
        r"^  probe +ok +a workflow through the control workers in [0-9.]+ ms$",
        deep.stdout,
        re.MULTILINE,
    ), deep.stdout
    probe = running.json("status", "--deep")["health"]["components"]["temporal"]["probe"]
    assert probe["status"] == "ok" and probe["ms"] > 0
    shallow = running.cli("status")
    assert shallow.returncode == 0 and "probe" not in shallow.stdout
    assert "probe" not in running.json("status")["health"]["components"]["temporal"]


def python_app(running: Running, tmp_path: Path, name: str) -> Path:
    """An app NAME, and the source of a Python app whose web process logs each request."""
    assert running.cli("apps", "create", name, "--no-remote").returncode == 0
    source = tmp_path / name
    source.mkdir()
    (source / "Procfile").write_text("web: python -u -m http.server $PORT\n")
    (source / "requirements.txt").write_text("")
    return source


def test_deploy_and_its_logs_as_json_lines(running: Running, tmp_path: Path) -> None:
    source = python_app(running, tmp_path, "lines")
    deployed = running.cli("deploy", str(source), "-a", "lines", "--json")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    first, *lines, last = [json.loads(line) for line in deployed.stdout.splitlines()]
    url = running.state["apps_url"].replace("APP", "lines")
    assert first == {
        "deployment": first["deployment"],
        "build": first["build"],
        "app": "lines",
        "environment": "production",
        "status": "queued",
        "url": url,
    }
    assert lines and all(set(line) == {"line"} for line in lines)
    assert "-----> Build succeeded" in lines[-1]["line"]
    assert last["status"] == "live" and last["release"] == 1 and last["url"] == url
    assert last["deployment"] == first["deployment"] and last["build_status"] == "succeeded"
    assert last["message"] == f"Release v1 is live at {url}"

    build = running.cli("builds", "logs", str(first["build"]), "--json")
    assert build.returncode == 0, build.stderr
    *build_lines, end = [json.loads(line) for line in build.stdout.splitlines()]
    assert build_lines == lines
    assert end == {"build": first["build"], "status": "succeeded"}
    newest = running.cli("builds", "logs", "-a", "lines", "--json")
    assert newest.stdout == build.stdout, "without an id: the app's newest build"
    unnamed = running.cli("builds", "logs")
    assert unnamed.returncode == 1 and "name the build (BUILD_ID)" in unnamed.stderr

    assert running.json("open", "-a", "lines") == {
        "app": "lines",
        "environment": "production",
        "url": url,
    }
    assert running.cli("open", "-a", "lines").stdout == f"{url}\n"


def test_logs_follow_as_json_lines(running: Running, tmp_path: Path) -> None:
    source = python_app(running, tmp_path, "follow")
    assert running.cli("deploy", str(source), "-a", "follow").returncode == 0

    follower = subprocess.Popen(
        [sys.executable, "-m", "shipway", "logs", "-a", "follow", "-f", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=running.env,
        cwd=running.home,
    )
    seen: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [seen.put(line) for line in follower.stdout or []]).start()
    try:
        printed = until(seen, lambda line: "Serving HTTP" in line)
        assert set(json.loads(printed)) == {"line"}
        host = {"Host": f"follow.localhost:{running.state['port']}"}
        answer = httpx.get(f"{running.state['url']}/lines-were-followed", headers=host)
        assert answer.status_code == 404  # http.server's own answer, which it logs
        live = until(seen, lambda line: "/lines-were-followed" in line)
        assert json.loads(live)["line"].startswith("web.1: ")
    finally:
        follower.terminate()
        follower.wait(30)


def until(lines: queue.Queue[str], wanted: Callable[[str], bool], timeout: float = 60) -> str:
    """The first line from LINES that is WANTED, waiting up to TIMEOUT seconds for it."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if wanted(line):
            return line
    pytest.fail("the followed log never printed the line")


def test_fn_deploy_and_logs_as_json(running: Running, tmp_path: Path) -> None:
    handler = tmp_path / "hello.js"
    handler.write_text(HELLO)
    deployed = running.json("fn", "deploy", str(handler), "--name", "hello")
    assert deployed["name"] == "hello" and deployed["version"] == 1
    called = running.json("fn", "invoke", "hello", "--params", '{"name": "ada"}')
    assert called["result"] == "hi ada"
    run = str(called["run"])
    deadline = time.monotonic() + 30
    while (logged := running.json_lines("fn", "logs", run)) == [] and time.monotonic() < deadline:
        pass
    assert logged == [{"line": "hello ada"}]


def test_fn_invoke_of_an_unknown_function_is_an_error(running: Running) -> None:
    invoked = running.cli("fn", "invoke", "nope")
    assert invoked.returncode == 1 and invoked.stdout == ""
    assert "no function named 'nope' (HTTP 404)" in invoked.stderr
