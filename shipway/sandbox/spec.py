"""What a sandboxed command is given (spec, limits, mounts) and what it comes back with."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from pathlib import Path

from shipway.errors import ShipwayError

#: Where the workspace appears inside the sandbox; it is also the working directory.
WORKSPACE = "/workspace"

#: bubblewrap's own processes in a sandbox (the one shipway starts, and its init at pid 1),
#: which the processes limit does not count against the command.
BWRAP_PROCESSES = 2

#: System directories no workspace or writable mount may be, contain or sit in: as root,
#: shipway hands those over to the sandbox uid.
_SYSTEM = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/proc", "/sbin", "/sys", "/usr")

#: Places a spec mount may not cover: the sandbox's own /proc and /dev, and the root itself.
_RESERVED = ("/proc", "/dev")


class SandboxError(ShipwayError):
    """Raised when a sandbox cannot be set up; a failing command is a result, not this error."""

    code = "sandbox_error"


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandbox; the defaults are the configuration defaults."""

    memory_mb: int = 2048
    processes: int = 512
    file_size_mb: int = 2048
    #: math.inf for a command that runs until stopped (an app instance).
    wall_seconds: float = 900.0

    def __post_init__(self) -> None:
        for name in ("memory_mb", "processes", "file_size_mb", "wall_seconds"):
            if getattr(self, name) <= 0:
                raise SandboxError(f"sandbox limit {name} must be positive")


@dataclass(frozen=True)
class Mount:
    """A host file or directory shown inside the sandbox, read-only unless WRITABLE."""

    source: Path
    target: str
    writable: bool = False


@dataclass
class SandboxSpec:
    """One command to run isolated: what it sees, what it may write, how much it may use."""

    argv: list[str]
    workspace: Path
    mounts: list[Mount] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    network: bool = True
    limits: Limits = Limits()
    #: Mount toolchain_mounts() (the host's /usr and a curated /etc) read-only.
    toolchain: bool = True
    hostname: str = "sandbox"
    #: The working directory: the workspace unless a mount is meant to be it (an app instance
    #: runs in its read-only release at /app).
    cwd: str = WORKSPACE
    #: Share the host's network instead of having one of its own (app instances when shipway
    #: is not root, since only root can reach into a sandbox's network to connect to it).
    host_network: bool = False


@dataclass(frozen=True)
class Started:
    """A running sandbox: its pid 1 on the host and its network namespace (a /proc path)."""

    pid1: int
    net_namespace: str


@dataclass(frozen=True)
class SandboxResult:
    """How the command ended: REASON is None only for a clean exit 0."""

    exit_code: int
    reason: str | None
    duration: float


def validate(spec: SandboxSpec) -> None:
    """Refuse a spec bubblewrap would misread or that would cover the sandbox's own plumbing."""
    if not spec.argv or not spec.argv[0]:
        raise SandboxError("sandbox argv must name a command")
    if any("\0" in arg for arg in spec.argv):
        raise SandboxError("sandbox argv must not contain NUL characters")
    for key, value in spec.env.items():
        if not key or "=" in key or "\0" in key or "\0" in value:
            raise SandboxError(f"bad sandbox environment variable name or value: {key!r}")
    if spec.host_network and not spec.network:
        raise SandboxError("a sandbox cannot share the host's network and have none")
    if spec.cwd != WORKSPACE and spec.cwd not in {m.target for m in spec.mounts}:
        raise SandboxError(f"sandbox cwd {spec.cwd!r} is neither the workspace nor a mount")
    if not spec.workspace.is_dir():
        raise SandboxError(f"sandbox workspace {spec.workspace} is not a directory")
    _check_writable(spec.workspace)
    for mount in spec.mounts:
        _check_target(mount.target)
        if not mount.source.exists():
            raise SandboxError(f"sandbox mount source {mount.source} does not exist")
        if mount.writable:
            _check_writable(mount.source)


def _check_writable(path: Path) -> None:
    resolved = path.resolve()
    for system in map(Path, _SYSTEM):
        if resolved == system or resolved in system.parents or system in resolved.parents:
            raise SandboxError(f"{path} is a system directory; a sandbox may not write there")


def _check_target(target: str) -> None:
    if not target.startswith("/") or posixpath.normpath(target) != target or target == "/":
        raise SandboxError(f"sandbox mount target {target!r} must be a normalized absolute path")
    if target == WORKSPACE or any(
        target == place or target.startswith(place + "/") for place in _RESERVED
    ):
        raise SandboxError(f"sandbox mount target {target!r} is reserved")
