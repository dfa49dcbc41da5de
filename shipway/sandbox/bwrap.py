"""The bubblewrap command line for a spec: which namespaces are new, what is mounted where."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from shipway.sandbox.spec import WORKSPACE, SandboxSpec
from shipway.sandbox.toolchain import root_symlinks, toolchain_mounts

#: The environment every command starts from; the spec's env is laid over it (and bubblewrap
#: sets PWD).
DEFAULT_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}


@dataclass(frozen=True)
class Sources:
    """Where bubblewrap finds what it mounts: host paths (staged ones when root) and fds."""

    workspace: str
    #: One source path per spec mount, in the spec's order.
    mounts: tuple[str, ...]
    passwd_fd: int
    group_fd: int
    status_fd: int
    #: With a network of its own (see network.py): the fd it waits on before the command runs,
    #: and its resolv.conf.
    block_fd: int | None = None
    resolv_fd: int | None = None


def arguments(spec: SandboxSpec, sources: Sources) -> list[str]:
    """bubblewrap's options, passed via --args so the environment never shows in host ps."""
    args = [
        "--unshare-user",
        "--disable-userns",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup",
        "--hostname",
        spec.hostname,
        "--die-with-parent",
        "--new-session",
        "--json-status-fd",
        str(sources.status_fd),
    ]
    if not spec.host_network and (not spec.network or sources.block_fd is not None):
        args.append("--unshare-net")
    if sources.block_fd is not None:
        args += ["--block-fd", str(sources.block_fd)]
    if spec.toolchain:
        for link, path in root_symlinks():
            args += ["--symlink", link, path]
        mounts = toolchain_mounts()
        # Directories bubblewrap would make for the mounts in them (/etc, /etc/ssl), as on a host.
        for parent in sorted({p for m in mounts for p in _parents(m.target)}):
            args += ["--perms", "0755", "--dir", parent]
        for mount in mounts:
            if mount.target != "/etc/resolv.conf" or sources.resolv_fd is None:
                args += ["--ro-bind", str(mount.source), mount.target]
    data = [(sources.passwd_fd, "/etc/passwd"), (sources.group_fd, "/etc/group")]
    if sources.resolv_fd is not None:
        data.append((sources.resolv_fd, "/etc/resolv.conf"))
    for fd, path in data:
        args += ["--perms", "0644", "--ro-bind-data", str(fd), path]
    tmp_size = str(spec.limits.memory_mb * 2**20)
    args += ["--dev", "/dev", "--proc", "/proc"]
    args += ["--size", tmp_size, "--tmpfs", "/tmp", "--size", tmp_size, "--tmpfs", "/dev/shm"]
    args += ["--bind", sources.workspace, WORKSPACE]
    for mount, source in zip(spec.mounts, sources.mounts, strict=True):
        args += ["--bind" if mount.writable else "--ro-bind", source, mount.target]
    # Last, so nothing but /tmp, /dev/shm, the workspace and writable mounts stays writable.
    args += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", spec.cwd, "--clearenv"]
    for key, value in {**DEFAULT_ENV, **spec.env}.items():
        args += ["--setenv", key, value]
    return args


def _parents(target: str) -> list[str]:
    parents = []
    while (target := posixpath.dirname(target)) != "/":
        parents.append(target)
    return parents
