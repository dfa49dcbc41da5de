"""`shipway env set|unset|list` against the real API behind uvicorn: a change that starts a
deployment waits for it, as a push does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shipway.cli.env import env as env_cli
from shipway.cli.env import parse_pairs
from shipway.cli.output import console
from shipway.client.api import Api
from shipway.errors import ClientError
from shipway.store import Store
from tests.api.conftest import release
from tests.cli.conftest import Server


@pytest.fixture
def env(server: Server) -> dict[str, str]:
    """The environment that points the CLI at the whole API, behind uvicorn."""
    return server.env


def test_set_list_unset(env: dict[str, str]) -> None:
    Api(env["SHIPWAY_URL"], env["SHIPWAY_TOKEN"]).post("/apps", {"name": "web"})
    runner = CliRunner()

    result = runner.invoke(env_cli, ["set", "--app", "web", "DEBUG=1", "URL=a=b=c"], env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout == "Set config vars DEBUG, URL on web.\n"
    result = runner.invoke(env_cli, ["set", "--app", "web", "--secret", "TOKEN=t0p"], env=env)
    assert result.stdout == "Set secret TOKEN on web.\n"

    listed = json.loads(runner.invoke(env_cli, ["list", "--app", "web", "--json"], env=env).stdout)
    assert [(v["key"], v["value"], v["secret"]) for v in listed] == [
        ("DEBUG", "1", False),
        ("TOKEN", "***", True),
        ("URL", "a=b=c", False),
    ]
    table = runner.invoke(env_cli, ["list", "--app", "web"], env=env).stdout
    assert "a=b=c" in table and "***" in table and "t0p" not in table

    result = runner.invoke(env_cli, ["unset", "--app", "web", "DEBUG", "URL"], env=env)
    assert result.stdout == "Unset DEBUG, URL on web.\n"
    result = runner.invoke(env_cli, ["unset", "--app", "web", "TOKEN", "--json"], env=env)
    assert json.loads(result.stdout) == {"vars": [], "deployment": None}
    assert runner.invoke(env_cli, ["list", "--app", "web"], env=env).stdout == "No config vars.\n"


def test_the_servers_message_is_the_error(env: dict[str, str]) -> None:
    runner = CliRunner()
    result = runner.invoke(env_cli, ["list", "--app", "web"], env=env)
    assert isinstance(result.exception, ClientError)
    assert str(result.exception) == "no app named 'web' (HTTP 404)"
    Api(env["SHIPWAY_URL"], env["SHIPWAY_TOKEN"]).post("/apps", {"name": "web"})
    result = runner.invoke(env_cli, ["set", "--app", "web", "PORT=80"], env=env)
    assert isinstance(result.exception, ClientError)
    assert "'PORT' is reserved" in str(result.exception)
    assert str(result.exception).endswith("(HTTP 422)")


def test_a_pair_without_equals_names_the_argument() -> None:
    assert parse_pairs(["A=", "B==", "A=2"]) == {"A": "2", "B": "="}
    with pytest.raises(ClientError, match="'DEBUG' is not KEY=VALUE"):
        parse_pairs(["OK=1", "DEBUG"])


def test_a_bad_pair_is_one_line_and_exit_code_1(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "shipway", "env", "set", "--app", "web", "DEBUG"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SHIPWAY_DATA": str(tmp_path)},
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: 'DEBUG' is not KEY=VALUE")
    assert len(result.stderr.strip().splitlines()) == 1


URL = "http://web.localhost:8080"


@pytest.fixture
def live(server: Server, store: Store, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An app "web" with v1 live, so that a config change deploys v2."""
    monkeypatch.setattr(console, "width", 200)
    Api(server.env["SHIPWAY_URL"], server.env["SHIPWAY_TOKEN"]).post("/apps", {"name": "web"})
    release(store, 1)
    return server.env


