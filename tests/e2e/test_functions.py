"""Functions as a user runs them: `shipway fn …` and `POST /fn/NAME` against a real
`shipway up`, with V8, sandboxed Python, Temporal schedules and the NATS KV bucket."""

from __future__ import annotations

import json
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Instance
from tests.e2e.test_push import api, make_repo, push, wait_for
from tests.helpers import commit, git

pytestmark = pytest.mark.e2e

REPORT = """async function handler(event) {
  console.log("report for", event.params.day);
  return {day: event.params.day, region: event.env.REGION, trigger: event.trigger};
}
"""
SQUARE = """import os

def handler(event):
    print("squaring", event["params"]["x"], "in", os.environ["REGION"])
    return event["params"]["x"] ** 2
"""
CHAIN = """async function handler(event) {
  return {squared: await shipway.call("square", {x: event.params.x})};
}
"""


def call(instance: Instance, name: str, params: Any, token: str | None = "") -> httpx.Response:
    headers = {"Authorization": f"Bearer {token or instance.token}"} if token is not None else {}
    return httpx.post(f"{instance.url}/fn/{name}", json=params, headers=headers, timeout=60)


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def cli_json(instance: Instance, *args: str) -> Any:
    result = instance.cli(*args, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_deploy_call_version_and_roll_back(instance: Instance, tmp_path: Path) -> None:
    js = write(tmp_path, "report.js", REPORT)
    deployed = instance.cli("fn", "deploy", js, "--name", "report", "--env", "REGION=eu")
    assert deployed.returncode == 0, deployed.stderr
    answer = call(instance, "report", {"day": "mon"})
    assert answer.status_code == 200
    assert answer.json() == {"result": {"day": "mon", "region": "eu", "trigger": "http"}}
    run = answer.headers["X-Shipway-Run"]
    logs = instance.cli("fn", "logs", run)
    assert wait_for(
        lambda: "report for mon" in instance.cli("fn", "logs", run).stdout, 10, "the run's log"
    )
    assert logs.returncode == 0

    invoked = cli_json(instance, "fn", "invoke", "report", "--params", '{"day": "tue"}')
    assert invoked["result"]["day"] == "tue"

    v2 = write(tmp_path, "v2.js", "function handler(event) { return 'v2' }\n")
    assert instance.cli("fn", "deploy", v2, "--name", "report").returncode == 0
    assert call(instance, "report", {}).json() == {"result": "v2"}
    rolled = instance.cli("fn", "rollback", "report", "--to", "v1")
    assert rolled.returncode == 0, rolled.stderr
    assert call(instance, "report", {"day": "wed"}).json()["result"]["day"] == "wed"
    versions = cli_json(instance, "fn", "versions", "report")
    assert [v["version"] for v in versions] == [3, 2, 1]
    assert versions[0]["description"] == "Rollback to v1"

    runs = cli_json(instance, "fn", "runs", "report")
    assert {r["status"] for r in runs} == {"succeeded"} and len(runs) == 4


def test_python_pipelines_and_failures(instance: Instance, tmp_path: Path) -> None:
    square = write(tmp_path, "square.py", SQUARE)
    assert (
        instance.cli("fn", "deploy", square, "--name", "square", "--env", "REGION=us").returncode
        == 0
    )
    assert call(instance, "square", {"x": 7}).json() == {"result": 49}
    chain = write(tmp_path, "chain.js", CHAIN)
    assert instance.cli("fn", "deploy", chain, "--name", "chain").returncode == 0
    answer = call(instance, "chain", {"x": 5})
    assert answer.json() == {"result": {"squared": 25}}
    runs = cli_json(instance, "fn", "runs", "square")
    assert runs[0]["trigger"] == f"call:{answer.headers['X-Shipway-Run']}"

    boom = write(tmp_path, "boom.js", "async function handler() { throw new Error('boom') }\n")
    assert instance.cli("fn", "deploy", boom, "--name", "boom").returncode == 0
    failed = call(instance, "boom", {})
    assert failed.status_code == 500
    assert (
        failed.json()["error"]["message"] == "boom" and "handler" in failed.json()["error"]["stack"]
    )
    invoked = instance.cli("fn", "invoke", "boom")
    assert invoked.returncode == 1 and "boom" in invoked.stderr and invoked.stdout == ""

    loop = write(tmp_path, "loop.py", "def handler(event):\n    while True:\n        pass\n")
    assert instance.cli("fn", "deploy", loop, "--name", "loop", "--timeout", "1").returncode == 0
    timed_out = call(instance, "loop", {})
    assert timed_out.status_code == 504
    assert "1 s timeout" in timed_out.json()["error"]["message"]
    assert call(instance, "square", {"x": 3}).json() == {"result": 9}, "workers keep serving"

    cycle = write(
        tmp_path, "cycle.js", "async function handler() { return shipway.call('cycle', {}) }\n"
    )
    assert instance.cli("fn", "deploy", cycle, "--name", "cycle").returncode == 0
    assert "a call cycle is refused: cycle → cycle" in call(instance, "cycle", {}).text


def test_bad_input_and_access(instance: Instance, tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.js", "function handler(e) {\n  return 1 +\n}\n")
    refused = instance.cli("fn", "deploy", bad, "--name", "bad")
    assert refused.returncode == 1 and "line 3" in refused.stderr
    bad_py = write(tmp_path, "bad.py", "def handler(event):\n    return (\n")
    assert "line" in instance.cli("fn", "deploy", bad_py, "--name", "bad").stderr
    response = httpx.post(
        f"{instance.url}/api/v1/functions/bad",
        json={"source": "function handler(e) {\n  return 1 +\n}\n", "filename": "bad.js"},
        headers={"Authorization": f"Bearer {instance.token}"},
    )
    assert response.status_code == 422 and response.json()["error"]["details"]["line"] == 3

    assert call(instance, "nothing", {}).status_code == 404
    private = write(tmp_path, "private.js", "function handler() { return 'secret' }\n")
    assert instance.cli("fn", "deploy", private, "--name", "private").returncode == 0
    assert call(instance, "private", {}, token=None).status_code == 401
    assert instance.cli("fn", "deploy", private, "--name", "private", "--public").returncode == 0
    assert call(instance, "private", {}, token=None).json() == {"result": "secret"}
    garbled = httpx.post(f"{instance.url}/fn/private", content=b"{nope", timeout=30)
    assert garbled.status_code == 422 and "not valid JSON" in garbled.text
    nul = httpx.post(f"{instance.url}/fn/private", content=b'{"a": "x\\u0000y"}', timeout=30)
    assert nul.status_code == 422 and "NUL" in nul.text
    deep = httpx.post(f"{instance.url}/fn/private", content=b"[" * 200_000, timeout=30)
    assert deep.status_code == 422, deep.text
    schedule = instance.cli(
        "fn", "deploy", private, "--name", "private", "--schedule", "R/2020-13-01T00:00:00Z/PT5M"
    )
    assert schedule.returncode == 1 and "2020-13-01" in schedule.stderr


def test_a_schedule_runs_the_function_with_its_params(instance: Instance, tmp_path: Path) -> None:
    js = write(tmp_path, "tick.js", REPORT)
    deployed = instance.cli(
        "fn",
        "deploy",
        js,
        "--name",
        "tick",
        "--schedule",
        "R/2020-01-01T00:00:00Z/PT2S",
        "--params",
        '{"day": "scheduled"}',
    )
    assert deployed.returncode == 0, deployed.stderr
    try:

        def succeeded(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [r for r in runs if r["status"] == "succeeded"][:2]

        def two_ran() -> bool:
            ran = api(instance, "/functions/tick/runs")
            return len(ran) >= 2 and bool(succeeded(ran))

        wait_for(two_ran, 60, "two scheduled runs")
        runs = succeeded(cli_json(instance, "fn", "runs", "tick"))
        assert {r["trigger"] for r in runs} == {"schedule:schedule-1"}
        assert runs[0]["params"] == {"day": "scheduled"}
        assert runs[0]["result"]["day"] == "scheduled"
    finally:
        assert instance.cli("fn", "delete", "tick").returncode == 0


class Hook(BaseHTTPRequestHandler):
    """Receives failure reports: answers 503 to the first, as a flaky receiver would."""

    bodies: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        Hook.bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(503 if len(Hook.bodies) == 1 else 204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_a_failed_scheduled_run_reaches_the_webhook_and_the_audit_trail(
    instance: Instance, tmp_path: Path
) -> None:
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{receiver.server_address[1]}/failed"
    boom = write(tmp_path, "boom.py", "def handler(event):\n    raise ValueError('no data')\n")
    deployed = instance.cli(
        "fn", "deploy", boom, "--name", "nightly", "--webhook", url,
        "--schedule", "R/2020-01-01T00:00:00Z/PT2S", "--params", '{"day": "mon"}',
    )  # fmt: skip
    assert deployed.returncode == 0, deployed.stderr

    def retried() -> list[dict[str, Any]]:
        """The POSTs of the run whose first POST got 503: that one and its retry."""
        bodies = list(Hook.bodies)
        first = bodies[0]["run"]["id"] if bodies else None
        same = [b for b in bodies if b["run"]["id"] == first]
        return same if len(same) >= 2 else []

    try:  # later runs of the schedule may report meanwhile: each has a run id
        first, again = wait_for(retried, 60, "the failure's retry to reach the webhook")[:2]
    finally:
        assert instance.cli("fn", "delete", "nightly").returncode == 0
        receiver.shutdown()
    assert first == again
    assert first["event"] == "function.run.failed" and first["function"] == "nightly"
    assert first["trigger"] == "schedule-1" and first["params"] == {"day": "mon"}
    assert first["run"]["status"] == "failed" and "no data" in first["run"]["message"]
    with sqlite3.connect(instance.data / "shipway.db") as db:
        subjects = db.execute(
            "SELECT subject FROM audit_entries WHERE action = 'function.run.failed'"
        ).fetchall()
    assert ("function:nightly",) in subjects


MANIFEST = """functions:
  apps_by_cell:
    handler: apps-by-cells.js
    runtime: js
    timeout: 30
    environment: {REGION: eu}
    events:
      - gra: {rate: "R/2018-01-01T00:00:00Z/PT5M/ET1M", params: {cell: a-gra}}
      - bhs: {rate: "R/2018-01-01T00:00:00Z/PT5M/ET1M", params: {cell: a-bhs}}
  rollup:
    handler: rollup.py
"""


def test_apply_a_manifest_idempotently_with_a_diff(instance: Instance, tmp_path: Path) -> None:
    write(tmp_path, "apps-by-cells.js", REPORT)
    write(tmp_path, "rollup.py", "def handler(event):\n    return 'rolled up'\n")
    manifest = write(tmp_path, "shipway.yml", MANIFEST)
    first = instance.cli("fn", "apply", manifest)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "+ apps_by_cell (create)" in first.stdout and "+ rollup (create)" in first.stdout
    assert call(instance, "apps_by_cell", {"day": "x"}).json()["result"]["region"] == "eu"

    again = cli_json(instance, "fn", "apply", manifest)
    assert {c["action"] for c in again["changes"]} == {"unchanged"}

    (tmp_path / "shipway.yml").write_text(
        MANIFEST.replace("timeout: 30", "timeout: 60")
        .replace(
            '      - bhs: {rate: "R/2018-01-01T00:00:00Z/PT5M/ET1M", params: {cell: a-bhs}}\n', ""
        )
        .split("  rollup:")[0]
    )
    dry = instance.cli("fn", "apply", manifest, "--dry-run")
    assert "~ apps_by_cell (update): timeout 30 → 60, trigger bhs removed" in dry.stdout
    assert "- rollup (delete)" in dry.stdout
    assert call(instance, "rollup", {}).status_code == 200, "a dry run changes nothing"
    applied = instance.cli("fn", "apply", manifest)
    assert applied.returncode == 0, applied.stderr
    assert call(instance, "rollup", {}).status_code == 404
    assert cli_json(instance, "fn", "versions", "apps_by_cell")[0]["description"] == (
        "Apply shipway.yml"
    )

    broken = write(tmp_path, "broken.yml", "functions:\n  x:\n    handler: nope.js\n")
    refused = instance.cli("fn", "apply", broken)
    assert refused.returncode == 1
    assert "function 'x': cannot read its handler nope.js" in refused.stderr
    write(tmp_path, "bad.py", "def handler(:\n")
    bad = write(tmp_path, "bad.yml", "functions:\n  x:\n    handler: bad.py\n")
    refused = instance.cli("fn", "apply", bad)
    assert refused.returncode == 1
    assert "x: SyntaxError: invalid syntax at line 1" in refused.stderr


APP_MANIFEST = """functions:
  greet:
    handler: functions/greet.js
    environment: {REGION: eu}
    events:
      - nightly: {rate: "0 3 * * *", params: {day: night}}
"""


def test_a_push_makes_the_apps_functions_those_of_its_shipway_yml(
    instance: Instance, tmp_path: Path
) -> None:
    assert instance.cli("apps", "create", "site").returncode == 0
    files = {"shipway.yml": APP_MANIFEST, "functions/greet.js": REPORT}
    repo = make_repo(tmp_path / "site", files, example="static")
    pushed = push(instance, repo, "site")
    assert pushed.returncode == 0, pushed.stderr
    assert "Functions in shipway.yml: greet (js); live with production" in pushed.stderr

    def listed() -> list[dict[str, Any]]:
        return api(instance, "/functions")  # type: ignore[no-any-return]

    wait_for(lambda: any(f["name"] == "greet" for f in listed()), 60, "greet to be applied")
    assert "greet" in {f["name"] for f in cli_json(instance, "fn", "list")}
    answer = call(instance, "greet", {"day": "mon"}).json()
    assert answer["result"] == {"day": "mon", "region": "eu", "trigger": "http"}
    [version] = cli_json(instance, "fn", "versions", "greet")
    assert version["description"] == "Apply app:site"

    # a preview's shipway.yml leaves the production functions alone
    git(repo, "checkout", "-q", "-b", "feature")
    commit(repo, {"functions/greet.js": "function handler() { return 'preview' }\n"})
    assert push(instance, repo, "site", "feature").returncode == 0
    assert call(instance, "greet", {"day": "tue"}).json()["result"]["day"] == "tue"
    git(repo, "checkout", "-q", "main")

    # a bad handler fails the build and names it; a handler outside the source too
    commit(repo, {"functions/greet.js": "function handler() { return }}\n"})
    broken = push(instance, repo, "site")
    assert broken.returncode != 0, broken.stderr
    assert "greet: " in broken.stderr and "line 1" in broken.stderr, broken.stderr
    commit(repo, {"shipway.yml": APP_MANIFEST.replace("functions/greet.js", "../../etc/passwd")})
    outside = push(instance, repo, "site")
    assert outside.returncode != 0
    assert "../../etc/passwd is not a file of the app's source" in outside.stderr

    # without functions in shipway.yml, the app's functions go; others stay
    standalone = write(tmp_path, "mine.js", "function handler() { return 'mine' }\n")
    assert instance.cli("fn", "deploy", standalone, "--name", "mine").returncode == 0
    commit(repo, {"shipway.yml": "build: {private: []}\n"})
    assert push(instance, repo, "site").returncode == 0
    wait_for(lambda: "greet" not in {f["name"] for f in listed()}, 60, "greet to be removed")
    assert "mine" in {f["name"] for f in listed()}
