"""Run shipway as a user would: `shipway up -d` in a subprocess, then the CLI against it."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from shipway.embedded.ports import any_free


@dataclass
class Instance:
    data: Path
    port: int
    env: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    @property
    def token(self) -> str:
        return (self.data / "admin-token").read_text().strip()

    def cli(self, *args: str, timeout: float = 120, **kw: Any) -> subprocess.CompletedProcess[str]:
        return shipway(*args, env=self.env, timeout=timeout, **kw)

    def health(self) -> tuple[int, dict[str, Any]]:
        response = httpx.get(f"{self.url}/healthz", timeout=10)
        return response.status_code, response.json()

    def child_pids(self) -> list[int]:
        """The embedded servers' pids, the add-on servers' among them."""
        parts = self.health()[1]["components"]
        servers = parts.get("addons", {}).get("servers", {}).values()
        return [p["pid"] for p in [*parts.values(), *servers] if p.get("pid")]


def shipway(
    *args: str, env: dict[str, str], timeout: float = 120, **kw: Any
) -> subprocess.CompletedProcess[str]:
    """Run the CLI in the test's own home (never in this checkout, whose git remotes
    `apps create` would change)."""
    kw.setdefault("cwd", env.get("HOME"))
    return subprocess.run(
        [sys.executable, "-m", "shipway", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kw,
    )


def clean_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The environment of a user of their own: a home (and git config) under TMP."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPWAY_")}
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    env.update(COLUMNS="200", HOME=str(home), XDG_CONFIG_HOME=str(tmp / "config"), **extra)
    env.pop("GIT_CONFIG_GLOBAL", None)
    return env


def start(tmp: Path, name: str, **extra_env: str) -> Instance:
    data = tmp / name
    port = any_free()
    env = clean_env(tmp, SHIPWAY_DATA=str(data), **extra_env)
    result = shipway("up", "-d", "--port", str(port), env=env, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    return Instance(data=data, port=port, env=env)


def stop(instance: Instance) -> None:
    pids = []
    with contextlib.suppress(httpx.HTTPError):
        pids = instance.child_pids()
    result = instance.cli("down")
    assert result.returncode == 0, result.stderr
    assert_gone(pids)


def assert_gone(pids: list[int], timeout: float = 15) -> None:
    """Every pid has exited (a zombie awaiting its parent's wait counts as gone)."""
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            proc.wait(timeout=timeout)
        except psutil.NoSuchProcess:
            continue
        except psutil.TimeoutExpired:
            if proc.status() != psutil.STATUS_ZOMBIE:
                pytest.fail(f"process {pid} ({proc.name()}) outlived shipway")


@pytest.fixture(scope="session")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    """One shipway, started detached, shared by the e2e tests that do not break it."""
    tmp = tmp_path_factory.mktemp("e2e")
    running = start(tmp, "main")
    yield running
    stop(running)


#: Pools of their own for the tests that run their own builders, chosen by the app's region.
POOLS = ("slow", "far", "lossy", "away", "remote", "busy")


@pytest.fixture(scope="module")
def pooled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    """One shipway whose rules send each test's apps to a pool of its own (by region), for
    the tests that run their own builders."""
    tmp = tmp_path_factory.mktemp("pooled")
    rules = tmp / "fleet.yml"
    rules.write_text(
        "rules:\n  - {plan: pro, pool: fast}\n  - {needs: eu-registry, pool: eu}\n"
        + "".join(f"  - {{region: {pool}, pool: {pool}}}\n" for pool in POOLS)
    )
    running = start(tmp, "pooled", SHIPWAY_FLEET_RULES=str(rules))
    yield running
    stop(running)
