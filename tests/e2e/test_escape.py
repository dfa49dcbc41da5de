"""Tenants' code tries to get out, against a real `shipway up`: a build (an npm postinstall
script), an app instance, a Python function and a JS function each try to reach the API,
NATS, Temporal, another loopback port, the host's own address and 169.254.169.254, and to
read the data dir, /etc/shadow and another app's files; an instance and functions that go
past their memory and process limits are stopped (a fork bomb in a build sandbox is
tests/sandbox/test_limits.py's). Run twice:
with slirp4netns, and with it hidden from PATH, where a sandbox that needs network must be
refused, never run on the host's network."""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Instance, start, stop
from tests.e2e.test_functions import call, write
from tests.e2e.test_push import api, make_repo, node_app, push, wait_for
from tests.helpers import hidden_path

pytestmark = pytest.mark.e2e

PROBE = r"""
import json, socket

def probe(targets):
    said = []
    for name, host, port in targets["connect"]:
        try:
            with socket.create_connection((host, port), timeout=3):
                said.append(f"probe {name}: REACHED")
        except OSError as e:
            said.append(f"probe {name}: blocked ({e})")
    for path in targets["read"]:
        try:
            with open(path, "rb") as f:
                f.read(1)
            said.append(f"probe {path}: READ")
        except OSError as e:
            said.append(f"probe {path}: blocked ({e.strerror})")
    said.append("probe done")
    return said
"""

BUILD = (
    PROBE
    + """
print("\\n".join(probe(TARGETS)), flush=True)
"""
)

SERVER = (
    PROBE
    + """
import os, pathlib
from http.server import BaseHTTPRequestHandler, HTTPServer

TARGETS = json.loads(pathlib.Path("targets.json").read_text())

class Probe(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/hog":
            hog = bytearray(2 * 1024 ** 3)
        body = "\\n".join(probe(TARGETS) if self.path == "/probe" else ["up"]).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

HTTPServer(("0.0.0.0", int(os.environ["PORT"])), Probe).serve_forever()
"""
)

FUNCTION = (
    PROBE
    + """
def handler(event):
    return probe(event["params"])
"""
)

JS_FUNCTION = """async function handler(event) {
  const found = {};
  for (const name of ["fetch", "require", "process", "XMLHttpRequest", "WebSocket", "Deno"]) {
    found[name] = typeof globalThis[name];
  }
  return found;
}
"""

HOG = """import os

def handler(event):
    if event["params"]["what"] == "memory":
        return len(bytearray(4 * 1024 ** 3))
    while True:
        os.fork()
"""


@dataclass
class Setting:
    """A running shipway, whether its sandboxes can have a network, and where to knock."""

    instance: Instance
    isolated: bool
    targets: dict[str, Any]


def _outward_address() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.254", 9))  # no packet is sent: this picks the outward address
        address: str = probe.getsockname()[0]
    return address


@pytest.fixture(scope="module")
def canary() -> Iterator[int]:
    """A TCP port on every address of the host, which nothing in a sandbox may reach."""
    server = socket.create_server(("0.0.0.0", 0))
    server.settimeout(0.2)
    port: int = server.getsockname()[1]
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = server.accept()
                conn.close()
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port
    done.set()
    thread.join()
    server.close()


@pytest.fixture(scope="module", params=["slirp4netns", "slirp4netns hidden"])
def setting(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, canary: int
) -> Iterator[Setting]:
    isolated = request.param == "slirp4netns"
    extra = {} if isolated else {"PATH": hidden_path("slirp4netns")}
    instance = start(tmp_path_factory.mktemp("escape"), "data", **extra)
    try:
        state = json.loads((instance.data / "run" / "state.json").read_text())
        nats_port = int(state["addresses"]["nats"].rsplit(":", 1)[1])
        temporal_port = int(state["addresses"]["temporal"].rsplit(":", 1)[1])
        outward = _outward_address()
        connect = [
            ("api", "127.0.0.1", instance.port),
            ("nats", "127.0.0.1", nats_port),
            ("temporal", "127.0.0.1", temporal_port),
            ("loopback", "127.0.0.1", canary),
            ("host", outward, canary),
            ("host-api", outward, instance.port),
            ("gateway-api", "10.0.2.2", instance.port),
            ("gateway-nats", "10.0.2.2", nats_port),
            ("metadata", "169.254.169.254", 80),
        ]
        read = [
            str(instance.data / "admin-token"),
            str(instance.data / "secret.key"),
            str(instance.data / "nats" / "keys" / "control.nk"),
            str(instance.data / "repos" / "other.git" / "config"),
            "/etc/shadow",
        ]
        yield Setting(instance, isolated, {"connect": connect, "read": read})
    finally:
        stop(instance)


def _assert_contained(lines: list[str], targets: dict[str, Any]) -> None:
    said = [line for line in lines if line.startswith("probe ")]
    assert said[-1] == "probe done", lines
    assert len(said) == len(targets["connect"]) + len(targets["read"]) + 1, lines
    escaped = [line for line in said if "REACHED" in line or "READ" in line]
    assert escaped == [], said


def _app(setting: Setting, tmp_path: Path, name: str, *, build_network: bool = True) -> Path:
    instance = setting.instance
    assert instance.cli("apps", "create", name).returncode == 0
    if not build_network:
        changed = instance.cli("apps", "set", name, "--no-build-network")
        assert changed.returncode == 0, changed.stderr
    # The install step sees the package files only: the probe comes in its command. The app's
    # name makes its dependency key its own, so the install (and the probe) runs for each app
    # rather than reusing the layer another app of the organization built.
    build = f"APP = {name!r}\nTARGETS = {setting.targets!r}\n{BUILD}"
    encoded = base64.b64encode(build.encode()).decode()
    files = {
        **node_app(f"python3 -c \"import base64; exec(base64.b64decode('{encoded}'))\""),
        "server.py": SERVER,
        "Procfile": "web: python3 server.py\n",
        "targets.json": json.dumps(setting.targets),
    }
    return make_repo(tmp_path / name, files)


