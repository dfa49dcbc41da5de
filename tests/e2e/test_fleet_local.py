"""The builders `shipway up` runs beside itself: `--builders N`, and those the autoscaler
starts and drains for a pool with a policy."""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipway.embedded.ports import any_free
from tests.e2e.builders import fleet, local_builders
from tests.e2e.conftest import assert_gone, clean_env, shipway, start, stop
from tests.e2e.test_push import api, make_repo, push, wait_for

pytestmark = pytest.mark.e2e


def test_up_runs_the_builders_asked_for_and_keeps_them_running(tmp_path: Path) -> None:
    running = start(tmp_path, "three", SHIPWAY_BUILDERS="3")
    try:

        def active() -> set[str]:
            return {i for i, b in fleet(running).items() if b["state"] == "active"}

        three = wait_for(lambda: len(active()) == 3 and active(), 60, "three builders")
        [crashed, _] = local_builders(running)
        crashed.kill()  # a builder that dies unasked is started again
        wait_for(lambda: len(active()) == 3 and active() != three, 60, "the builder to be replaced")
        assert [p.pid for p in local_builders(running)] != []
        children = local_builders(running)
    finally:
        stop(running)
    assert_gone([p.pid for p in children])
    none = start(tmp_path, "none", SHIPWAY_BUILDERS="0")
    try:
        assert fleet(none) == {}
        bad = none.cli("up", "--builders", "-1")
        assert bad.returncode != 0 and "at least 0" in bad.stdout + bad.stderr
    finally:
        stop(none)


class Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_the_autoscaler_wakes_an_idle_pool_then_scales_it_to_zero(tmp_path: Path) -> None:
    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    asked = tmp_path / "asked.txt"
    script = tmp_path / "scale.py"
    script.write_text(
        f"import sys\nopen({str(asked)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n"
    )
    rules = tmp_path / "fleet.yml"
    rules.write_text(
        "rules:\n  - {region: burst, pool: burst}\n"
        "pools:\n"
        "  burst: {min: 0, max: 2, idle_after: 1}\n"
        f"  cloud: {{min: 2, max: 5, command: '{sys.executable} {script}'}}\n"
        f"  hooked: {{min: 1, webhook: 'http://127.0.0.1:{hook.server_port}/scale'}}\n"
    )
    running = start(tmp_path, "autoscaled", SHIPWAY_FLEET_RULES=str(rules))
    try:
        wait_for(lambda: asked.exists() and "cloud 2" in asked.read_text(), 30, "the command")
        wait_for(lambda: Hook.received, 30, "the webhook")
        assert Hook.received[0]["pool"] == "hooked" and Hook.received[0]["desired"] == 1
        assert Hook.received[0]["load"]["builders"] == 0
        pools = {p["pool"]: p for p in api(running, "/fleet/pools")}
        assert pools["burst"]["builders"] == 0 and pools["burst"]["desired"] == 0
        assert pools["cloud"]["desired"] == 2 and pools["cloud"]["policy"]["max"] == 5

        assert running.cli("apps", "create", "bursty", "--region", "burst").returncode == 0
        repo = make_repo(tmp_path / "bursty", example="static")
        pushed = push(running, repo, "bursty")  # queued for a pool of no builder: it wakes
        assert pushed.returncode == 0, pushed.stderr
        [built] = api(running, "/apps/bursty/builds")
        assert (
            built["status"] == "succeeded" and fleet(running)[built["builder"]]["pool"] == "burst"
        )
        wait_for(
            lambda: fleet(running)[built["builder"]]["state"] == "drained",
            60,
            "the idle pool to scale to zero",
        )
        shown = running.cli("fleet", "pools")
        assert shown.returncode == 0 and "burst" in shown.stdout and "0-2 at 70%" in shown.stdout
        metrics = httpx.get(
            f"{running.url}/metrics", headers={"Authorization": f"Bearer {running.token}"}
        )
        assert metrics.status_code == 200
        assert 'shipway_pool_builders{pool="burst"} 0' in metrics.text
        assert 'shipway_pool_desired_builders{pool="cloud"} 2' in metrics.text
        assert 'shipway_pool_slots{pool="default"} 2' in metrics.text
        assert httpx.get(f"{running.url}/metrics").status_code == 401
    finally:
        hook.shutdown()
        stop(running)


def test_a_bad_pool_policy_stops_shipway_from_starting(tmp_path: Path) -> None:
    rules = tmp_path / "fleet.yml"
    rules.write_text("pools:\n  burst: {min: 3, max: 1}\n")
    env = clean_env(tmp_path, SHIPWAY_FLEET_RULES=str(rules), SHIPWAY_DATA=str(tmp_path / "d"))
    result = shipway("up", "--port", str(any_free()), env=env, timeout=60)
    assert result.returncode != 0
    assert "pool burst: min (3) is more than max (1)" in result.stdout + result.stderr
