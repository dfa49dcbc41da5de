"""`shipway up|down|status`: run, stop and inspect shipway on this machine."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.markup import escape

from shipway.cli.output import console, emit_json, emit_line
from shipway.client.login import data_dir_from
from shipway.datadir import DataDir, pid_alive
from shipway.errors import ClientError
from shipway.settings import Settings

READY_TIMEOUT = 120.0


def banner(state: dict[str, Any]) -> None:
    """What a user needs right after start: where to point a browser, git and the CLI."""
    addresses = state["addresses"]
    temporal = addresses.get("temporal", "")
    if "temporal_ui" in addresses:
        temporal += f"  (Web UI {addresses['temporal_ui']})"
    embedded = set(state.get("embedded", []))
    rows = [
        ("dashboard/API", f"{state['url']}  (API docs {state['url']}/api/v1/docs)"),
        ("apps", state.get("apps_url", "")),
        ("admin token", state["admin_token_file"]),
        ("Temporal", temporal + ("" if "temporal" in embedded else "  (external)")),
        ("NATS", addresses.get("nats", "") + ("" if "nats" in embedded else "  (external)")),
        ("store", state["store"]),
        ("data dir", state["data_dir"]),
    ]
    console.print(f"[bold green]shipway {state['version']} is up[/] (pid {state['pid']})")
    for label, value in rows:
        console.print(f"  [bold]{label:<14}[/] {value}", soft_wrap=True)
    sandbox_network(state.get("sandbox_network"))


def sandbox_network(state: dict[str, Any] | None) -> None:
    """The line an operator must not miss: whether tenants' sandboxes are kept off the host."""
    if state:
        colour = "green" if state["status"] == "isolated" else "bold red"
        console.print(f"  sandbox network: [{colour}]{state['detail']}[/]", soft_wrap=True)


