"""The builders `shipway up` runs beside itself as `shipway builder` processes: the extra ones
of `--builders N`, and those the autoscaler starts for a pool with no command or webhook of
its own. Each pool is kept at the count asked for: a builder that exits unasked is started
again; one too many is drained (SIGTERM: it finishes its builds, then exits), idle ones
first."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from nats.js import JetStreamContext

from shipway.builder.activity import builder_name
from shipway.embedded.process import die_with_parent
from shipway.fleet import registry

log = logging.getLogger(__name__)

#: Seconds between looks at the local builders, while there are any.
EVERY = 1.0
#: The longest wait before starting again a builder that keeps exiting.
RESTART_MAX = 30.0


@dataclass
class _Pool:
    count: int = 0
    slots: int = 2
    running: list[subprocess.Popen[bytes]] = field(default_factory=list)
    draining: list[subprocess.Popen[bytes]] = field(default_factory=list)
    #: After a builder exits unasked, the next is started this many seconds later (doubling
    #: while they keep exiting, so a broken setup does not spawn one a second).
    backoff: float = 0.0
    not_before: float = 0.0


class LocalBuilders:
    def __init__(
        self, data_dir: Path, js: JetStreamContext, env: Mapping[str, str] | None = None
    ) -> None:
        self.data_dir = data_dir
        self.js = js
        self.env = {**(os.environ if env is None else env), "SHIPWAY_DATA": str(data_dir)}
        self.log_path = data_dir / "builders.log"
        self._pools: dict[str, _Pool] = {}
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    def keep(self, pool: str, count: int, slots: int = 2) -> None:
        """Run COUNT builders of POOL with SLOTS each from now on."""
        kept = self._pools.setdefault(pool, _Pool())
        kept.count, kept.slots = count, slots
        self._changed.set()

    def ids(self, pool: str) -> set[str]:
        """The fleet ids of POOL's builders run here, draining ones too."""
        kept = self._pools.get(pool)
        return {self.builder_id(p) for p in kept.running + kept.draining} if kept else set()

    @staticmethod
    def builder_id(process: subprocess.Popen[bytes]) -> str:
        """The fleet id a builder process gives itself (see shipway.builder.activity)."""
        return registry.builder_id(builder_name(process.pid))

    def start(self) -> None:
        self._task = asyncio.create_task(self._keep_up(), name="local-builders")

    async def close(self, timeout: float = 10.0) -> None:
        """Drain every builder; kill those still running after TIMEOUT seconds."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        processes = [p for kept in self._pools.values() for p in kept.running + kept.draining]
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        deadline = asyncio.get_running_loop().time() + timeout
        for process in processes:
            while process.poll() is None and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.1)
            if process.poll() is None:
                process.kill()
                await asyncio.to_thread(process.wait)

    async def _keep_up(self) -> None:
        while True:
            try:
                await self._adjust()
            except Exception:  # a bad moment (a fork failing, NATS away); try again
                log.exception("keeping local builders")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(EVERY if self._watching else None):
                    await self._changed.wait()
            self._changed.clear()

    @property
    def _watching(self) -> bool:
        """Whether a builder runs or is wanted here: with none, only `keep` has news."""
        return any(kept.count or kept.running or kept.draining for kept in self._pools.values())

    async def _adjust(self) -> None:
        now = time.monotonic()
        for pool, kept in self._pools.items():
            for process in [p for p in kept.running if p.poll() is not None]:
                log.warning(
                    "builder %s of pool %s exited (%s)", process.pid, pool, process.returncode
                )
                kept.running.remove(process)
                quiet = now - kept.not_before > RESTART_MAX * 2
                kept.backoff = 1.0 if quiet else min(kept.backoff * 2, RESTART_MAX)
                kept.not_before = now + kept.backoff
                # Shown lost now; should NATS be away, its silence shows it later.
                with contextlib.suppress(Exception):
                    await registry.lost(self.js, self.builder_id(process))
            kept.draining = [p for p in kept.draining if p.poll() is None]
            while len(kept.running) < kept.count and now >= kept.not_before:
                kept.running.append(self._spawn(pool, kept.slots))
            extra = len(kept.running) - kept.count
            if extra > 0:
                for process in await self._idle_first(kept.running, extra):
                    log.info("draining builder %s of pool %s", process.pid, pool)
                    with contextlib.suppress(ProcessLookupError):
                        process.send_signal(signal.SIGTERM)
                    kept.running.remove(process)
                    kept.draining.append(process)

    async def _idle_first(
        self, processes: list[subprocess.Popen[bytes]], n: int
    ) -> list[subprocess.Popen[bytes]]:
        """N of PROCESSES to drain: those with no build running first, then the newest."""
        busy: dict[str, int] = {}
        with contextlib.suppress(Exception):
            busy = {r.id: r.busy for r in await registry.builders(self.js)}
        ranked = sorted(reversed(processes), key=lambda p: busy.get(self.builder_id(p), 0) > 0)
        return ranked[:n]

    def _spawn(self, pool: str, slots: int) -> subprocess.Popen[bytes]:
        with open(self.log_path, "ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "shipway", "builder", "--pool", pool, "--slots", str(slots)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                preexec_fn=die_with_parent,
            )
        log.info("started builder %s of pool %s (%d slots)", process.pid, pool, slots)
        return process
