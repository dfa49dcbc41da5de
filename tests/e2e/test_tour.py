"""The README's tour as a user types it, in a home of their own: `shipway apps create` in a
fresh repository adds the remote, a plain `git push shipway main` deploys with no token in
.git/config, and `shipway env set` returns once the new value is served."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import Instance, shipway
from tests.e2e.test_live import FILES, serving
from tests.e2e.test_push import api, make_repo, wait_for

pytestmark = pytest.mark.e2e


def user_git(home: Path, repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """git as the user at HOME runs it: their global config, nothing of shipway's in the
    environment, and no prompt to fall back on."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_create_push_and_change_config_with_no_token_in_git(
    instance: Instance, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in instance.env.items() if k != "GIT_CONFIG_GLOBAL"}
    env.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1")
    repo = make_repo(tmp_path / "tour", FILES)
    # A helper for every host that writes what it is given to ~/.git-credentials.
    assert user_git(home, repo, "config", "--global", "credential.helper", "store").returncode == 0

    created = shipway("apps", "create", "tour", env=env, cwd=repo)
    assert created.returncode == 0, created.stderr
    remote = f"{instance.url}/git/tour.git"
    assert f"Added git remote shipway → {remote}" in created.stdout
    assert user_git(home, repo, "remote", "get-url", "shipway").stdout.strip() == remote
    assert instance.token not in (repo / ".git" / "config").read_text()
    assert instance.token not in (home / ".gitconfig").read_text()

    pushed = user_git(home, repo, "push", "shipway", "main")
    assert pushed.returncode == 0, pushed.stderr
    assert f"is live at http://tour.localhost:{instance.port}" in pushed.stderr
    assert serving(instance, "tour.localhost") == {
        "version": "one",
        "release": "v1",
        "greeting": None,
    }
    credentials = home / ".git-credentials"
    assert not credentials.exists() or instance.token not in credentials.read_text()

    changed = shipway("env", "set", "--app", "tour", "GREETING=hello", env=env, cwd=repo)
    assert changed.returncode == 0, changed.stderr
    assert changed.stdout.splitlines() == [
        "Set config var GREETING on tour; deploying the change …",
        f"v2 is live at http://tour.localhost:{instance.port}",
    ]
    # Served as soon as the command returned: no waiting here.
    assert serving(instance, "tour.localhost") == {
        "version": "one",
        "release": "v2",
        "greeting": "hello",
    }

    args = ("env", "set", "--app", "tour", "GREETING=later", "--no-wait", "--json")
    later = shipway(*args, env=env, cwd=repo)
    assert later.returncode == 0, later.stderr
    started = json.loads(later.stdout)["deployment"]
    assert started["release"] == 3 and started["source"] == "config"
    wait_for(
        lambda: api(instance, f"/deployments/{started['id']}")["status"] == "live",
        60,
        "the change made without waiting to go live",
    )
    assert serving(instance, "tour.localhost")["greeting"] == "later"  # type: ignore[index]
