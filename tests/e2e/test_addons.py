"""Add-ons as a team uses them, through a real `shipway up`: a Django app (examples/django)
with a PostgreSQL add-on, its migrations in the release phase and a Redis cache, whose data
outlives redeploys, a rollback, a kill -9 of shipway and a `down`/`up`; a preview with a
database of its own; and an app without add-ons that reaches none of them."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Instance, start, stop
from tests.e2e.test_push import api, make_repo, push, wait_for
from tests.helpers import commit, git

pytestmark = pytest.mark.e2e


def get(instance: Instance, host: str, path: str = "/") -> httpx.Response:
    return httpx.get(f"{instance.url}{path}", headers={"Host": host}, timeout=30)


def notes(instance: Instance, host: str = "notes.localhost") -> dict[str, Any]:
    response = get(instance, host)
    assert response.status_code == 200, response.text[:500]
    body: dict[str, Any] = response.json()
    return body


def cli_json(instance: Instance, *args: str) -> Any:
    done = instance.cli(*args, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


SPY = {
    "Procfile": "web: python3 spy.py",
    "requirements.txt": "",
    "spy.py": """
import json, os, socket
from http.server import BaseHTTPRequestHandler, HTTPServer

def tcp(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return "open"
    except OSError as e:
        return type(e).__name__

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        seen = {
            "run": sorted(os.listdir("/run")) if os.path.isdir("/run") else [],
            "shipway": os.path.exists("/run/shipway"),
            "postgres_tcp": tcp(5432),
            "env": sorted(k for k in os.environ if k.endswith("_URL")),
        }
        body = json.dumps(seen).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

HTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
""",
}


def test_a_django_app_keeps_its_postgres_and_redis_data_through_everything(
    tmp_path: Path,
) -> None:
    running = start(tmp_path, "addons")
    try:
        assert running.cli("apps", "create", "notes").returncode == 0
        made = cli_json(running, "addons", "create", "postgres", "--app", "notes")
        assert made["addon"]["env_var"] == "DATABASE_URL" and made["deployment"] is None
        assert cli_json(running, "addons", "create", "redis", "-a", "notes")["addon"]["name"] == (
            "notes-redis"
        )
        repo = make_repo(tmp_path / "notes", example="django")
        pushed = push(running, repo, "notes")
        assert pushed.returncode == 0, pushed.stdout + pushed.stderr
        assert "live at" in pushed.stderr
        applog = running.cli("logs", "--app", "notes")
        assert "Apply all migrations" in applog.stdout or "Applying notes.0001_initial" in (
            applog.stdout
        ), applog.stdout[-2000:]
        added = httpx.post(
            f"{running.url}/notes", content=b"kept", headers={"Host": "notes.localhost"}
        )
        assert added.status_code == 201, added.text[:300]
        seen = [notes(running)["views"] for _ in range(4)]
        assert seen == sorted(seen) and len(set(seen)) == 4, "two workers share one Redis count"
        assert notes(running)["notes"] == ["kept"]

        # A redeploy (config change), then a rollback: the data stays.
        assert running.cli("env", "set", "GREETING=hi", "--app", "notes").returncode == 0
        after = notes(running)
        assert after["notes"] == ["kept"] and after["release"] == "v2"
        rolled = running.cli("rollback", "--app", "notes")
        assert rolled.returncode == 0, rolled.stdout + rolled.stderr
        assert notes(running)["notes"] == ["kept"]
        views = notes(running)["views"]

        # A crash of shipway: the add-on servers, like the apps, do not go with it.
        os.kill(int((running.data / "shipway.pid").read_text()), signal.SIGKILL)
        assert notes(running)["notes"] == ["kept"]
        restarted = running.cli("up", "-d", "--port", str(running.port), timeout=180)
        assert restarted.returncode == 0, restarted.stdout + restarted.stderr
        assert notes(running)["notes"] == ["kept"] and notes(running)["views"] > views

        # down and up: the servers stop with everything and come back with their data.
        assert running.cli("down").returncode == 0
        assert running.cli("up", "-d", "--port", str(running.port), timeout=180).returncode == 0
        wait_for(lambda: get(running, "notes.localhost").status_code == 200, 120, "notes back")
        assert notes(running)["notes"] == ["kept"] and notes(running)["views"] > views + 1
        status = cli_json(running, "status")
        assert status["health"]["components"]["addons"]["status"] == "ok", status

        # A preview gets a fresh database, migrated by its own release phase.
        commit(repo, {"README.md": "preview\n"})
        git(repo, "checkout", "-q", "-b", "try")
        pushed = push(running, repo, "notes", "try")
        assert pushed.returncode == 0, pushed.stdout + pushed.stderr
        assert notes(running, "notes--try.localhost")["notes"] == []
        listed = {a["name"]: a for a in cli_json(running, "addons", "list")}
        assert listed["notes-postgres--try"]["environment"] == "try"
        assert running.cli("previews", "delete", "try", "--app", "notes").returncode == 0
        wait_for(
            lambda: (
                "notes-postgres--try"
                not in {a["name"] for a in cli_json(running, "addons", "list")}
            ),
            30,
            "the preview's add-ons to go",
        )
        assert notes(running)["notes"] == ["kept"]

        # Backups, listed with their sizes; every add-on action is in the activity log.
        backup = cli_json(running, "addons", "backup", "notes-postgres")
        (listed_backup,) = cli_json(running, "addons", "backups", "notes-postgres")
        assert listed_backup["id"] == backup["id"] and listed_backup["bytes"] > 1000
        entries = api(running, "/audit/entries?action=addon.create&limit=50")
        entries = entries["items"] if isinstance(entries, dict) else entries
        assert {e["payload"]["name"] for e in entries} >= {"notes-postgres", "notes-redis"}

        # An app without add-ons reaches none of them: no socket, no TCP port.
        assert running.cli("apps", "create", "spy").returncode == 0
        spy = make_repo(tmp_path / "spy", SPY)
        pushed = push(running, spy, "spy")
        assert pushed.returncode == 0, pushed.stdout + pushed.stderr
        seen_by_spy = get(running, "spy.localhost").json()
        assert seen_by_spy["shipway"] is False and seen_by_spy["env"] == []
        assert seen_by_spy["postgres_tcp"] != "open"

        # Bad input: refused with the reason, nothing dropped.
        refused = running.cli("env", "set", "DATABASE_URL=sqlite://", "--app", "notes")
        assert refused.returncode == 1 and "belongs to the add-on notes-postgres" in refused.stderr
        refused = running.cli("addons", "destroy", "notes-postgres")
        assert refused.returncode == 1 and "--confirm notes" in refused.stderr
        refused = running.cli("addons", "create", "mysql", "--app", "notes")
        assert refused.returncode == 1 and "unknown add-on kind 'mysql'" in refused.stderr
        assert notes(running)["notes"] == ["kept"]
    finally:
        stop(running)
