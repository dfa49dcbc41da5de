"""One running process of a release: sandboxed, health-checked, restarted when it crashes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipway import metrics, tracing
from shipway.errors import ShipwayError
from shipway.oci import container as containers
from shipway.oci.container import ContainerSpec
from shipway.oci.podman import Podman
from shipway.router import Upstream
from shipway.runtime import health, netns
from shipway.runtime.lifecycle import INSTANCES, InstanceState
from shipway.sandbox import Limits, Mount, SandboxError, SandboxResult, SandboxSpec, Started
from shipway.sandbox import run as run_sandbox

log = logging.getLogger(__name__)

#: Where the release's app layer is mounted and the command runs.
APP_DIR = "/app"
#: Lines of output kept to explain a failure.
TAIL_LINES = 20
#: Seconds between health checks while an instance starts: often in its first seconds, when
#: most apps come up and each check's wait is added to the deploy, then less often.
CHECK_EVERY = 0.005
CHECK_LATER_EVERY = 0.02
CHECK_OFTEN_SECONDS = 2.0
#: Backoff between restarts of a crashing instance: first delay and cap, in seconds.
FIRST_BACKOFF = 1.0
MAX_BACKOFF = 60.0
#: An instance that stayed up this long before crashing starts again from the first delay.
STABLE_SECONDS = 60.0


class InstanceFailed(ShipwayError):
    """Raised when an instance does not become healthy; the message says why, with its output."""

    code = "instance_failed"


@dataclass(frozen=True)
class InstanceSpec:
    """What one instance runs and how it is checked."""

    name: str  # "web.1"
    command: str
    env: dict[str, str]
    mounts: tuple[Mount, ...]
    scratch: Path
    limits: Limits
    #: The port its server listens on; None for processes without one (workers).
    port: int | None
    #: In a network namespace of its own (reached through netns), else on the host's.
    isolated: bool
    health_path: str = "/"
    health_timeout: float = 30.0
    health_host: str = "localhost"
    hostname: str = "app"
    extra: dict[str, str] = field(default_factory=dict)
    #: An image release's image (its digest), run by podman in place of a sandbox, with the
    #: release's layers none.
    image: str | None = None
    podman: Podman | None = None

    def sandbox(self) -> SandboxSpec:
        """Its sandbox: the release read-only with the command running in /app, a network of
        its own (or the host's where instances share it)."""
        return SandboxSpec(
            argv=["/bin/sh", "-c", self.command],
            workspace=self.scratch,
            mounts=list(self.mounts),
            env=self.env,
            limits=self.limits,
            network=True,
            host_network=not self.isolated,
            cwd=APP_DIR,
            hostname=self.hostname,
        )

    def container(self) -> ContainerSpec:
        """Its container, for an image release: the same contract as its sandbox, with the
        image's own files where a sandbox has the host's toolchain and the release's layers."""
        assert self.image is not None
        return ContainerSpec(
            name=f"{self.hostname}-{self.scratch.name}",
            image=self.image,
            command=self.command,
            env=self.env,
            mounts=self.mounts,
            limits=self.limits,
            scratch=self.scratch,
            hostname=self.hostname,
            isolated=self.isolated,
        )


async def execute(
    spec: InstanceSpec,
    on_line: Callable[[str], None],
    on_started: Callable[[Started], None] | None = None,
) -> SandboxResult:
    """Run SPEC once, to its end: in a sandbox, or in a container for an image release."""
    if spec.image is None:
        return await run_sandbox(spec.sandbox(), on_line, on_started)
    assert spec.podman is not None
    return await containers.run(spec.podman, spec.container(), on_line, on_started)


class InstanceUpstream(Upstream):
    """The router's way to an instance: its port, inside its own network namespace if it has one."""

    def __init__(self, name: str, port: int, isolated: bool) -> None:
        super().__init__(name)
        self.port = port
        self.isolated = isolated
        self.netns_fd: int | None = None
        self.doorway: netns.Doorway | None = None

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.isolated and self.netns_fd is None:
            raise ConnectionRefusedError(f"{self.name} is not running")
        if self.doorway is not None:
            return await self.doorway.connect(self.port)
        return await netns.connect(self.netns_fd, self.port)

    def attach(self, started: Started | None) -> None:
        """Point at the namespace of a (re)started sandbox, or at none once it has ended."""
        if self.doorway is not None:
            self.doorway.close()
            self.doorway = None
        if self.netns_fd is not None:
            os.close(self.netns_fd)
            self.netns_fd = None
        if started is not None and self.isolated:
            self.netns_fd = os.open(started.net_namespace, os.O_RDONLY | os.O_CLOEXEC)
            if not netns.can_enter():
                self.doorway = netns.Doorway(self.netns_fd)


class Instance:
    """Runs SPEC until stopped. `start()` returns once it is healthy the first time; after that
    a crash is logged and the instance started again with exponential backoff."""

    def __init__(
        self,
        spec: InstanceSpec,
        say: Callable[[str], None],
        on_change: Callable[[Instance], None] = lambda _: None,
    ) -> None:
        self.spec = spec
        self.say = say
        self.on_change = on_change
        self.state = InstanceState.STARTING
        self.restarts = 0
        self.started_at: float | None = None
        self.upstream = (
            InstanceUpstream(spec.name, spec.port, spec.isolated) if spec.port is not None else None
        )
        self._tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._task: asyncio.Task[None] | None = None
        self._first: asyncio.Future[None] | None = None
        self._stopping = False
        metrics.INSTANCES.add(self)

    @property
    def name(self) -> str:
        return self.spec.name

    def _move(self, target: InstanceState) -> None:
        self.state = INSTANCES.advance(self.state, target)
        self.on_change(self)

    async def start(self) -> None:
        """Start it and wait until it is healthy; raises InstanceFailed if it never is."""
        with tracing.span("instance.start", {"shipway.instance": self.name}):
            self._first = asyncio.get_running_loop().create_future()
            self._task = asyncio.create_task(self._supervise(), name=f"instance-{self.name}")
            await asyncio.shield(self._first)

    async def stop(self, drain: float = 0.0) -> None:
        """Stop taking part: wait up to DRAIN seconds for requests in flight, then kill it."""
        self._stopping = True
        if self.state is InstanceState.HEALTHY and drain > 0:
            self._move(InstanceState.DRAINING)
            deadline = time.monotonic() + drain
            while (
                self.upstream is not None and self.upstream.active and time.monotonic() < deadline
            ):
                await asyncio.sleep(0.05)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.state is not InstanceState.STOPPED:
            self._move(InstanceState.STOPPED)

    async def _supervise(self) -> None:
        delay = FIRST_BACKOFF
        try:
            while True:
                started = time.monotonic()
                result = await self._run_once()
                if self._stopping:
                    return
                if (
                    self.state is InstanceState.HEALTHY
                    and time.monotonic() - started > STABLE_SECONDS
                ):
                    delay = FIRST_BACKOFF
                self._move(InstanceState.CRASHED)
                self.say(f"{self.name} crashed: {_ended(result)}; restarting in {delay:g} s")
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)
                self.restarts += 1
                self._move(InstanceState.STARTING)
        finally:
            if self.upstream is not None:
                self.upstream.attach(None)
            shutil.rmtree(self.spec.scratch, ignore_errors=True)

    async def _run_once(self) -> SandboxResult | str:
        """Run the sandbox until it ends; the first time, report health (or failure) to start()."""
        spec = self.spec
        spec.scratch.mkdir(parents=True, exist_ok=True)
        running: asyncio.Future[Started] = asyncio.get_running_loop().create_future()

        def started(where: Started) -> None:
            if self.upstream is not None:
                self.upstream.attach(where)
            running.set_result(where)

        ended = asyncio.ensure_future(execute(spec, self._line, started))
        try:
            first: set[asyncio.Future[Any]] = {ended, running}
            await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
            if running.done() and await self._until_healthy(ended):
                self.started_at = time.monotonic()
                self._move(InstanceState.HEALTHY)
                self._settle(None)
                return await ended
            if not ended.done():
                self._settle(f"no healthy answer within {spec.health_timeout:g} s")
                ended.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ended
                return f"it did not answer its health check within {spec.health_timeout:g} s"
            try:
                result = ended.result()
            except SandboxError as e:
                self._settle(str(e))
                return str(e)
            self._settle(_ended(result))
            return result
        finally:
            if not ended.done():
                ended.cancel()
                with contextlib.suppress(asyncio.CancelledError, SandboxError):
                    await ended

    async def _until_healthy(self, ended: asyncio.Future[SandboxResult]) -> bool:
        """Check until healthy (True), or until the process ends or the timeout passes; the
        first start's checks are a span of its own (a restart's belong to no deploy)."""
        if self.restarts:
            return await self._checks(ended)
        with tracing.span("instance.health", {"url.path": self.spec.health_path}) as span:
            healthy = await self._checks(ended)
            if not healthy:
                tracing.fail(span, "no healthy answer")
            return healthy

    async def _checks(self, ended: asyncio.Future[SandboxResult]) -> bool:
        upstream = self.upstream
        if upstream is None:
            return not ended.done()
        started = time.monotonic()
        deadline = started + self.spec.health_timeout
        while not ended.done() and time.monotonic() < deadline:
            status = await health.check(upstream.open, self.spec.health_path, self.spec.health_host)
            if health.healthy(status):
                return True
            often = time.monotonic() - started < CHECK_OFTEN_SECONDS
            await asyncio.wait({ended}, timeout=CHECK_EVERY if often else CHECK_LATER_EVERY)
        return False

    def _settle(self, failure: str | None) -> None:
        """Tell start() how the first run went; later runs have nobody waiting."""
        first = self._first
        if first is None or first.done():
            return
        if failure is None:
            first.set_result(None)
            return
        shown = last_output(self._tail)
        first.set_exception(InstanceFailed(f"{self.name} failed to start: {failure}{shown}"))
        self._stopping = True

    def _line(self, line: str) -> None:
        self._tail.append(line)
        self.say(f"{self.name}: {line}")

    def describe(self) -> dict[str, object]:
        """Its state for `apps info`."""
        uptime = None
        if self.state is InstanceState.HEALTHY and self.started_at is not None:
            uptime = round(time.monotonic() - self.started_at, 1)
        return {
            "name": self.name,
            "state": self.state.value,
            "restarts": self.restarts,
            "uptime": uptime,
            "command": self.spec.command or "(the image's ENTRYPOINT and CMD)",
        }


def _ended(result: SandboxResult | str) -> str:
    if isinstance(result, str):
        return result
    if result.reason:
        return result.reason
    return f"exited with code {result.exit_code}"


def last_output(tail: Iterable[str]) -> str:
    """The end of a failure's message: the lines a process printed last, or that it printed
    nothing."""
    output = "\n".join(tail)
    return f"; its last output:\n{output}" if output else "; it printed nothing"
