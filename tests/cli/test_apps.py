"""`shipway apps set|info`, `shipway previews` and `shipway logs` against the real API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from shipway.cli.main import app as cli
from shipway.cli.output import console
from shipway.cli.resources import uptime, whole_seconds
from shipway.client.api import Api
from shipway.errors import ClientError
from shipway.logs import lines
from shipway.store import Store
from shipway.store.tables import App
from tests.api.conftest import release
from tests.cli.conftest import Server, shipway


@pytest.fixture
def web(server: Server, monkeypatch: pytest.MonkeyPatch) -> Server:
    monkeypatch.setattr(console, "width", 200)
    Api(server.env["SHIPWAY_URL"], server.env["SHIPWAY_TOKEN"]).post("/apps", {"name": "web"})
    return server


def run(server: Server, *args: str) -> str:
    result = CliRunner().invoke(cli, list(args), env=server.env)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def said(output: str) -> list[str]:
    """OUTPUT's lines with runs of spaces as one, so column widths do not matter."""
    return [" ".join(line.split()) for line in output.splitlines()]


def fails(server: Server, *args: str) -> str:
    result = CliRunner().invoke(cli, list(args), env=server.env)
    assert isinstance(result.exception, ClientError), result.output
    return str(result.exception)


@pytest.mark.parametrize(("raw", "seconds"), [("300", 300), ("90s", 90), ("5m", 300), ("2h", 7200)])
def test_durations(raw: str, seconds: int) -> None:
    assert whole_seconds(raw, "--idle-timeout") == seconds


@pytest.mark.parametrize("raw", ["", "5 minutes", "-1", "1.5", "5y", "٣"])
def test_bad_durations_name_the_flag(raw: str) -> None:
    with pytest.raises(ClientError, match="--health-timeout must be seconds"):
        whole_seconds(raw, "--health-timeout")


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(None, ""), (0.4, "0s"), (42.9, "42s"), (725, "12m 5s"), (11040, "3h 4m"), (183600, "2d 3h")],
)
def test_uptimes(seconds: float | None, shown: str) -> None:
    assert uptime(seconds) == shown


def test_settings(web: Server) -> None:
    changed = json.loads(
        run(
            web,
            *("apps", "set", "web", "--idle-timeout", "5m", "--health-path", "/up"),
            *("--health-timeout", "45", "--json"),
        )
    )
    assert (changed["idle_timeout"], changed["health_path"], changed["health_timeout"]) == (
        300,
        "/up",
        45,
    )
    shown = said(run(web, "apps", "set", "web", "--idle-timeout", "off"))
    assert "sleeps never" in shown and "health path /up" in shown
    assert fails(web, "apps", "set", "web", "--idle-timeout", "soon") == (
        "--idle-timeout must be seconds (300) or like 90s, 15m or 2h, or off; got 'soon'"
    )
    assert fails(web, "apps", "set", "web", "--idle-timeout", "5") == (
        "idle_timeout must be 10-86400 seconds, or null to never sleep; got 5 (HTTP 422)"
    )
    assert "health_path must be a path starting with '/'" in fails(
        web, "apps", "set", "web", "--health-path", "up"
    )
    assert fails(web, "apps", "set", "web").startswith("nothing to change")


def test_info(web: Server, store: Store) -> None:
    release(store, 1, processes={"web": "a", "worker": "b"}, description="Deploy 1a2b3c4")
    release(store, 2, env="feature-x")
    shown = said(run(web, "apps", "info", "web"))
    assert "formation web=1 worker=1" in shown
    assert "sleeps never" in shown
    assert "health check GET / within 30 s" in shown
    assert "production │ http://web.localhost:8080 │ v1 │ Deploy 1a2b3c4 │" in shown
    assert "feature-x │ http://web--feature-x.localhost:8080 │ v2 │ Deploy v2 │" in shown
    info = json.loads(run(web, "apps", "info", "web", "--json"))
    assert info["environments"][0]["release"]["version"] == 1
    assert fails(web, "apps", "info", "nope") == "no app named 'nope' (HTTP 404)"


