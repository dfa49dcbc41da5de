"""A function's secrets stay masked in everything it gives back: the HTTP answer, `shipway fn
invoke`, its run record (`runs` API, `shipway fn runs`), its error and its log; and a viewer
reads no secret's value through any endpoint. Real V8, the real sandboxed Python worker, a
real store and a real uvicorn."""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import select
from typer.testing import CliRunner

from shipway.accounts.organizations import bootstrap
from shipway.api.app import create_app
from shipway.cli.functions import fn
from shipway.context import Context
from shipway.embedded import ports
from shipway.functions.activities import FunctionActivities
from shipway.functions.worker import FunctionWorker
from shipway.functions.workflow import ScheduledRun
from shipway.logs import LogWriter
from shipway.settings import Settings
from shipway.store import Store
from shipway.store.tables import App, AuditEntry, Organization
from tests.functions.test_activities import Receiver
from tests.helpers import migrated_store

#: Its base64 has a "+" (URL-safe: "-") and padding, so every variant differs.
TOKEN = "sk-live-7f3a>9c?2e4b~1d"
PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n"
    "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n"
    "-----END PRIVATE KEY-----\n"
)
APP_SECRET = "postgres://app:Xq7-pa55word@db/app"
PLAIN = "eu-west-plain-value"


def _b64(raw: str) -> list[str]:
    data = raw.encode()
    standard, urlsafe = base64.b64encode(data).decode(), base64.urlsafe_b64encode(data).decode()
    return [standard, standard.rstrip("="), urlsafe, urlsafe.rstrip("=")]


#: What must never be read back: the values, each line of the key, their base64 forms.
LEAKS = [
    TOKEN,
    *_b64(TOKEN),
    *[line for line in PEM.splitlines() if "PRIVATE" not in line],
    *_b64(PEM),
    *base64.encodebytes(PEM.encode()).decode().splitlines()[:3],
    APP_SECRET,
    *_b64(APP_SECRET),
]

B64_JS = """
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
function b64(s) {
  let out = "";
  for (let i = 0; i < s.length; i += 3) {
    const n = (s.charCodeAt(i) << 16) | ((s.charCodeAt(i + 1) || 0) << 8) |
      (s.charCodeAt(i + 2) || 0);
    const left = s.length - i;
    out += ALPHABET[(n >> 18) & 63] + ALPHABET[(n >> 12) & 63] +
      (left > 1 ? ALPHABET[(n >> 6) & 63] : "=") + (left > 2 ? ALPHABET[n & 63] : "=");
  }
  return out;
}
"""

LEAKY_JS = (
    B64_JS
    + """
async function handler(event) {
  const {TOKEN, PEM} = event.env;
  const how = event.params.how;
  console.log("token is", TOKEN);
  console.log("base64", b64(TOKEN));
  console.log(PEM);
  if (how === "throw") throw new Error("bad token " + TOKEN);
  if (how === "base64") {
    const url = b64(TOKEN).replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
    return {standard: b64(TOKEN), urlsafe: url};
  }
  if (how === "pem") return {pem: PEM, lines: PEM.split("\\n"), encoded: b64(PEM)};
  return {token: TOKEN};
}
"""
)

LEAKY_PY = """import base64
import os


def handler(event):
    token, pem = os.environ["TOKEN"], os.environ["PEM"]
    how = event["params"].get("how")
    print("token is", token)
    print("base64", base64.b64encode(token.encode()).decode())
    print(pem)
    if how == "throw":
        raise ValueError("bad token " + token)
    if how == "base64":
        urlsafe = base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")
        return {"standard": base64.b64encode(token.encode()).decode(), "urlsafe": urlsafe}
    if how == "pem":
        wrapped = base64.encodebytes(pem.encode()).decode()
        return {"pem": pem, "lines": pem.split("\\n"), "encoded": wrapped}
    return {"token": token}
"""

#: Hands its own secret to the JS function and returns what that returns.
CALLER_JS = """async function handler(event) {
  const got = await shipway.call("leaky-js", {how: "plain", mine: event.env.APP_KEY});
  return {got, mine: event.env.APP_KEY};
}
"""

