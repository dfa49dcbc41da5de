"""What the fleet's end-to-end tests share: builder processes beside a running shipway, and
what the fleet says of them."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import psutil

from tests.e2e.conftest import Instance
from tests.e2e.test_push import api, wait_for


def fleet(instance: Instance) -> dict[str, dict[str, Any]]:
    """The builders by id, as `builders list --json` shows them: asked of the API, since tests
    poll it (a CLI process a poll would take a core; tests/e2e/test_fleet.py runs the command)."""
    return {b["id"]: b for b in api(instance, "/builders")}


def start_builder(instance: Instance, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "shipway", "builder", "--data", str(instance.data), *args],
        env=instance.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def builder_of(instance: Instance, process: subprocess.Popen[str]) -> dict[str, Any]:
    def mine() -> dict[str, Any] | None:
        return next(
            (b for b in fleet(instance).values() if b["id"].endswith(f"-{process.pid}")), None
        )

    return wait_for(mine, 60, "the builder to join the fleet")  # type: ignore[no-any-return]


def releases(instance: Instance, app: str) -> list[dict[str, Any]]:
    return api(instance, f"/apps/{app}/releases")  # type: ignore[no-any-return]


def build_log(instance: Instance, build_id: int) -> str:
    shown = instance.cli("builds", "logs", str(build_id))
    assert shown.returncode == 0, shown.stderr
    return shown.stdout


def local_builders(instance: Instance) -> list[psutil.Process]:
    """The `shipway builder` processes the server runs beside itself."""
    state = json.loads((instance.data / "run" / "state.json").read_text())
    return [
        p
        for p in psutil.Process(state["pid"]).children()
        if "builder" in p.cmdline() and p.status() != psutil.STATUS_ZOMBIE
    ]