def test_the_app_is_named_as_the_argument_or_with_a(web: Server) -> None:
    as_argument = run(web, "apps", "info", "web", "--json")
    assert run(web, "apps", "info", "-a", "web", "--json") == as_argument
    assert run(web, "apps", "info", "--app", "web", "web", "--json") == as_argument
    assert fails(web, "apps", "info", "-a", "nope") == "no app named 'nope' (HTTP 404)"
    assert fails(web, "apps", "info") == "name the app: as the argument (APP) or with -a APP"
    assert fails(web, "apps", "info", "web", "-a", "api") == (
        "two apps named: web and -a api; name one"
    )
    changed = json.loads(run(web, "apps", "set", "-a", "web", "--plan", "pro", "--json"))
    assert changed["plan"] == "pro"
    assert json.loads(run(web, "apps", "deliveries", "-a", "web", "--json")) == []
    connect = ("apps", "connect", "-a", "web", "--provider", "github", "--repo", "acme/web")
    connected = json.loads(run(web, *connect, "--secret", "s" * 24, "--json"))
    assert connected["repo"] == "acme/web"
    assert json.loads(run(web, "apps", "disconnect", "-a", "web", "--json")) == {
        "app": "web",
        "connection": None,
    }
    assert fails(web, "apps", "delete", "-a", "web") == (
        "deleting web removes all its releases; pass --yes to confirm"
    )
    deleted = json.loads(run(web, "apps", "delete", "-a", "web", "--yes", "--json"))
    assert deleted == {"app": "web", "deleted": True}
    assert fails(web, "apps", "info", "-a", "web") == "no app named 'web' (HTTP 404)"


def test_previews(web: Server, store: Store) -> None:
    assert run(web, "previews", "list", "--app", "web") == "web has no previews.\n"
    release(store, 1, env="feature-x")
    assert "feature/feature-x" in run(web, "previews", "list", "--app", "web")
    assert [
        p["name"] for p in json.loads(run(web, "previews", "list", "--app", "web", "--json"))
    ] == ["feature-x"]
    assert json.loads(run(web, "previews", "delete", "feature-x", "-a", "web", "--json")) == {
        "app": "web",
        "environment": "feature-x",
        "deleted": True,
    }
    assert fails(web, "previews", "delete", "feature-x", "--app", "web") == (
        "web has no environment named 'feature-x' (HTTP 404)"
    )
    assert fails(web, "previews", "delete", "production", "--app", "web") == (
        "production cannot be removed; delete the app (HTTP 422)"
    )
    assert fails(web, "previews", "delete", "..", "--app", "web") == (
        "'..' is not a preview name: a-z, 0-9 and '-'"
    )
    assert run(web, "apps", "info", "web")  # the app is still there


def test_logs(web: Server, store: Store) -> None:
    with store.transaction() as session:
        app_id = session.scalars(select(App.id)).one()
        lines.insert(session, "app", app_id, [(n, f"line {n}") for n in range(1, 6)])
    assert run(web, "logs", "--app", "web") == "".join(f"line {n}\n" for n in range(1, 6))
    assert run(web, "logs", "-a", "web", "--tail", "2") == "line 4\nline 5\n"
    assert fails(web, "logs", "--app", "nope") == "no app named 'nope' (HTTP 404)"
    for follow in ([], ["-f"]):  # without NATS, a followed log ends with its stored lines
        printed = run(web, "logs", "-a", "web", "--tail", "2", "--json", *follow)
        assert printed == '{"line": "line 4"}\n{"line": "line 5"}\n'
    assert fails(web, "logs", "-a", "nope", "--json") == "no app named 'nope' (HTTP 404)"


def test_a_bad_tail_is_a_usage_error(tmp_path: Path) -> None:
    result = shipway(tmp_path, "logs", "--app", "web", "--tail", "-3")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "--tail" in result.stderr
