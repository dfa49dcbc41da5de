"""What the forked child does before it execs bubblewrap.

It forks once more. The parent stays behind as the sandbox's reaper: a child subreaper that
execs the small program built from reaper.c, which waits until every process below it is
gone, then exits with bubblewrap's status. bubblewrap exits as soon as the command has,
leaving the sandbox's pid 1 to die and be reaped by its nearest subreaper; without this one
that would be the host's init, which may never reap it.
The grandchild joins the cgroups, sets the rlimits, stages the mount sources, drops from
root to the sandbox uid for good, and returns to exec bubblewrap.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
from dataclasses import dataclass
from typing import NoReturn

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]

_CLONE_NEWNS = 0x00020000
_MS_NOSUID = 0x2
_MS_NODEV = 0x4
_MS_BIND = 0x1000
_MS_REC = 0x4000
_MS_PRIVATE = 0x40000
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True)
class Staging:
    """Host paths bound under a private tmpfs at ROOT, in a mount namespace of the child's own.

    The sandbox uid may not be able to reach a source (shipway's data dir sits under /root,
    mode 0700), so root binds each one to a path bubblewrap can reach; nobody else sees them.
    """

    root: str
    #: (host path, staged path, whether it is a directory)
    binds: tuple[tuple[str, str, bool], ...]


@dataclass(frozen=True)
class ChildSetup:
    """The preexec_fn of bubblewrap's process; every step is skipped when its field is empty."""

    error_fd: int
    #: The built reaper program (reaper.program()), which the parent left behind execs.
    reaper: str
    cgroup_procs: tuple[str, ...] = ()
    rlimits: tuple[tuple[int, int], ...] = ()
    staging: Staging | None = None
    uid: int | None = None
    gid: int | None = None

    def __call__(self) -> None:  # pragma: no cover - runs in the child between fork and exec
        try:
            bwrap = os.fork()
            if bwrap:
                _reap(self.reaper, bwrap)
            self._setup()
        except BaseException as e:
            os.write(self.error_fd, str(e).encode())
            raise
        finally:
            os.close(self.error_fd)

    def _setup(self) -> None:  # pragma: no cover - runs in the child between fork and exec
        pid = str(os.getpid()).encode()
        for path in self.cgroup_procs:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, pid)
            finally:
                os.close(fd)
        for limit, value in self.rlimits:
            resource.setrlimit(limit, (value, value))
        if self.staging is not None:
            _stage(self.staging)
        drop_privileges(self.uid, self.gid)


def drop_privileges(uid: int | None, gid: int | None) -> None:  # pragma: no cover - in a child
    """Become UID and GID for good (when given), and die with shipway: the parent-death signal
    is set after the switch, which clears it."""
    if uid is not None and gid is not None:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _reap(program: str, bwrap: int) -> NoReturn:  # pragma: no cover - runs in the reaper
    """Become the sandbox's supervisor: a child subreaper that dies with shipway, holding no
    end of any pipe, which execs PROGRAM at once rather than stay a copy of shipway."""
    try:
        _libc.prctl(_PR_SET_CHILD_SUBREAPER, 1)
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        # shipway's own handlers are reset by the exec, but what it ignores stays ignored: a
        # SIGTERM must end the reaper (and with it, through parent-death signals, the sandbox).
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(ValueError, OSError):
                signal.signal(signum, signal.SIG_DFL)
        # Hold no end of the output pipe, nor subprocess's error pipe: only the sandbox may.
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.closerange(3, _fd_limit())
        os.execv(program, [program, str(bwrap)])
    finally:
        os._exit(255)


def _fd_limit() -> int:  # pragma: no cover - runs in the reaper
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return 1 << 20 if soft == resource.RLIM_INFINITY else soft


def _stage(staging: Staging) -> None:  # pragma: no cover - runs in the child
    _check(_libc.unshare(_CLONE_NEWNS), "unshare the mount namespace")
    _check(_libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None), "make / private")
    root = staging.root.encode()
    _check(
        _libc.mount(b"tmpfs", root, b"tmpfs", _MS_NOSUID | _MS_NODEV, b"mode=0755,size=1m"),
        f"mount a tmpfs on {staging.root}",
    )
    for source, staged, is_dir in staging.binds:
        if is_dir:
            os.mkdir(staged, 0o755)
        else:
            os.close(os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        flags = _MS_BIND | _MS_REC
        _check(_libc.mount(source.encode(), staged.encode(), None, flags, None), f"bind {source}")


def _check(result: int, what: str) -> None:  # pragma: no cover - runs in the child
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"cannot {what}: {os.strerror(errno)}")
