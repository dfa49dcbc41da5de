"""`shipway open`: the app's URL printed, and opened in a browser only where there is one."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from shipway.cli.browser import can_browse
from shipway.client.api import Api
from shipway.store import Store
from tests.api.conftest import release
from tests.cli.conftest import Server, shipway

URL = "http://web.localhost:8080"


@pytest.fixture
def web(server: Server, store: Store) -> Server:
    Api(server.env["SHIPWAY_URL"], server.env["SHIPWAY_TOKEN"]).post("/apps", {"name": "web"})
    release(store, 1, env="feature-x")
    return server


def fake_browser(tmp_path: Path) -> tuple[Path, Path]:
    """A BROWSER that writes the URL it was given to a file, and that file."""
    opened = tmp_path / "opened"
    script = tmp_path / "browser"
    script.write_text(f'#!/bin/sh\necho "$1" > {opened}\n')
    script.chmod(0o755)
    return script, opened


def test_the_url_is_printed(web: Server, tmp_path: Path) -> None:
    result = shipway(tmp_path, "open", "-a", "web", env=web.env)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"{URL}\n", "")
    preview = shipway(tmp_path, "open", "--app", "web", "--env", "feature-x", env=web.env)
    assert preview.stdout == "http://web--feature-x.localhost:8080\n"
    shown = json.loads(shipway(tmp_path, "open", "-a", "web", "--json", env=web.env).stdout)
    assert shown == {"app": "web", "environment": "production", "url": URL}


def test_bad_names_are_one_line_errors(web: Server, tmp_path: Path) -> None:
    unknown = shipway(tmp_path, "open", "-a", "nope", env=web.env)
    assert (unknown.returncode, unknown.stderr) == (1, "error: no app named 'nope' (HTTP 404)\n")
    no_env = shipway(tmp_path, "open", "-a", "web", "--env", "nope", env=web.env)
    assert no_env.returncode == 1
    assert no_env.stderr == (
        "error: web has no environment named 'nope'; it has: production, feature-x\n"
    )
    missing = shipway(tmp_path, "open", env=web.env)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


def test_no_browser_is_opened_from_a_pipe(web: Server, tmp_path: Path) -> None:
    script, opened = fake_browser(tmp_path)
    result = shipway(
        tmp_path, "open", "-a", "web", env={**web.env, "BROWSER": str(script), "DISPLAY": ":0"}
    )
    assert result.returncode == 0 and result.stdout == f"{URL}\n"
    assert not opened.exists()


def test_a_browser_is_opened_at_a_terminal(web: Server, tmp_path: Path) -> None:
    script, opened = fake_browser(tmp_path)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **web.env, "BROWSER": str(script)}
    controller, terminal = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "shipway", "open", "-a", "web"],
            stdout=terminal,
            stderr=subprocess.PIPE,
            env=env,
            cwd=tmp_path,
            timeout=60,
            check=False,
        )
        printed = os.read(controller, 4096).decode()
    finally:
        os.close(controller)
        os.close(terminal)
    assert done.returncode == 0, done.stderr
    assert URL in printed
    assert eventually(lambda: opened.exists() and opened.read_text() == f"{URL}\n")


def eventually(condition: Callable[[], bool], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize(
    ("tty", "environ", "platform", "expected"),
    [
        (False, {"DISPLAY": ":0", "BROWSER": "firefox"}, "linux", False),
        (True, {}, "linux", False),
        (True, {"DISPLAY": ":0"}, "linux", True),
        (True, {"WAYLAND_DISPLAY": "wayland-0"}, "linux", True),
        (True, {"BROWSER": "lynx"}, "linux", True),
        (True, {}, "darwin", True),
        (False, {}, "darwin", False),
    ],
)
def test_when_a_browser_can_be_shown(
    tty: bool, environ: dict[str, str], platform: str, expected: bool
) -> None:
    assert can_browse(tty, environ, platform) is expected
