"""`shipway rollback` and `shipway releases list`: what the user reads, and exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from shipway.cli.main import app as cli
from shipway.cli.output import console
from shipway.cli.releases import parse_version
from shipway.client.api import Api
from shipway.client.upload import released
from shipway.errors import ClientError
from shipway.store import Store
from tests.api.conftest import release
from tests.cli.conftest import Server, shipway

URL = "http://web.localhost:8080"


@pytest.mark.parametrize(("raw", "version"), [("v3", 3), ("3", 3), ("V12", 12), (" v7 ", 7)])
def test_versions_are_written_v3_or_3(raw: str, version: int) -> None:
    assert parse_version(raw) == version


@pytest.mark.parametrize("raw", ["", "v", "x3", "3.0", "-1", "v3v", "vv3", "3 4", "1" * 10])
def test_bad_versions_are_refused(raw: str) -> None:
    with pytest.raises(ClientError, match="--to must be a release version such as v3 or 3"):
        parse_version(raw)


def deployment(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": 9,
        "app": "web",
        "status": status,
        "url": URL,
        "release": 5,
        "reason": None,
        **extra,
    }


@pytest.mark.parametrize(
    ("given", "said", "code"),
    [
        (deployment("live"), f"v5 is live at {URL}", 0),
        (deployment("retired"), "v5 went live; a newer deployment has since replaced it", 0),
        (
            deployment("failed", reason="web.1 exited with code 1"),
            "the rollback of web (v5) failed: web.1 exited with code 1",
            1,
        ),
        (deployment("superseded", reason="a newer push"), "(v5) was superseded: a newer push", 1),
        (deployment("deploying"), "the rollback of web is still deploying", 1),
    ],
)
def test_what_a_rollback_says(given: dict[str, Any], said: str, code: int) -> None:
    message, exit_code = released("the rollback of web", given)
    assert said in message and exit_code == code


def make_app(server: Server, store: Store, versions: int) -> None:
    Api(server.env["SHIPWAY_URL"], server.env["SHIPWAY_TOKEN"]).post("/apps", {"name": "web"})
    for version in range(1, versions + 1):
        release(store, version)


def test_a_rollback_waits_until_live(
    server: Server, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console, "width", 200)
    make_app(server, store, 2)
    runner = CliRunner()
    result = runner.invoke(cli, ["rollback", "--app", "web"], env=server.env)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"Rolling back web to v1 …\nv3 is live at {URL}\n"
    result = runner.invoke(cli, ["rollback", "--app", "web", "--to", "v2"], env=server.env)
    assert result.stdout == f"Rolling back web to v2 …\nv4 is live at {URL}\n"
    result = runner.invoke(cli, ["rollback", "--app", "web", "--to", "3", "--json"], env=server.env)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["status"] == "live" and shown["release"] == 5 and shown["source"] == "rollback"

    listed = runner.invoke(cli, ["releases", "list", "--app", "web"], env=server.env).stdout
    assert "DESCRIPTION" in listed and "Rollback to v3" in listed
    listed_json = runner.invoke(cli, ["releases", "list", "--app", "web", "--json"], env=server.env)
    assert [r["description"] for r in json.loads(listed_json.stdout)][:2] == [
        "Rollback to v3",
        "Rollback to v2",
    ]


def test_a_failed_rollback_exits_1_with_the_reason(server: Server, store: Store) -> None:
    make_app(server, store, 2)
    server.temporal.failure = "web.1 exited with code 3"
    runner = CliRunner()
    result = runner.invoke(cli, ["rollback", "--app", "web"], env=server.env)
    assert isinstance(result.exception, ClientError)
    assert str(result.exception) == "the rollback of web (v3) failed: web.1 exited with code 3"
    as_json = runner.invoke(cli, ["rollback", "--app", "web", "--json"], env=server.env)
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["status"] == "failed"


def test_the_servers_refusal_is_the_error(server: Server, store: Store) -> None:
    make_app(server, store, 1)
    runner = CliRunner()
    nothing_before = runner.invoke(cli, ["rollback", "--app", "web"], env=server.env)
    assert str(nothing_before.exception) == (
        "web has no earlier release that went live; name one with --to (HTTP 422)"
    )
    unknown = runner.invoke(cli, ["rollback", "--app", "web", "--to", "v9"], env=server.env)
    assert str(unknown.exception) == "web has no release v9 (HTTP 404)"
    zero = runner.invoke(cli, ["rollback", "--app", "web", "--to", "v0"], env=server.env)
    assert "greater than or equal to 1 (HTTP 422)" in str(zero.exception)


def test_a_bad_version_is_one_line_and_exit_code_1(tmp_path: Path) -> None:
    result = shipway(tmp_path, "rollback", "--app", "web", "--to", "latest")
    assert result.returncode == 1
    assert result.stderr == (
        "error: --to must be a release version such as v3 or 3; got 'latest'\n"
    )