SOURCES = {"js": LEAKY_JS, "python": LEAKY_PY}


def leaked(text: str) -> list[str]:
    """The secret forms TEXT still shows."""
    return [form for form in LEAKS if form in text]


class _Closing:
    """The API, whose shutdown also stops the function worker on the server's own loop."""

    def __init__(self, app: Any, worker: FunctionWorker) -> None:
        self.app, self.worker = app, worker

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.worker.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


@dataclass
class Server:
    url: str
    token: str
    store: Store
    worker: FunctionWorker
    data_dir: Path

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def cli(self, *args: str) -> str:
        env = {"SHIPWAY_URL": self.url, "SHIPWAY_TOKEN": self.token}
        result = CliRunner().invoke(fn, list(args), env=env)
        assert result.exception is None or result.exit_code == 1, result.output
        return result.stdout


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """shipway's API with a function worker behind a real uvicorn; JS and Python functions
    that leak their secrets every way they can, and an app with a secret config var."""
    data_dir = tmp_path_factory.mktemp("secrets") / "data"
    store = migrated_store(f"sqlite:///{data_dir.parent / 'shipway.db'}")
    with store.transaction() as session:
        token = bootstrap(session, None)
    assert token is not None
    settings = Settings.load({"data_dir": data_dir, "port": 8080}, env={})
    worker = FunctionWorker(store, data_dir, None)
    app = create_app(Context(settings=settings, store=store, invoker=worker.invoker))
    port = ports.any_free()
    config = uvicorn.Config(
        _Closing(app, worker), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    while not running.started:
        assert thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    served = Server(f"http://127.0.0.1:{port}", token, store, worker, data_dir)
    try:
        _deploy(served)
        yield served
    finally:
        running.should_exit = True
        thread.join(30)
        store.close()


def _deploy(server: Server) -> None:
    with server.client() as api:
        for runtime, source in SOURCES.items():
            answer = api.post(
                f"/api/v1/functions/leaky-{'js' if runtime == 'js' else 'py'}",
                json={
                    "source": source,
                    "runtime": runtime,
                    "environment": {"REGION": PLAIN},
                    "secrets": {"TOKEN": TOKEN, "PEM": PEM},
                },
            )
            assert answer.status_code == 201, answer.text
        answer = api.post(
            "/api/v1/functions/caller",
            json={"source": CALLER_JS, "runtime": "js", "secrets": {"APP_KEY": APP_SECRET}},
        )
        assert answer.status_code == 201, answer.text
        assert api.post("/api/v1/apps", json={"name": "web"}).status_code == 201
        for body in (
            {"set": {"DATABASE_URL": APP_SECRET}, "secret": True},
            {"set": {"REGION": PLAIN}},
        ):
            assert api.patch("/api/v1/apps/web/env", json=body).status_code == 200


def _call(server: Server, name: str, how: str) -> httpx.Response:
    with server.client() as api:
        return api.post(f"/fn/{name}", json={"how": how})


def _run(server: Server, answer: httpx.Response, part: str = "") -> Any:
    """The record (or with PART "/logs", the log) of the run that gave ANSWER."""
    with server.client() as api:
        return api.get(f"/api/v1/runs/{answer.headers['X-Shipway-Run']}{part}").json()


FUNCTIONS = ["leaky-js", "leaky-py"]


@pytest.mark.parametrize("name", FUNCTIONS)
def test_a_returned_secret_is_masked_in_the_answer_the_record_and_the_log(
    server: Server, name: str
) -> None:
    answer = _call(server, name, "plain")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"result": {"token": "***"}}
    record, logs = _run(server, answer), _run(server, answer, "/logs")
    assert record["status"] == "succeeded" and record["result"] == {"token": "***"}
    assert logs[:2] == ["token is ***", "base64 ***"]
    assert "***" in logs[2] and not leaked(json.dumps(logs))


@pytest.mark.parametrize("name", FUNCTIONS)
def test_a_base64_encoded_secret_is_masked(server: Server, name: str) -> None:
    answer = _call(server, name, "base64")
    assert answer.json() == {"result": {"standard": "***", "urlsafe": "***"}}


