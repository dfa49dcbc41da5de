"""The control plane's side of this machine's node: adopt the one running, or start one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from shipway.datadir import DataDir, pid_alive
from shipway.embedded import ports
from shipway.errors import ServiceError, ShipwayError
from shipway.settings import Settings

log = logging.getLogger(__name__)

#: Seconds a new node may take to be ready: connect, then restore every live app's route.
READY_SECONDS = 120.0
#: The node's end is seen at once (a pidfd); its state is read again at least this often.
WATCH_SECONDS = 30.0


async def ensure(
    settings: Settings, data: DataDir, addresses: dict[str, str], listener: socket.socket | None
) -> dict[str, Any]:
    """The running node's state: the one already there if it serves as asked, else a new one
    given LISTENER (the public port, bound by the control plane so that a clash shows before
    anything starts)."""
    running = data.read_node()
    if running is not None:
        differs = _differs(running, settings, addresses)
        if not differs:
            log.info("taking over the node already running (pid %s)", running["pid"])
            return running
        log.warning("replacing the node running (pid %s): %s", running["pid"], differs)
        await asyncio.to_thread(stop, data)
    if listener is None:
        listener = ports.bind_listener(settings.host, settings.port)
    try:
        return await asyncio.to_thread(_spawn, settings, data, addresses, listener)
    finally:
        listener.close()  # the node has its own copy


async def watch(settings: Settings, data: DataDir, addresses: dict[str, str]) -> None:
    """Start the node again whenever it dies while the control plane runs (a crash, the OOM
    killer): its apps come back as after a restart. Runs until cancelled."""
    delay = 1.0
    while True:
        node = data.read_node()
        if node is not None:
            await _until_exit(node["pid"], WATCH_SECONDS)
            delay = 1.0
            continue
        log.error("the node is gone; starting it again")
        try:
            await ensure(settings, data, addresses, None)
        except ShipwayError as e:
            log.error("cannot start the node: %s; trying again in %.0f s", e.message, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


async def _until_exit(pid: int, longest: float) -> None:
    """Until process PID ends, or LONGEST seconds pass; woken by the kernel, not polling."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    loop = asyncio.get_running_loop()
    ended = asyncio.Event()
    loop.add_reader(fd, ended.set)
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ended.wait(), longest)
    finally:
        loop.remove_reader(fd)
        os.close(fd)


def _differs(running: dict[str, Any], settings: Settings, addresses: dict[str, str]) -> str:
    """What the running node does otherwise than asked now; empty when it fits."""
    wanted = {
        "port": settings.port,
        "host": settings.host,
        "base_domain": settings.base_domain,
        "temporal": addresses.get("temporal"),
        "nats": addresses.get("nats"),
    }
    return ", ".join(
        f"{key} {running.get(key)} rather than {value}"
        for key, value in wanted.items()
        if running.get(key) != value
    )


def _spawn(
    settings: Settings, data: DataDir, addresses: dict[str, str], listener: socket.socket
) -> dict[str, Any]:
    env = {
        **os.environ,
        "SHIPWAY_DATA": str(data.root),
        "SHIPWAY_PORT": str(settings.port),
        "SHIPWAY_HOST": settings.host,
        "SHIPWAY_BASE_DOMAIN": settings.base_domain,
        "SHIPWAY_UNSAFE_SHARED_NETWORK": "true" if settings.unsafe_shared_network else "false",
        "SHIPWAY_RELEASE_TIMEOUT": str(settings.release_timeout),
    }
    for key, value in (
        ("SHIPWAY_DATABASE_URL", settings.database_url),
        ("SHIPWAY_NATS_URL", settings.nats_url),
    ):
        if value:
            env[key] = value
    fd = listener.fileno()
    argv = [
        sys.executable,
        "-m",
        "shipway",
        "node",
        "--temporal",
        addresses["temporal"],
        "--nats",
        addresses["nats"],
        "--listen-fd",
        str(fd),
    ]
    data.node_state.unlink(missing_ok=True)
    data.node_log.parent.mkdir(parents=True, exist_ok=True)
    with open(data.node_log, "ab") as out:
        # Its own session: a Ctrl-C meant for `shipway up`, or its death, does not reach it.
        child = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            pass_fds=(fd,),
            start_new_session=True,
        )
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise ServiceError(f"the node exited with code {child.returncode}; see {data.node_log}")
        state = data.read_node()
        if state is not None and state["pid"] == child.pid:
            return state
        time.sleep(0.05)
    child.kill()
    raise ServiceError(f"the node was not ready within {READY_SECONDS:.0f}s; see {data.node_log}")


def stop(data: DataDir, timeout: float = 60.0) -> int | None:
    """Stop the running node and wait until it has exited; its pid, or None if none ran."""
    state = data.read_node()
    if state is None:
        return None
    pid = int(state["pid"])
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return pid
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return pid
        time.sleep(0.05)
    raise ServiceError(f"the node (pid {pid}) did not stop within {timeout:.0f}s")
