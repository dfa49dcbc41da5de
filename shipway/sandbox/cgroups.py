"""A cgroup (v1 memory and pids controllers) per sandbox: exact limits, and the counters that
say which limit a sandbox hit.

Sandbox cgroups are made under shipway's own cgroup in each hierarchy, in a "shipway-sandbox"
child, so whatever limits and accounting apply to shipway also cover its sandboxes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from shipway.sandbox.spec import BWRAP_PROCESSES, Limits, SandboxError

log = logging.getLogger(__name__)

PARENT = "shipway-sandbox"
_CONTROLLERS = ("memory", "pids")


@dataclass(frozen=True)
class Hierarchy:
    """The directories sandbox cgroups are made in, one per controller."""

    memory: Path
    pids: Path
    #: Where each hierarchy is mounted.
    memory_root: Path = Path("/sys/fs/cgroup/memory")
    pids_root: Path = Path("/sys/fs/cgroup/pids")

    @property
    def relative(self) -> str:
        """The memory directory as a path from its hierarchy's root: what podman's
        --cgroup-parent names, for every hierarchy at once."""
        return "/" + str(self.memory.relative_to(self.memory_root))

    def aligned(self) -> Hierarchy:
        """The same, with the pids directory at the memory one's path in its own hierarchy,
        where podman makes a container's cgroups below --cgroup-parent."""
        pids = self.pids_root / self.relative.lstrip("/")
        return Hierarchy(self.memory, pids, self.memory_root, self.pids_root)


@cache
def hierarchy() -> Hierarchy | None:
    """Where to make sandbox cgroups, or None when shipway cannot (not root, no v1 controllers)."""
    if os.geteuid() != 0:
        return None
    mounts: dict[str, Path] = {}
    with open("/proc/self/mounts") as f:
        for line in f:
            _, mountpoint, fstype, options, *_ = line.split()
            if fstype == "cgroup":
                for option in options.split(","):
                    if option in _CONTROLLERS:
                        mounts[option] = Path(mountpoint)
    own: dict[str, str] = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for controller in controllers.split(","):
                own[controller] = path
    dirs: dict[str, Path] = {}
    for controller in _CONTROLLERS:
        if controller not in mounts or controller not in own:
            return None
        base = mounts[controller] / own[controller].lstrip("/")
        if not os.access(base, os.W_OK):
            return None
        dirs[controller] = base / PARENT
    return Hierarchy(dirs["memory"], dirs["pids"], mounts["memory"], mounts["pids"])


@dataclass(frozen=True)
class Cgroup:
    """One sandbox's memory and pids cgroups."""

    memory: Path
    pids: Path

    @classmethod
    def create(cls, where: Hierarchy, name: str, limits: Limits) -> Cgroup:
        """Make (or, if a dead run left it behind, remake) the cgroup and set its limits."""
        group = cls(where.memory / name, where.pids / name)
        if group.memory.exists() or group.pids.exists():
            group.clear()
        for path in (group.memory, group.pids):
            path.mkdir(parents=True)
        limit = str(limits.memory_mb * 2**20)
        _write(group.memory / "memory.limit_in_bytes", limit)
        # Swap counts against the same limit where swap accounting exists; else avoid swapping.
        if not _write(group.memory / "memory.memsw.limit_in_bytes", limit, optional=True):
            _write(group.memory / "memory.swappiness", "0", optional=True)
        _write(group.pids / "pids.max", str(limits.processes + BWRAP_PROCESSES))
        return group

    @property
    def procs_files(self) -> tuple[str, str]:
        """The files a process writes its pid to, to join both cgroups."""
        return str(self.memory / "cgroup.procs"), str(self.pids / "cgroup.procs")

    def oom_kills(self) -> int:
        """How many processes the kernel killed for going over the memory limit."""
        return _counter(self.memory / "memory.oom_control", "oom_kill")

    def reached_memory_limit(self) -> bool:
        """Whether its memory use (with swap, where counted) ever peaked at its limit."""
        for kind in ("memory", "memory.memsw"):
            with contextlib.suppress(OSError, ValueError):
                peak = int((self.memory / f"{kind}.max_usage_in_bytes").read_text())
                if peak >= int((self.memory / f"{kind}.limit_in_bytes").read_text()):
                    return True
        return False

    def process_limit_hits(self) -> int:
        """How many forks failed because the processes limit was reached."""
        return _counter(self.pids / "pids.events", "max")

    def reached_process_limit(self) -> bool:
        """Whether the processes in it ever peaked at its limit."""
        try:
            peak = int((self.pids / "pids.peak").read_text())
            return peak >= int((self.pids / "pids.max").read_text())
        except (OSError, ValueError):
            return False

    def members(self) -> list[int]:
        """The processes in it, or in a cgroup below it (podman makes a container's there)."""
        pids: set[int] = set()
        for root in (self.memory, self.pids):
            for folder, _, _ in os.walk(root):
                with contextlib.suppress(FileNotFoundError):
                    pids.update(int(p) for p in (Path(folder) / "cgroup.procs").read_text().split())
        return sorted(pids)

    def kill(self) -> None:
        """SIGKILL every process in the cgroup."""
        for pid in self.members():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def clear(self) -> None:
        """Kill what a dead run left in the cgroup and remove it: rare, so a blocking wait."""
        for _ in range(500):
            self.kill()
            if self.remove():
                return
            time.sleep(0.01)
        raise SandboxError(f"cannot clear the stale sandbox cgroup {self.pids}")

    async def dispose(self, within: float) -> None:
        """Remove it, killing what is left in it, for up to WITHIN seconds."""
        for _ in range(int(within / 0.01)):
            if self.remove():
                return
            self.kill()
            await asyncio.sleep(0.01)
        log.warning("sandbox cgroup %s still has processes; left in place", self.pids)

    def remove(self) -> bool:
        """Delete both cgroups, with any made below them; False while a process is still in
        them."""
        for root in (self.memory, self.pids):
            for folder, _, _ in sorted(os.walk(root), key=lambda f: -len(f[0])):
                try:
                    os.rmdir(folder)
                except FileNotFoundError:
                    pass
                except OSError:
                    return False
        return True


def _write(path: Path, value: str, optional: bool = False) -> bool:
    try:
        path.write_text(value)
    except OSError:
        if optional:
            return False
        raise
    return True


def _counter(path: Path, key: str) -> int:
    try:
        text = path.read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            return int(value)
    return 0
