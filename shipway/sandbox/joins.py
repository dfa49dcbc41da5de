"""Quick cgroup joins for sandboxes about to start.

On cgroup v1, every write to a cgroup.procs file takes the kernel's cgroup threadgroup lock
for writing, and taking it first waits for an RCU grace period (7-15 ms on a two-core virtual
machine) unless another write took it moments before (within about a grace period). A
sandbox's supervisor joins its memory and pids cgroups as its first step, so an instance start
waits for one grace period on its way.

`expect_sandboxes` pays that wait ahead, while the caller does the rest of its preparation: a
thread writes this process's own pid to the cgroup it is in already, which moves nothing, and
writes it again every few ms so that the supervisors' writes, when they come, find the lock
ready. Each write holds the lock for microseconds. Where shipway makes no sandbox cgroups (not
root, no v1 controllers), it does nothing.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from shipway.sandbox import cgroups

log = logging.getLogger(__name__)

#: Seconds between the writes that keep joins quick: well within a grace period.
REWRITE_SECONDS = 0.003


class _QuickJoins:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until = 0.0
        self._running = False
        #: Set once a write failed: this process cannot keep joins quick.
        self._failed = False
        #: Writes made so far.
        self.writes = 0

    @property
    def running(self) -> bool:
        """Whether its thread is keeping joins quick now."""
        with self._lock:
            return self._running

    def extend(self, seconds: float) -> None:
        where = cgroups.hierarchy()
        if where is None:
            return
        with self._lock:
            self._until = max(self._until, time.monotonic() + seconds)
            if self._running or self._failed:
                return
            self._running = True
        procs = where.memory.parent / "cgroup.procs"
        threading.Thread(
            target=self._rewrite, args=(procs,), name="quick-joins", daemon=True
        ).start()

    def _rewrite(self, procs: os.PathLike[str]) -> None:
        try:
            fd = os.open(procs, os.O_WRONLY | os.O_CLOEXEC)
        except OSError as e:
            self._fail(e)
            return
        try:
            while self._due():
                # "0": the writing process itself, into the cgroup it is in.
                os.write(fd, b"0")
                self.writes += 1
                time.sleep(REWRITE_SECONDS)
        except OSError as e:
            self._fail(e)
        finally:
            os.close(fd)

    def _due(self) -> bool:
        """Whether to write again; when not, the thread ends and a later extend starts one."""
        with self._lock:
            if time.monotonic() < self._until:
                return True
            self._running = False
            return False

    def _fail(self, error: OSError) -> None:
        log.info("sandbox cgroup joins wait for the kernel as they come: %s", error)
        with self._lock:
            self._running = False
            self._failed = True


_joins = _QuickJoins()


def expect_sandboxes(within: float = 0.25) -> None:
    """Sandboxes will start within WITHIN seconds: have their supervisors join their cgroups
    without waiting for an RCU grace period (see the module's note). Returns at once."""
    _joins.extend(within)