@pytest.mark.parametrize("name", FUNCTIONS)
def test_a_thrown_secret_is_masked_in_the_message_and_the_stack(server: Server, name: str) -> None:
    answer = _call(server, name, "throw")
    assert answer.status_code == 500, answer.text
    error = answer.json()["error"]
    assert error["code"] == "failed" and "bad token ***" in error["message"]
    assert error["stack"] and "bad token ***" in error["stack"]
    assert not leaked(answer.text)
    record = _run(server, answer)
    assert record["error"] == {"message": error["message"], "stack": error["stack"]}
    assert not leaked(json.dumps(record))


@pytest.mark.parametrize("name", FUNCTIONS)
def test_a_multi_line_key_is_masked_whole_line_by_line_and_encoded(
    server: Server, name: str
) -> None:
    answer = _call(server, name, "pem")
    assert answer.status_code == 200, answer.text
    result = answer.json()["result"]
    assert result["pem"] == "***"
    assert [line for line in result["lines"] if line] == ["***"] * 4
    assert set(re.split(r"\s+", result["encoded"].strip())) == {"***"}
    logs = _run(server, answer, "/logs")
    assert not leaked(json.dumps(logs)) and "***" in logs[2]


@pytest.mark.parametrize("name", FUNCTIONS)
def test_the_cli_shows_masked_answers_and_runs(server: Server, name: str) -> None:
    invoked = json.loads(server.cli("invoke", name, "--params", '{"how": "throw"}', "--json"))
    assert "bad token ***" in invoked["error"]["message"]
    invoked = json.loads(server.cli("invoke", name, "--params", '{"how": "pem"}', "--json"))
    assert invoked["result"]["pem"] == "***"
    runs = server.cli("runs", name, "--json")
    assert json.loads(runs) and not leaked(runs)
    assert "bad token ***" in runs
    logs = server.cli("logs", str(invoked["run"]))
    assert logs.startswith("token is ***\nbase64 ***\n") and not leaked(logs)


def test_a_pipeline_masks_each_functions_secrets_in_the_others_runs(server: Server) -> None:
    answer = _call(server, "caller", "plain")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"result": {"got": {"token": "***"}, "mine": "***"}}
    with server.client() as api:
        runs = api.get("/api/v1/functions/leaky-js/runs").json()
    called = next(r for r in runs if r["trigger"] == f"call:{answer.headers['X-Shipway-Run']}")
    assert called["params"] == {"how": "plain", "mine": "***"}
    assert called["result"] == {"token": "***"}


async def test_a_failed_scheduled_run_reports_its_error_masked(server: Server) -> None:
    """The webhook and the audit trail get the run's error as its record has it."""
    receiver = Receiver(failures=0)
    url = await receiver.start()
    with server.client() as api:
        body = {"source": LEAKY_JS, "runtime": "js", "webhook_url": url}
        body["secrets"] = {"TOKEN": TOKEN, "PEM": PEM}
        assert api.post("/api/v1/functions/nightly", json=body).status_code == 201
    with server.store.transaction() as session:
        org_id = session.scalars(select(Organization.id).where(Organization.is_admin)).one()
    worker = FunctionWorker(server.store, server.data_dir, None)
    try:
        report = await FunctionActivities(worker.invoker, server.store, server.data_dir).run(
            ScheduledRun(org_id, "nightly", "night", {"how": "throw"})
        )
        await worker.invoker.settle()
    finally:
        await worker.close()
        assert receiver.server is not None
        receiver.server.close()
    assert report.message is not None and "bad token ***" in report.message
    assert "bad token ***" in receiver.bodies[-1]["run"]["message"]
    with server.store.transaction() as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "function.run.failed")
        ).one()
        assert "bad token ***" in entry.payload["message"]


# viewers


def _app_id(server: Server) -> int:
    with server.store.transaction() as session:
        return session.scalars(select(App.id).where(App.name == "web")).one()


