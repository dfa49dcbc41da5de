"""`shipway audit search` against the real API: filters, --where conditions, --json."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
import uuid

import httpx
import pytest
from typer.testing import CliRunner

from shipway.cli.audit import where
from shipway.cli.main import app as cli
from shipway.cli.output import console
from shipway.client.api import Api
from shipway.errors import ClientError
from shipway.logs.sse import iter_sse
from tests.cli.conftest import Server


@pytest.mark.parametrize(
    ("raw", "condition"),
    [
        ("flag.gid=gid://plat/Flag/1", {"op": "EQ", "path": ["flag", "gid"], "value": "gid://plat/Flag/1"}),
        ("count=3", {"op": "EQ", "path": ["count"], "value": 3}),
        ('count="3"', {"op": "EQ", "path": ["count"], "value": "3"}),
        ("on!=true", {"op": "NE", "path": ["on"], "value": True}),
        ("count>2.5", {"op": "GT", "path": ["count"], "value": 2.5}),
        ("when<2026-01-01", {"op": "LT", "path": ["when"], "value": "2026-01-01"}),
        ("labels~x", {"op": "CONTAINS", "path": ["labels"], "value": "x"}),
        ("labels?", {"op": "EXISTS", "path": ["labels"], "value": True}),
        ("labels!?", {"op": "EXISTS", "path": ["labels"], "value": False}),
    ],
)  # fmt: skip
def test_where_reads_a_condition(raw: str, condition: dict[str, object]) -> None:
    assert where(raw) == condition


@pytest.mark.parametrize("raw", ["flag.gid", "=x", "labels?x"])
def test_a_bad_where_is_refused(raw: str) -> None:
    with pytest.raises(ClientError, match="--where"):
        where(raw)


def test_search_finds_by_payload_path(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "width", 200)
    api = Api(server.env["SHIPWAY_URL"], server.env["SHIPWAY_TOKEN"])
    api.post(
        "/audit/entries",
        [
            {
                "sequence": str(uuid.uuid4()),
                "actor": "service:flags",
                "action": "flag.toggled",
                "subject": f"flag:{n}",
                "payload": {"flag": {"gid": f"gid://plat/Flag/{n}"}, "count": n},
            }
            for n in (1, 2, 3)
        ],
    )
    runner = CliRunner()
    found = runner.invoke(
        cli,
        ["audit", "search", "--where", "flag.gid=gid://plat/Flag/1", "--json"],
        env=server.env,
    )
    assert found.exit_code == 0, found.output
    [entry] = json.loads(found.stdout)["items"]
    assert entry["subject"] == "flag:1"

    shown = runner.invoke(
        cli, ["audit", "search", "--action", "flag.*", "--where", "count>1", "--limit", "1"],
        env=server.env,
    )  # fmt: skip
    assert shown.exit_code == 0, shown.output
    assert "flag:3" in shown.stdout and "flag:2" not in shown.stdout
    assert "More: --cursor" in shown.stdout

    bad = runner.invoke(cli, ["audit", "search", "--since", "yesterday"], env=server.env)
    assert isinstance(bad.exception, ClientError)
    assert "since must be an ISO-8601 time" in str(bad.exception)


def flag_entry(subject: str, action: str = "flag.toggled") -> dict[str, object]:
    return {"sequence": str(uuid.uuid4()), "actor": "service:flags", "action": action,
            "subject": subject}  # fmt: skip


def test_tail_follows_new_entries_and_resumes(server: Server) -> None:
    url, token = server.env["SHIPWAY_URL"], server.env["SHIPWAY_TOKEN"]
    api = Api(url, token)
    api.post("/audit/entries", flag_entry("flag:old"))
    [old] = api.get("/audit/entries", params={"subject": "flag:old"})["items"]
    seen: list[str] = []

    def follow() -> None:
        headers = {"Authorization": f"Bearer {token}", "Last-Event-ID": str(old["id"])}
        params = {"action": "flag.*"}
        with httpx.stream("GET", f"{url}/api/v1/audit/tail", params=params, headers=headers,
                          timeout=30) as response:  # fmt: skip
            for event in iter_sse(response):
                if event.event == "entry":
                    seen.append(json.loads(event.data)["subject"])
                    if len(seen) == 2:
                        return

    reader = threading.Thread(target=follow)
    reader.start()
    api.post("/audit/entries", [flag_entry("flag:new"), flag_entry("app:x", "app.noted")])
    api.post("/audit/entries", flag_entry("flag:newer"))
    reader.join(30)
    assert seen == ["flag:new", "flag:newer"]


def test_the_cli_tail_prints_entries_as_they_come(server: Server) -> None:
    tail = subprocess.Popen(
        [sys.executable, "-m", "shipway", "audit", "tail", "--action", "flag.*", "--json"],
        env={**os.environ, **server.env},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        api = Api(server.env["SHIPWAY_URL"], server.env["SHIPWAY_TOKEN"])
        deadline = time.monotonic() + 30
        line = ""
        while not line and time.monotonic() < deadline:  # the tail starts at its connection
            api.post("/audit/entries", flag_entry("flag:live"))
            ready, _, _ = select.select([tail.stdout], [], [], 1.0)
            if ready:
                assert tail.stdout is not None
                line = tail.stdout.readline()
        assert json.loads(line)["subject"] == "flag:live"
    finally:
        tail.terminate()
        tail.wait(10)
