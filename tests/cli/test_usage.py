"""Wrong usage gets a usage message and exit code 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "args",
    [("tokens", "revoke", "abc"), ("apps", "create"), ("apps", "--nope"), ("nonsense",)],
)
def test_usage_errors(args: tuple[str, ...], tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = subprocess.run(
        [sys.executable, "-m", "shipway", *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SHIPWAY_DATA": str(tmp_path)},
        timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "Error:" in result.stderr


def test_commands_without_a_server_say_how_to_start_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = subprocess.run(
        [sys.executable, "-m", "shipway", "apps", "list"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SHIPWAY_DATA": str(tmp_path)},
        timeout=60,
    )
    assert result.returncode == 1
    assert (
        result.stderr.startswith("error: no shipway is running") and "shipway up" in result.stderr
    )
