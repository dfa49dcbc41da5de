"""`shipway env set|unset|list` against the real API behind uvicorn."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from typer.testing import CliRunner

from shipway.api.app import create_app
from shipway.cli.env import env as env_cli
from shipway.cli.env import parse_pairs
from shipway.client.api import Api
from shipway.context import Context
from shipway.embedded import ports
from shipway.errors import ClientError
from shipway.settings import Settings
from shipway.store import Store


@pytest.fixture
def server(store: Store, settings: Settings, admin_token: str) -> Iterator[dict[str, str]]:
    """The whole API on a free loopback port, and the environment that points the CLI at it."""
    port = ports.any_free()
    app = create_app(Context(settings=settings, store=store))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    yield {"SHIPWAY_URL": f"http://127.0.0.1:{port}", "SHIPWAY_TOKEN": admin_token}
    server.should_exit = True
    thread.join(10)


def test_set_list_unset(server: dict[str, str]) -> None:
    Api(server["SHIPWAY_URL"], server["SHIPWAY_TOKEN"]).post("/apps", {"name": "web"})
    runner = CliRunner()

    result = runner.invoke(env_cli, ["set", "--app", "web", "DEBUG=1", "URL=a=b=c"], env=server)
    assert result.exit_code == 0, result.output
    assert result.stdout == "Set config vars DEBUG, URL on web.\n"
    result = runner.invoke(env_cli, ["set", "--app", "web", "--secret", "TOKEN=t0p"], env=server)
    assert result.stdout == "Set secret TOKEN on web.\n"

    listed = json.loads(
        runner.invoke(env_cli, ["list", "--app", "web", "--json"], env=server).stdout
    )
    assert [(v["key"], v["value"], v["secret"]) for v in listed] == [
        ("DEBUG", "1", False),
        ("TOKEN", "***", True),
        ("URL", "a=b=c", False),
    ]
    table = runner.invoke(env_cli, ["list", "--app", "web"], env=server).stdout
    assert "a=b=c" in table and "***" in table and "t0p" not in table

    result = runner.invoke(env_cli, ["unset", "--app", "web", "DEBUG", "URL"], env=server)
    assert result.stdout == "Unset DEBUG, URL on web.\n"
    result = runner.invoke(env_cli, ["unset", "--app", "web", "TOKEN", "--json"], env=server)
    assert json.loads(result.stdout) == []
    assert (
        runner.invoke(env_cli, ["list", "--app", "web"], env=server).stdout == "No config vars.\n"
    )


def test_the_servers_message_is_the_error(server: dict[str, str]) -> None:
    runner = CliRunner()
    result = runner.invoke(env_cli, ["list", "--app", "web"], env=server)
    assert isinstance(result.exception, ClientError)
    assert str(result.exception) == "no app named 'web' (HTTP 404)"
    Api(server["SHIPWAY_URL"], server["SHIPWAY_TOKEN"]).post("/apps", {"name": "web"})
    result = runner.invoke(env_cli, ["set", "--app", "web", "PORT=80"], env=server)
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
