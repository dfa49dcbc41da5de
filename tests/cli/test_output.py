"""What the CLI prints into a pipe: whole tables, and text shown as written."""

from __future__ import annotations

from pathlib import Path

from shipway.client.api import Api
from tests.cli.conftest import Server, shipway

LONG = "postgres://user:" + "s" * 120 + "@db.example.com:5432/production"
MARKUP = "[/E…] [bold]not bold[/bold]"


def make_app(server: Server) -> None:
    api = Api(server.env["SHIPWAY_URL"], server.env["SHIPWAY_TOKEN"])
    api.post("/apps", {"name": "web"})
    api.request("PATCH", "/apps/web/env", json={"set": {"LONG": LONG, "ODD": MARKUP}})


def test_a_piped_table_is_printed_whole(server: Server, tmp_path: Path) -> None:
    make_app(server)
    result = shipway(tmp_path, "env", "list", "-a", "web", env=server.env)
    assert result.returncode == 0, result.stderr
    assert LONG in result.stdout and "…" not in result.stdout.replace(MARKUP, "")
    assert max(len(line) for line in result.stdout.splitlines()) > 80
    [header, _, *rows] = result.stdout.splitlines()
    assert header.split() == ["KEY", "┃", "VALUE", "┃", "SECRET", "┃", "UPDATED", "AT"]
    assert [row.split("│")[0].strip() for row in rows] == ["LONG", "ODD"]


def test_cells_and_fields_are_shown_as_written(server: Server, tmp_path: Path) -> None:
    make_app(server)
    listed = shipway(tmp_path, "env", "list", "--app", "web", env=server.env)
    assert listed.returncode == 0, listed.stderr
    assert MARKUP in listed.stdout
    changed = shipway(
        tmp_path, "apps", "set", "-a", "web", "--health-path", "/[bold]up", env=server.env
    )
    assert changed.returncode == 0, changed.stderr
    assert "health path     /[bold]up" in changed.stdout
