"""Add-on server processes: spawned in a session of their own, so that they outlive the control
plane as the apps using them do; found again by pid, and stopped on `shipway down`."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from shipway.datadir import pid_alive
from shipway.errors import ServiceError

#: Seconds a server may take to answer after it was spawned.
READY_SECONDS = 60.0

_children: dict[int, subprocess.Popen[bytes]] = {}


def spawn(argv: list[str], log_path: Path) -> int:
    """Start ARGV detached (its own session, output appended to LOG_PATH); its pid."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as out:
        child = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _children[child.pid] = child
    return child.pid


def reap() -> None:
    """Collect the exit status of spawned servers that ended, so none lingers as a zombie."""
    for pid, child in list(_children.items()):
        if child.poll() is not None:
            del _children[pid]


async def until_ready(
    name: str, pid: int, answers: Callable[[], Awaitable[bool]], log_path: Path
) -> None:
    """Wait until ANSWERS says the server answers; ServiceError if it exits or never does."""
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        reap()
        if not pid_alive(pid):
            raise ServiceError(f"the {name} server exited while starting; see {log_path}")
        if await answers():
            return
        await asyncio.sleep(0.05)
    raise ServiceError(
        f"the {name} server did not answer within {READY_SECONDS:.0f} s; see {log_path}"
    )


def stop(pid: int | None, sig: signal.Signals = signal.SIGTERM, timeout: float = 30.0) -> None:
    """Send SIG to PID and wait until it is gone (SIGKILL after TIMEOUT)."""
    if pid is None or not pid_alive(pid):
        return
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reap()
        if not pid_alive(pid):
            return
        time.sleep(0.02)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