def test_a_change_waits_until_its_release_is_live(live: dict[str, str]) -> None:
    runner = CliRunner()
    result = runner.invoke(env_cli, ["set", "--app", "web", "GREETING=hi"], env=live)
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"Set config var GREETING on web; deploying the change …\nv2 is live at {URL}\n"
    )
    result = runner.invoke(env_cli, ["unset", "--app", "web", "GREETING", "NOPE"], env=live)
    assert result.stdout == (
        f"Unset GREETING, NOPE on web; deploying the change …\nv3 is live at {URL}\n"
    )
    # Unsetting what is not set changes nothing and deploys nothing.
    result = runner.invoke(env_cli, ["unset", "--app", "web", "NOPE"], env=live)
    assert result.stdout == "Unset NOPE on web.\n"

    result = runner.invoke(env_cli, ["set", "--app", "web", "A=1", "B=2", "--json"], env=live)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert [(v["key"], v["value"]) for v in shown["vars"]] == [("A", "1"), ("B", "2")]
    deployment = shown["deployment"]
    assert (deployment["status"], deployment["release"], deployment["source"]) == (
        "live",
        4,
        "config",
    )


def test_a_failed_release_exits_1_with_the_reason(live: dict[str, str], server: Server) -> None:
    server.temporal.failure = "web.1 exited with code 3"
    runner = CliRunner()
    result = runner.invoke(env_cli, ["set", "--app", "web", "GREETING=hi"], env=live)
    assert isinstance(result.exception, ClientError)
    assert str(result.exception) == "the config change of web (v2) failed: web.1 exited with code 3"
    as_json = runner.invoke(env_cli, ["unset", "--app", "web", "GREETING", "--json"], env=live)
    assert as_json.exit_code == 1
    shown = json.loads(as_json.stdout)
    assert shown["vars"] == [] and shown["deployment"]["status"] == "failed"
    assert shown["deployment"]["reason"] == "web.1 exited with code 3"


def test_no_wait_returns_while_the_release_is_still_deploying(
    live: dict[str, str], server: Server
) -> None:
    server.temporal.hold = True
    runner = CliRunner()
    result = runner.invoke(env_cli, ["set", "--app", "web", "GREETING=hi", "--no-wait"], env=live)
    assert result.exit_code == 0, result.output
    [deployment] = [
        d
        for d in Api(live["SHIPWAY_URL"], live["SHIPWAY_TOKEN"]).get("/apps/web/deployments")
        if d["source"] == "config"
    ]
    assert deployment["status"] == "deploying"
    assert result.stdout == (
        f"Set config var GREETING on web; deployment {deployment['id']} is under way.\n"
    )
    args = ["set", "--app", "web", "A=1", "--no-wait", "--json"]
    as_json = runner.invoke(env_cli, args, env=live)
    shown = json.loads(as_json.stdout)
    assert shown["deployment"]["status"] == "deploying" and shown["deployment"]["release"] == 3


def test_without_no_wait_the_command_returns_only_once_live(
    live: dict[str, str], server: Server, tmp_path: Path
) -> None:
    server.temporal.hold = True
    waiting = subprocess.Popen(
        [sys.executable, "-m", "shipway", "env", "set", "--app", "web", "GREETING=hi"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**live, "PATH": os.environ["PATH"], "HOME": str(tmp_path), "COLUMNS": "200"},
        cwd=tmp_path,
    )
    try:
        assert waiting.stdout is not None
        said = waiting.stdout.readline()
        assert said == "Set config var GREETING on web; deploying the change …\n"
        [deployment] = [
            d
            for d in Api(live["SHIPWAY_URL"], live["SHIPWAY_TOKEN"]).get("/apps/web/deployments")
            if d["source"] == "config"
        ]
        assert waiting.poll() is None  # it is deploying, and the command still waits
        server.temporal.finish(deployment["id"])
        out, err = waiting.communicate(timeout=60)
    finally:
        waiting.kill()
    assert (waiting.returncode, out, err) == (0, f"v2 is live at {URL}\n", "")
