"""The layout of the data dir, and the small files through which the CLI finds a running server."""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO


@dataclass(frozen=True)
class DataDir:
    root: Path

    @property
    def admin_token(self) -> Path:
        return self.root / "admin-token"

    @property
    def pid_file(self) -> Path:
        return self.root / "shipway.pid"

    @property
    def log_file(self) -> Path:
        return self.root / "shipway.log"

    @property
    def state_file(self) -> Path:
        return self.root / "run" / "state.json"

    @property
    def ports_file(self) -> Path:
        return self.root / "run" / "ports.json"

    @property
    def lock_file(self) -> Path:
        return self.root / "run" / "lock"

    @property
    def node_lock(self) -> Path:
        """Locked while this data dir's node (the data plane) runs."""
        return self.root / "run" / "node.lock"

    @property
    def node_state(self) -> Path:
        """What the running node wrote once ready: its pid, version and port."""
        return self.root / "run" / "node.json"

    @property
    def keep_node(self) -> Path:
        """Present while the control plane stops for an upgrade: the node goes on serving."""
        return self.root / "run" / "keep-node"

    @property
    def node_log(self) -> Path:
        return self.root / "logs" / "node.log"

    def read_node(self) -> dict[str, Any] | None:
        """The running node's state, or None when none runs from this dir."""
        return _running(self.node_state)

    def create(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        (self.root / "run").mkdir(exist_ok=True)
        (self.root / "logs").mkdir(exist_ok=True)

    def read_state(self) -> dict[str, Any] | None:
        """What the running server wrote at start, or None when none runs from this dir."""
        return _running(self.state_file)

    def write_state(self, state: dict[str, Any]) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_file)

    def read_pid(self) -> int | None:
        return pid_in(self.pid_file)

    def read_admin_token(self) -> str | None:
        try:
            return self.admin_token.read_text().strip() or None
        except OSError:
            return None

    def clear_run_files(self) -> None:
        for path in (self.state_file, self.pid_file):
            path.unlink(missing_ok=True)


def hold(path: Path) -> TextIO | None:
    """An exclusive lock on PATH, held while the returned file stays open; None when another
    process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # noqa: SIM115 - held open by the caller for its whole life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def _running(path: Path) -> dict[str, Any] | None:
    """The state a process wrote to PATH, or None when that process no longer runs."""
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    pid = state.get("pid")
    if not isinstance(pid, int) or not pid_alive(pid):
        return None
    return state


def write_private(path: Path, text: str) -> None:
    """Write TEXT to PATH readable by its owner only (mode 0600), never briefly wider."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def pid_in(path: Path) -> int | None:
    """The pid on the first line of the pid file PATH, while that process runs; else None."""
    try:
        pid = int(path.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def pid_alive(pid: int) -> bool:
    """True while PID runs; a zombie (killed, not yet reaped by its parent) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False
