"""Starting, supervising and stopping: restarts, signals, orphans, ports, side by side."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from shipway.embedded.ports import any_free
from tests.e2e.conftest import Instance, assert_gone, clean_env, shipway, start, stop
from tests.helpers import fresh_postgres_database

pytestmark = pytest.mark.e2e


def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def test_killed_temporal_degrades_health_then_recovers(tmp_path: Path) -> None:
    running = start(tmp_path, "victim")
    try:
        status, report = running.health()
        assert status == 200 and report["status"] == "ok"
        pid = report["components"]["temporal"]["pid"]
        shipway_pid = json.loads((running.data / "run" / "state.json").read_text())["pid"]
        # Its file is in WAL mode: a killed server's commits are kept, and no journal to sync.
        db = sqlite3.connect(f"file:{running.data / 'temporal.db'}?mode=ro", uri=True)
        with contextlib.closing(db):
            assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)

        os.kill(pid, signal.SIGKILL)
        seen: list[tuple[int, str]] = []

        def degraded() -> bool:
            code, body = running.health()
            seen.append((code, body["components"]["temporal"]["status"]))
            return code == 503 and body["status"] == "degraded"

        wait_for(degraded, 10, "/healthz to report degraded")
        assert seen[-1] == (503, "down")

        def recovered() -> bool:
            code, body = running.health()
            temporal = body["components"]["temporal"]
            return code == 200 and temporal["pid"] != pid and temporal["restarts"] == 1

        wait_for(recovered, 60, "/healthz to report healthy again")
        deep = json.loads(running.cli("status", "--deep", "--json").stdout)["health"]
        assert deep["components"]["temporal"]["probe"]["status"] == "ok", deep
        state = json.loads((running.data / "run" / "state.json").read_text())
        assert state["pid"] == shipway_pid, "shipway itself must not have restarted"
        assert running.cli("apps", "create", "after-restart").returncode == 0
    finally:
        stop(running)


def test_sigkill_of_shipway_leaves_no_orphans(tmp_path: Path) -> None:
    running = start(tmp_path, "killed")
    children = running.child_pids()
    assert len(children) == 2
    shipway_pid = json.loads((running.data / "run" / "state.json").read_text())["pid"]
    os.kill(shipway_pid, signal.SIGKILL)
    assert_gone([shipway_pid, *children])
    again = start(tmp_path, "killed")
    try:
        assert again.health()[1]["status"] == "ok"
    finally:
        stop(again)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_foreground_stops_cleanly_on_a_signal(tmp_path: Path, sig: signal.Signals) -> None:
    port = any_free()
    env = clean_env(tmp_path, SHIPWAY_DATA=str(tmp_path / "fg"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "shipway", "up", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        banner = []
        assert proc.stdout is not None
        for line in proc.stdout:
            banner.append(line)
            if "Press Ctrl-C" in line:
                break
        text = "".join(banner)
        assert f"http://localhost:{port}" in text
        assert "admin-token" in text and "Web UI http://127.0.0.1:" in text
        assert "nats://127.0.0.1:" in text
        children = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        assert len(children) >= 2
        proc.send_signal(sig)
        assert proc.wait(timeout=60) == 0
        assert_gone(children)
        assert not (tmp_path / "fg" / "run" / "state.json").exists()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_port_in_use_is_one_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        env = clean_env(tmp_path, SHIPWAY_DATA=str(tmp_path / "busy"))
        for args in (("up", "--port", str(busy)), ("up", "-d", "--port", str(busy))):
            before = {p.pid for p in psutil.process_iter()}
            result = shipway(*args, env=env)
            assert result.returncode == 1, result.stdout
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1, result.stderr
            assert f"port {busy} is already in use" in lines[0] and "--port" in lines[0]
            # Ours only: the other test worker may be starting servers of its own meanwhile.
            spawned = [
                p
                for p in psutil.process_iter(["pid", "name", "cmdline"])
                if p.pid not in before
                and p.info["name"] in ("temporal", "nats-server")
                and any(str(tmp_path) in arg for arg in p.info["cmdline"] or [])
            ]
            assert spawned == []


def test_one_data_dir_runs_one_server(instance: Instance) -> None:
    result = instance.cli("up", "--port", str(any_free()))
    assert result.returncode == 1
    assert "already running" in result.stderr


def test_two_instances_run_side_by_side(instance: Instance, tmp_path: Path) -> None:
    second = start(tmp_path, "second")
    try:
        first_parts = instance.health()[1]["components"]
        status, report = second.health()
        assert status == 200, report
        second_parts = report["components"]
        for part in ("temporal", "nats"):
            assert second_parts[part]["embedded"] is True
            assert second_parts[part]["address"] != first_parts[part]["address"]
        assert second.cli("apps", "create", "only-in-second").returncode == 0
        first_apps = json.loads(instance.cli("apps", "list", "--json").stdout)
        assert "only-in-second" not in [a["name"] for a in first_apps]
        # The first keeps running. Its parts answer each check within 2 s, which a machine
        # loaded by the other test workers can miss once: a lasting fault would not recover.
        deadline = time.monotonic() + 30
        while (health := instance.health())[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert health[0] == 200, health[1]
    finally:
        stop(second)


def test_external_temporal_and_nats_spawn_nothing(instance: Instance, tmp_path: Path) -> None:
    parts = instance.health()[1]["components"]
    # An external NATS wants credentials: without them shipway stops, never anonymous.
    env = clean_env(
        tmp_path,
        SHIPWAY_DATA=str(tmp_path / "anonymous"),
        SHIPWAY_TEMPORAL_ADDRESS=parts["temporal"]["address"],
        SHIPWAY_NATS_URL=parts["nats"]["address"],
    )
    refused = shipway("up", "-d", "--port", str(any_free()), env=env, timeout=180)
    assert refused.returncode == 1
    assert "refused the credentials: nats: 'Authorization Violation'" in refused.stderr
    external = start(
        tmp_path,
        "external",
        SHIPWAY_TEMPORAL_ADDRESS=parts["temporal"]["address"],
        SHIPWAY_NATS_URL=parts["nats"]["address"],
        SHIPWAY_NATS_NKEY=str(instance.data / "nats" / "keys" / "control.nk"),
    )
    try:
        status, report = external.health()
        assert status == 200, report
        assert report["components"]["temporal"]["embedded"] is False
        assert report["components"]["nats"]["embedded"] is False
        state = json.loads((external.data / "run" / "state.json").read_text())
        assert state["embedded"] == []
        # Its one child is its node, which runs the apps.
        children = psutil.Process(state["pid"]).children()
        assert [c.pid for c in children] == [state["node"]["pid"]]
        assert not (external.data / "temporal.db").exists()
    finally:
        stop(external)


def test_postgresql_store(tmp_path: Path, postgres_server: str) -> None:
    with fresh_postgres_database(postgres_server) as url:
        running = start(tmp_path, "pg", SHIPWAY_DATABASE_URL=url)
        try:
            assert running.health()[1]["components"]["store"]["backend"] == "postgresql"
            assert running.cli("apps", "create", "on-postgres").returncode == 0
            assert "on-postgres" in running.cli("apps", "list").stdout
        finally:
            stop(running)


def test_down_when_nothing_runs(tmp_path: Path) -> None:
    env = clean_env(tmp_path, SHIPWAY_DATA=str(tmp_path / "idle"))
    result = shipway("down", env=env)
    assert result.returncode == 0 and "not running" in result.stdout
    status = shipway("status", env=env)
    assert status.returncode == 1 and "not running" in status.stderr
