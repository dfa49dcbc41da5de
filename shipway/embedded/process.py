"""One supervised child process: started, watched, restarted with backoff, stopped."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from shipway import children
from shipway.embedded import ports
from shipway.errors import PortInUse, ServiceError

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask the kernel to SIGTERM the child if shipway itself dies, so nothing is orphaned."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def go_runtime() -> dict[str, str]:
    """The environment of an embedded Go server (Temporal, NATS): it runs Go code on half the
    cores this process may use, at least one. The rest stay for builds and apps, and an
    idle Go runtime with fewer threads to wake spins less: at rest on 2 cores, 16-19 % less
    CPU for each server."""
    return {"GOMAXPROCS": str(max(1, len(os.sched_getaffinity(0)) // 2))}


class ProcessState(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    STOPPED = "stopped"


@dataclass
class ProcessSpec:
    """What to run and how to tell it is ready to serve."""

    name: str
    argv: list[str]
    ready_port: int
    log_path: Path
    cwd: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    ready_timeout: float = 60.0


class SupervisedProcess:
    """Keeps one server process alive until stop() is called."""

    backoff_start = 0.5
    backoff_max = 30.0
    stable_after = 60.0

    def __init__(self, spec: ProcessSpec) -> None:
        self.spec = spec
        self.state = ProcessState.STOPPED
        self.restarts = 0
        self.last_exit: int | None = None
        self._proc: children.Child | None = None
        self._watch: asyncio.Task[None] | None = None
        self._stopping = False
        self._ready = asyncio.Event()
        self._log_start = 0  # where this run's output begins in the log

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc and self._proc.returncode is None else None

    @property
    def healthy(self) -> bool:
        return self.state is ProcessState.RUNNING

    async def start(self) -> None:
        """Spawn the process and wait until it listens on its port itself."""
        self._stopping = False
        await self._spawn()
        try:
            await self._wait_ready()
        except ServiceError:
            await self._terminate()
            self.state = ProcessState.STOPPED
            raise
        self._watch = asyncio.create_task(self._supervise(), name=f"supervise-{self.spec.name}")

    async def _spawn(self) -> None:
        self.state = ProcessState.STARTING
        self._ready.clear()
        self.spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.spec.log_path, "ab") as out:
            self._log_start = out.tell()
            self._proc = await children.start(
                *self.spec.argv,
                stdin=children.DEVNULL,
                stdout=out,
                stderr=children.STDOUT,
                cwd=self.spec.cwd,
                env={**os.environ, **self.spec.env},
                preexec_fn=die_with_parent,
                start_new_session=True,
            )
        log.info("%s started (pid %s)", self.spec.name, self._proc.pid)

    async def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.spec.ready_timeout
        while time.monotonic() < deadline:
            if self._proc.returncode is not None:
                last = self._last_words()
                error = PortInUse if "address already in use" in last else ServiceError
                raise error(
                    f"{self.spec.name} exited with code {self._proc.returncode} while starting"
                    f"{': ' + last if last else ''}; see {self.spec.log_path}"
                )
            if not ports.listening(self._proc.pid, self.spec.ready_port):
                await asyncio.sleep(0.05)
                continue
            self.state = ProcessState.RUNNING
            self._ready.set()
            return
        raise ServiceError(
            f"{self.spec.name} did not open port {self.spec.ready_port} within "
            f"{self.spec.ready_timeout:.0f}s; see {self.spec.log_path}"
        )

    def _last_words(self) -> str:
        """The last line this run of the process wrote to its log."""
        try:
            with open(self.spec.log_path, "rb") as f:
                f.seek(self._log_start)
                lines = f.read()[-4096:].decode(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1].strip() if lines else ""

    async def _supervise(self) -> None:
        """Wait for the process to exit; unless stopping, restart it with exponential backoff."""
        delay = self.backoff_start
        while not self._stopping:
            assert self._proc is not None
            started = time.monotonic()
            code = await self._proc.wait()
            if self._stopping:
                break
            self.last_exit = code
            self.state = ProcessState.RESTARTING
            self._ready.clear()
            if time.monotonic() - started > self.stable_after:
                delay = self.backoff_start
            log.warning("%s exited with code %s; restarting in %.1fs", self.spec.name, code, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff_max)
            if self._stopping:
                break
            try:
                await self._spawn()
                await self._wait_ready()
                self.restarts += 1
            except (OSError, ServiceError) as e:
                log.error("%s failed to restart: %s", self.spec.name, e)
                await self._terminate()

    async def wait_ready(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after GRACE seconds; returns once the process is gone."""
        self._stopping = True
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        await self._terminate(grace)
        self.state = ProcessState.STOPPED

    async def _terminate(self, grace: float = 10.0) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


def stop_leftovers(markers: list[str], grace: float = 15.0) -> list[int]:
    """Stop servers that a hard-killed earlier run left exiting, so the new run does not race
    them for ports and files: any process whose command line holds one of MARKERS (the
    arguments naming this data dir's Temporal database and NATS store). Returns their PIDs."""
    mine = os.getpid()
    found = [pid for pid in _pids() if pid != mine and _cmdline_has(pid, markers)]
    for pid in found:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_cmdline_has(p, markers) for p in found):
        time.sleep(0.05)
    for pid in found:
        if _cmdline_has(pid, markers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return found


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _cmdline_has(pid: int, markers: list[str]) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().split(b"\0")
    except OSError:
        return False
    return any(marker.encode() in args for marker in markers)