def _viewer(server: Server) -> str:
    with server.client() as api:
        made = api.post("/api/v1/tokens", json={"name": "watcher", "role": "viewer"})
    assert made.status_code == 201, made.text
    return str(made.json()["token"])


async def _app_log(server: Server) -> None:
    """A line of the app's log, written as the runtime writes it: with its secrets."""
    writer = LogWriter(server.store, None, "app", _app_id(server), secrets=[APP_SECRET])
    await writer.write(f"connecting to {APP_SECRET}")
    await writer.flush()


#: Follows forever: read from its first entry up to the newest, then let go.
TAIL = "/api/v1/audit/tail"


def _tail(server: Server, client: httpx.Client) -> tuple[int, str]:
    """The audit tail's answer, replayed from the first entry until the newest has come."""
    with server.client() as api:
        newest = api.get("/api/v1/audit/entries").json()["items"][0]["id"]
    read: list[str] = []
    with client.stream("GET", TAIL, headers={"Last-Event-ID": "0"}) as answer:
        if answer.status_code != 200:
            return answer.status_code, answer.read().decode()
        for line in answer.iter_lines():
            read.append(line)
            if line == f"id: {newest}":
                break
    return answer.status_code, "\n".join(read)


def _reads(server: Server, client: httpx.Client) -> Iterator[tuple[str, int, str]]:
    """Every GET route of the API, its path filled in each way that names something here:
    the path, the status and the body."""
    yield (TAIL, *_tail(server, client))
    with server.client() as api:
        paths = api.get("/api/v1/openapi.json").json()["paths"]
        run_ids = [
            str(r["id"]) for n in FUNCTIONS for r in api.get(f"/api/v1/functions/{n}/runs").json()
        ]
    app_id = str(_app_id(server))
    values = {
        "name": ["web", *FUNCTIONS, "caller"],
        "app": ["web"],
        "run_id": run_ids,
        "app_id": [app_id],
        "environment": ["production"],
    }
    for path, methods in paths.items():
        if "get" not in methods or path == TAIL:
            continue
        params = re.findall(r"{(\w+)}", path)
        choices = [values.get(p, ["1"]) for p in params]
        for combination in itertools.product(*choices):
            filled = path
            for param, value in zip(params, combination, strict=True):
                filled = filled.replace(f"{{{param}}}", value)
            answer = client.get(filled, params={"follow": "false"})
            yield filled, answer.status_code, answer.text


async def test_a_viewer_reads_no_secret_value_through_any_endpoint(server: Server) -> None:
    for name in FUNCTIONS:
        assert _call(server, name, "pem").status_code == 200
    await _app_log(server)
    viewer = _viewer(server)
    seen = 0
    with server.client(viewer) as client:
        for path, status, text in _reads(server, client):
            assert status != 500, (path, text)
            assert not leaked(text), (path, leaked(text))
            seen += status == 200
        env = client.get("/api/v1/apps/web/env").json()
        assert {v["key"]: v["value"] for v in env} == {"DATABASE_URL": "***", "REGION": PLAIN}
        function = client.get("/api/v1/functions/leaky-js").json()
        assert function["environment"] == {"REGION": PLAIN, "TOKEN": "***", "PEM": "***"}
        logs = client.get("/api/v1/apps/web/logs", params={"follow": "false"}).text
        assert "connecting to ***" in logs
        assert client.get(f"/api/v1/builder/apps/{_app_id(server)}/config").status_code == 403
        assert client.post("/fn/leaky-js", json={}).status_code == 403
        assert client.patch("/api/v1/apps/web/env", json={"set": {"X": "y"}}).status_code == 403
    assert seen > 20, "the viewer read the endpoints"


async def test_nobody_reads_a_secret_value_back(server: Server) -> None:
    """Secrets are write-only: the owner's token reads them masked too (but a builder of the
    platform's fleet, which masks builds, may fetch an app's values)."""
    for name in FUNCTIONS:
        assert _call(server, name, "throw").status_code == 500
    with server.client() as client:
        for path, status, text in _reads(server, client):
            if path.startswith("/api/v1/builder/apps/"):
                continue
            assert status != 500, (path, text)
            assert not leaked(text), (path, leaked(text))
