"""`shipway scale --app APP web=3 worker=0`: parsing, and the formation it shows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shipway.cli.formation import parse_counts
from shipway.cli.main import app as cli
from shipway.client.api import Api
from shipway.errors import ClientError
from tests.cli.conftest import Server, shipway


def test_counts_are_process_equals_a_whole_number() -> None:
    assert parse_counts(["web=3", "worker=0", "web=2"]) == {"web": 2, "worker": 0}
    assert parse_counts([]) == {}


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("web", "'web' is not PROCESS=COUNT"),
        ("=3", "'=3' is not PROCESS=COUNT"),
        ("web=x", "'web=x': the count must be a whole number"),
        ("web=", "'web=': the count"),
        ("web=-1", "'web=-1': the count"),
        ("web=1.5", "'web=1.5': the count"),
        ("web= 3", "'web= 3': the count"),
        ("web=٣", "'web=٣': the count"),
        ("web=10000000", "'web=10000000': the count"),
    ],
)
def test_bad_pairs_name_the_argument(pair: str, message: str) -> None:
    with pytest.raises(ClientError) as raised:
        parse_counts(["worker=1", pair])
    assert message in str(raised.value)


def test_scale_and_show(server: Server) -> None:
    Api(server.env["SHIPWAY_URL"], server.env["SHIPWAY_TOKEN"]).post("/apps", {"name": "web"})
    runner = CliRunner()
    shown = runner.invoke(cli, ["scale", "--app", "web"], env=server.env)
    assert shown.exit_code == 0, shown.output
    assert shown.stdout == "web has no process types yet.\n"

    scaled = runner.invoke(cli, ["scale", "--app", "web", "web=3", "worker=1"], env=server.env)
    assert scaled.exit_code == 0, scaled.output
    assert "PROCESS" in scaled.stdout and "web" in scaled.stdout and "3" in scaled.stdout
    again = runner.invoke(cli, ["scale", "--app", "web", "worker=0", "--json"], env=server.env)
    assert json.loads(again.stdout) == {"web": 3, "worker": 0}
    listed = runner.invoke(cli, ["scale", "--app", "web", "--json"], env=server.env)
    assert json.loads(listed.stdout) == {"web": 3, "worker": 0}

    refused = runner.invoke(cli, ["scale", "--app", "web", "Web=1"], env=server.env)
    assert isinstance(refused.exception, ClientError)
    assert "process type 'Web' must be" in str(refused.exception)
    assert str(refused.exception).endswith("(HTTP 422)")
    too_many = runner.invoke(cli, ["scale", "--app", "web", "web=21"], env=server.env)
    assert "web: the count must be a whole number from 0 to 20" in str(too_many.exception)


def test_a_bad_count_is_one_line_and_exit_code_1(tmp_path: Path) -> None:
    result = shipway(tmp_path, "scale", "--app", "web", "web=x")
    assert result.returncode == 1
    assert result.stderr == "error: 'web=x': the count must be a whole number, like web=2\n"