def up_foreground(settings: Settings, *, as_json: bool = False) -> None:
    import asyncio

    from shipway.startup import loading

    with loading():
        from shipway.server import Server

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("temporalio", "nats", "alembic", "uvicorn", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    def ready(state: dict[str, Any]) -> None:
        if as_json:
            emit_line(state)
            return
        banner(state)
        console.print("Press Ctrl-C to stop.", style="dim")
        sys.stdout.flush()

    asyncio.run(Server(settings, ready).run())
    if not as_json:
        console.print("shipway stopped.")


def up_detached(settings: Settings, argv: list[str], *, as_json: bool = False) -> None:
    """Start `shipway up` in its own session, logging to DATA/shipway.log; wait until ready."""
    data = DataDir(settings.data_dir)
    data.create()
    running = data.read_state()
    if running is not None:
        raise ClientError(
            f"shipway is already running with data dir {data.root} (pid {running['pid']})"
        )
    offset = data.log_file.stat().st_size if data.log_file.exists() else 0
    env = {**os.environ, "SHIPWAY_DATA": str(data.root)}
    with open(data.log_file, "ab") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "shipway", "up", *argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        code = child.poll()
        if code is not None:
            raise ClientError(
                _last_error(data.log_file, offset) or f"shipway exited with code {code}"
            )
        state = data.read_state()
        if state is not None and state["pid"] == child.pid:
            if as_json:
                emit_json(state)
                return
            banner(state)
            console.print(
                f"Running in the background; log: {data.log_file}. Stop with `shipway down`.",
                style="dim",
            )
            return
        time.sleep(0.1)
    child.terminate()
    raise ClientError(
        f"shipway did not become ready within {READY_TIMEOUT:.0f}s; see {data.log_file}"
    )


def _last_error(log: Path, offset: int) -> str | None:
    with open(log, "rb") as f:
        f.seek(offset)
        lines = f.read().decode(errors="replace").splitlines()
    for line in reversed(lines):
        if line.startswith("error:"):
            return line.removeprefix("error:").strip()
    return lines[-1].strip() if lines else None


def down(data_flag: Path | None, timeout: float = 60.0, *, keep_apps: bool = False) -> Stopped:
    """Stop the shipway of the data dir, with its apps unless KEEP_APPS; what was stopped."""
    data = data_dir_from(data_flag)
    pid = data.read_pid()
    if pid is None:
        node = data.read_node()
        if keep_apps or node is None:
            return Stopped(data.root, None, node["pid"] if node else None, node is not None)
        # The control plane is gone (killed) and left its node serving: stop that.
        from shipway.nodes import local as nodes

        return Stopped(data.root, None, nodes.stop(data, timeout), False)
    if keep_apps:
        data.keep_node.touch()
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if data.read_pid() is None and not pid_alive(pid):
            node = data.read_node() if keep_apps else None
            return Stopped(data.root, pid, node["pid"] if node else None, node is not None)
        time.sleep(0.1)
    raise ClientError(f"shipway (pid {pid}) did not stop within {timeout:.0f}s")


@dataclass(frozen=True)
class Stopped:
    """What `shipway down` did: the control plane's pid it stopped (None: none ran), and the
    node's, which still serves the apps when APPS_SERVING."""

    data_dir: Path
    pid: int | None
    node_pid: int | None
    apps_serving: bool

    def said(self) -> str:
        if self.pid is None and self.node_pid is not None and not self.apps_serving:
            return f"shipway's apps stopped (node pid {self.node_pid})."
        if self.pid is None:
            return f"shipway is not running (data dir {self.data_dir})."
        said = f"shipway stopped (pid {self.pid})."
        if self.apps_serving:
            said += (
                f"\nApps keep serving (node pid {self.node_pid}); the next `shipway up` "
                "takes them over, `shipway down` stops them."
            )
        return said

    def as_dict(self) -> dict[str, Any]:
        return {
            "data_dir": str(self.data_dir),
            "pid": self.pid,
            "node_pid": self.node_pid,
            "apps_serving": self.apps_serving,
        }


def node(settings: Settings, temporal: str, nats: str, listen_fd: int) -> None:
    """Run this machine's node until SIGTERM; `shipway up` starts it in the background."""
    import uvloop

    from shipway.startup import loading

    with loading():
        from shipway.nodes.agent import Links, Node

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("temporalio", "nats", "uvicorn", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # The node's loop is uvloop's: the router's every request crosses it several times, and
    # uvloop's costs a third less CPU each time than asyncio's own.
    uvloop.run(Node(settings, Links(temporal, nats, listen_fd)).run())


def probe(temporal: dict[str, Any]) -> None:
    """The line of `status --deep`: how the probe workflow went through the control workers."""
    found = temporal.get("probe")
    if found is None:
        state, detail = "not run", "Temporal or the control workers are down"
    elif found["status"] == "ok":
        state, detail = "ok", f"a workflow through the control workers in {found['ms']} ms"
    else:
        state, detail = found["status"], found.get("error", "")
    colour = "green" if state == "ok" else "yellow"
    console.print(
        f"  [bold]{'probe':<10}[/][{colour}]{state:<10}[/]{escape(detail)}", highlight=False
    )


def status(data_flag: Path | None, as_json: bool, deep: bool = False) -> None:
    data = data_dir_from(data_flag)
    state = data.read_state()
    node = data.read_node()
    if state is None:
        if as_json:
            emit_json({"running": False, "data_dir": str(data.root), "node": node})
        apps = ""
        if node is not None:
            apps = (
                f"; its apps still run (node pid {node['pid']}): `shipway up` takes them "
                "over, `shipway down` stops them"
            )
        raise ClientError(f"shipway is not running (data dir {data.root}){apps}")
    try:
        health = httpx.get(f"{state['url']}/healthz", params={"deep": deep}, timeout=20).json()
    except (httpx.HTTPError, ValueError) as e:
        health = {"status": "unreachable", "components": {}, "error": str(e)}
    report = {"running": True, **state, "node": node, "health": health}
    if as_json:
        emit_json(report)
        return
    colour = "green" if health["status"] == "ok" else "yellow"
    console.print(
        f"shipway {state['version']} (pid {state['pid']}) at {state['url']}: "
        f"[{colour}]{health['status']}[/]"
    )
    for name, part in health.get("components", {}).items():
        where = part.get("address") or part.get("backend") or ""
        extra = f"  restarts {part['restarts']}" if part.get("restarts") else ""
        console.print(f"  [bold]{name:<10}[/]{part['status']:<10}{where}{extra}")
    if deep:
        probe(health.get("components", {}).get("temporal", {}))
    if node is not None:
        older = ""
        if node["version"] != state["version"]:
            older = " (it takes this version at the next full `shipway down` and `up`)"
        console.print(
            f"  [bold]{'node':<10}[/]{'running':<10}pid {node['pid']}, serving port "
            f"{node['port']}, version {node['version']}{older}"
        )
    else:
        console.print(f"  [bold]{'node':<10}[/][yellow]{'stopped':<10}[/]apps are not served")
    sandbox_network(health.get("sandbox_network") or state.get("sandbox_network"))
