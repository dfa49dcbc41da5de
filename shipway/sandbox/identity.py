"""Who a sandbox runs as: a host uid of its own from a range when shipway is root, else shipway's.

A slot is leased with an flock on its lock file in LOCK_DIR, so two shipway processes on one
machine never hand out the same uid; a lock file left non-empty by a holder that died marks
the slot dirty, and whatever still runs under its uid is killed before reuse.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from shipway.sandbox.spec import SandboxError

#: Sandbox slot N runs as uid and gid BASE_UID + N. No user, and no subuid range of
#: /etc/subuid, may own any of these ids.
BASE_UID = 200_000
SLOTS = 1024
LOCK_DIR = Path("/run/shipway/sandbox-slots")


@dataclass(frozen=True)
class Identity:
    """The host uid and gid a sandbox runs as; SLOT is None when shipway is not root."""

    uid: int
    gid: int
    slot: int | None = None

    @property
    def switched(self) -> bool:
        """Whether spawning must drop from root to this identity."""
        return self.slot is not None


class _Slots:
    """Leases of sandbox slots: in-process bookkeeping plus one flock per slot."""

    def __init__(self) -> None:
        self._held: dict[int, int] = {}
        self._lock = threading.Lock()

    def acquire(self) -> tuple[int, bool]:
        """A free slot and whether its previous holder died without releasing it."""
        LOCK_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._lock:
            for slot in range(SLOTS):
                if slot in self._held:
                    continue
                fd = os.open(
                    LOCK_DIR / f"{slot}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
                )
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                dirty = os.fstat(fd).st_size > 0
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
                self._held[slot] = fd
                return slot, dirty
        raise SandboxError(f"all {SLOTS} sandbox slots are in use")

    def release(self, slot: int) -> None:
        with self._lock:
            fd = self._held.pop(slot)
        os.ftruncate(fd, 0)
        os.close(fd)


_slots = _Slots()


@contextlib.contextmanager
def lease() -> Iterator[Identity]:
    """The identity for one sandbox run: a leased slot uid as root, the current user otherwise."""
    if os.geteuid() != 0:
        yield Identity(os.getuid(), os.getgid())
        return
    slot, dirty = _slots.acquire()
    try:
        ident = Identity(BASE_UID + slot, BASE_UID + slot, slot)
        if dirty:
            kill_user(ident.uid)
        yield ident
    finally:
        _slots.release(slot)


def hand_over(root: Path, uid: int, gid: int) -> None:
    """Give a tree to the sandbox user, never following a symlink an earlier run may have left."""
    _own(str(root), None, uid, gid)
    for _, dirnames, filenames, dir_fd in os.fwalk(root, follow_symlinks=False):
        for name in dirnames + filenames:
            _own(name, dir_fd, uid, gid)


def _own(name: str, dir_fd: int | None, uid: int, gid: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if st.st_uid != uid or st.st_gid != gid:
            os.chown(name, uid, gid, dir_fd=dir_fd, follow_symlinks=False)


def tasks_of(uid: int) -> dict[int, int]:
    """pid → thread count of every live (not zombie) process whose real uid is UID."""
    found: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status", "rb") as f:
                status = f.read()
        except OSError:
            continue
        fields = dict(line.split(b":", 1) for line in status.splitlines() if b":" in line)
        if fields.get(b"State", b"Z").split()[0] == b"Z":
            continue
        if int(fields.get(b"Uid", b"-1").split()[0]) == uid:
            found[int(entry.name)] = int(fields.get(b"Threads", b"1"))
    return found


def kill_user(uid: int) -> None:
    """SIGKILL whatever a dead holder of this uid's slot left running."""
    for _ in range(100):
        pids = tasks_of(uid)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)