def _instance_probe(setting: Setting, app: str) -> list[str]:
    answer = httpx.get(
        f"{setting.instance.url}/probe", headers={"Host": f"{app}.localhost"}, timeout=120
    )
    assert answer.status_code == 200, answer.text
    return answer.text.splitlines()


def test_the_sandbox_network_is_reported(setting: Setting) -> None:
    status = setting.instance.cli("status")
    assert status.returncode == 0, status.stderr
    report = json.loads(setting.instance.cli("status", "--json").stdout)
    health = httpx.get(f"{setting.instance.url}/healthz", timeout=10).json()
    if setting.isolated:
        assert "sandbox network: isolated" in status.stdout
        assert report["health"]["sandbox_network"]["status"] == "isolated"
        assert health["sandbox_network"]["status"] == "isolated"
    else:
        assert "sandbox network: unavailable" in status.stdout
        assert "slirp4netns is not installed" in status.stdout
        assert health["sandbox_network"]["status"] == "unavailable"


def test_a_build_and_an_instance_stay_in(setting: Setting, tmp_path: Path) -> None:
    repo = _app(setting, tmp_path, "tenant")
    pushed = push(setting.instance, repo, "tenant")
    if not setting.isolated:
        # A build that needs network is refused, naming what is missing and its fix.
        assert pushed.returncode != 0
        assert "slirp4netns is not installed" in pushed.stderr, pushed.stderr
        assert "apt-get install -y slirp4netns" in pushed.stderr
        assert "probe " not in pushed.stderr
        [deployment] = api(setting.instance, "/apps/tenant/deployments")
        assert deployment["status"] == "failed"
        return
    assert pushed.returncode == 0, pushed.stderr
    build_lines = [line.removeprefix("remote: ").strip() for line in pushed.stderr.splitlines()]
    _assert_contained(build_lines, setting.targets)
    _assert_contained(_instance_probe(setting, "tenant"), setting.targets)

    # Past its memory limit the instance is ended, then started again.
    url, host = setting.instance.url, {"Host": "tenant.localhost"}
    hog = httpx.get(f"{url}/hog", headers=host, timeout=120)
    assert hog.status_code == 502, hog.text
    wait_for(
        lambda: httpx.get(f"{url}/", headers=host, timeout=30).text == "up",
        60,
        "the instance to be back",
    )
    info = json.loads(setting.instance.cli("apps", "info", "tenant", "--json").stdout)
    [production] = [e for e in info["environments"] if e["name"] == "production"]
    assert production["instances"][0]["restarts"] >= 1
    logs = setting.instance.cli("logs", "--app", "tenant")
    assert "memory limit of 512 MiB exceeded" in logs.stdout, logs.stdout


def test_without_build_network_the_build_runs_and_the_instance_is_refused(
    setting: Setting, tmp_path: Path
) -> None:
    repo = _app(setting, tmp_path, "offline", build_network=False)
    pushed = push(setting.instance, repo, "offline")
    build_lines = [line.removeprefix("remote: ").strip() for line in pushed.stderr.splitlines()]
    _assert_contained(build_lines, setting.targets)
    if setting.isolated:
        assert pushed.returncode == 0, pushed.stderr
        _assert_contained(_instance_probe(setting, "offline"), setting.targets)
        return
    assert pushed.returncode != 0
    [deployment] = api(setting.instance, "/apps/offline/deployments")
    assert deployment["status"] == "failed"
    logs = setting.instance.cli("logs", "--app", "offline")
    said = logs.stdout + logs.stderr + pushed.stderr
    assert "slirp4netns is not installed" in said, said


def test_functions_stay_in(setting: Setting, tmp_path: Path) -> None:
    instance = setting.instance
    source = write(tmp_path, "escape.py", FUNCTION)
    deployed = instance.cli("fn", "deploy", source, "--name", "escape", "--runtime", "python")
    assert deployed.returncode == 0, deployed.stderr
    answer = call(instance, "escape", setting.targets)
    assert answer.status_code == 200, answer.text
    _assert_contained(answer.json()["result"], setting.targets)

    js = write(tmp_path, "escape.js", JS_FUNCTION)
    assert instance.cli("fn", "deploy", js, "--name", "escape-js").returncode == 0
    answer = call(instance, "escape-js", {})
    assert answer.status_code == 200, answer.text
    assert set(answer.json()["result"].values()) == {"undefined"}, answer.json()


@pytest.mark.parametrize("what", ["memory", "processes"])
def test_a_function_beyond_its_limits_is_stopped(
    setting: Setting, tmp_path: Path, what: str
) -> None:
    instance = setting.instance
    source = write(tmp_path, "hog.py", HOG)
    deployed = instance.cli(
        "fn", "deploy", source, "--name", f"hog-{what}", "--runtime", "python", "--memory", "128"
    )
    assert deployed.returncode == 0, deployed.stderr
    answer = call(instance, f"hog-{what}", {"what": what})
    assert answer.status_code >= 500 and answer.status_code != 502, answer.text
    assert "error" in answer.json(), answer.text
    # shipway itself is unharmed.
    wait_for(lambda: instance.health()[0] == 200, 30, "shipway healthy after the hog")
