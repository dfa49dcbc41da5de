"""What `shipway apps create` and `shipway login` set up in the user's git: a remote without
the token, and shipway as git's credential helper for the server, in a home of its own."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from shipway.cli.git import set_up_remote
from shipway.cli.main import app as cli
from shipway.cli.output import console, errors
from shipway.client.api import Api
from shipway.client.git import helper_command
from tests.cli.conftest import Server
from tests.helpers import git


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.delenv("GIT_CONFIG_GLOBAL", raising=False)
    monkeypatch.setattr(console, "width", 300)
    monkeypatch.setattr(errors, "width", 300)
    return home


@pytest.fixture
def repo(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh git work tree, the directory the user runs shipway in."""
    path = tmp_path / "src"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    monkeypatch.chdir(path)
    return path


def run(server: Server, *args: str) -> Result:
    result = CliRunner().invoke(cli, list(args), env=server.env)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def helpers(url: str) -> list[str]:
    found = subprocess.run(
        ["git", "config", "--global", "--get-all", f"credential.{url}.helper"],
        capture_output=True,
        text=True,
    )
    return found.stdout.splitlines()


def test_create_in_a_work_tree_adds_a_remote_without_the_token(server: Server, repo: Path) -> None:
    url = server.env["SHIPWAY_URL"]
    result = run(server, "apps", "create", "web")
    assert result.stdout.splitlines() == [
        "Created web → http://web.localhost:8080",
        f"Added git remote shipway → {url}/git/web.git; deploy with: git push shipway main",
        f"git takes the token for {url} from shipway (its global credential helper)",
    ]
    assert git(repo, "remote", "get-url", "shipway").stdout.strip() == f"{url}/git/web.git"
    assert server.env["SHIPWAY_TOKEN"] not in (repo / ".git" / "config").read_text()
    assert helpers(url) == ["", helper_command()]

    # The name is taken now: it is left alone, and the helper is there already.
    again = run(server, "apps", "create", "api")
    assert again.stdout.splitlines()[1:] == [
        f"Git remote shipway points at {url}/git/web.git already; left as it is. To push api, "
        f"add another: git remote add api {url}/git/api.git"
    ]
    named = run(server, "apps", "create", "worker", "--remote", "worker")
    assert named.stdout.splitlines()[1:] == [
        f"Added git remote worker → {url}/git/worker.git; deploy with: git push worker main"
    ]
    assert helpers(url) == ["", helper_command()]


def test_no_remote_and_outside_a_work_tree_nothing_is_added(
    server: Server, repo: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    skipped = run(server, "apps", "create", "web", "--no-remote")
    assert skipped.stdout == "Created web → http://web.localhost:8080\n"
    assert git(repo, "remote").stdout == ""
    monkeypatch.chdir(home)
    outside = run(server, "apps", "create", "api")
    assert outside.stdout == "Created api → http://api.localhost:8080\n"
    assert helpers(server.env["SHIPWAY_URL"]) == []


def test_json_keeps_stdout_to_the_app(server: Server, repo: Path) -> None:
    result = run(server, "apps", "create", "web", "--json")
    assert json.loads(result.stdout)["name"] == "web"
    assert "Added git remote shipway" in result.stderr
    assert git(repo, "remote", "get-url", "shipway").returncode == 0


def test_login_makes_shipway_the_credential_helper_for_its_server(
    server: Server, home: Path
) -> None:
    url, token = server.env["SHIPWAY_URL"], server.env["SHIPWAY_TOKEN"]
    args = ["login", "--url", url + "/", "--token", token]
    skipped = CliRunner().invoke(cli, [*args, "--no-git"], env={})
    assert skipped.exit_code == 0, skipped.output
    assert helpers(url) == []
    logged = CliRunner().invoke(cli, args, env={})
    assert logged.exit_code == 0, logged.output
    assert logged.stdout.splitlines()[-1] == (
        f"git takes the token for {url} from shipway (its global credential helper)"
    )
    assert helpers(url) == ["", helper_command()]
    assert token not in (home / ".gitconfig").read_text()
    assert helpers("https://github.com") == []


def test_git_is_set_up_before_anything_is_said(
    server: Server, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader that goes away at the first line (`apps create web | head -1`) still leaves
    git with the remote and the credential helper."""
    url = server.env["SHIPWAY_URL"]
    for name, value in server.env.items():
        monkeypatch.setenv(name, value)

    def gone(line: str) -> None:
        raise BrokenPipeError

    with pytest.raises(BrokenPipeError):
        set_up_remote(Api.find(), "web", "shipway", None, gone)
    assert git(repo, "remote", "get-url", "shipway").stdout.strip() == f"{url}/git/web.git"
    assert helpers(url) == ["", helper_command()]
