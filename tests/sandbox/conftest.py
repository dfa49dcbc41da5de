"""Fixtures for the sandbox tests: every one of them runs real bubblewrap."""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from shipway.sandbox import Limits, SandboxResult, SandboxSpec, cgroups, identity, run
from tests.conftest import unavailable

#: A generous bound on how long any test waits for something that should happen at once.
PATIENCE = 60.0


@pytest.fixture(scope="session", autouse=True)
def _bwrap_works(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Skip (fail in CI) when this machine cannot make unprivileged user namespaces."""
    probe_workspace = tmp_path_factory.mktemp("probe")

    async def probe() -> SandboxResult:
        return await run(SandboxSpec(argv=["true"], workspace=probe_workspace), lambda _: None)

    try:
        result = asyncio.run(probe())
    except Exception as e:  # a setup failure says why
        unavailable(f"bubblewrap cannot make a sandbox here: {e}")
        return
    if result.exit_code != 0:
        unavailable(f"bubblewrap cannot make a sandbox here: {result.reason}")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "workspace"
    path.mkdir()
    return path


@pytest.fixture(params=["cgroup", "rlimit"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Limits kept by a cgroup per sandbox, and by the rlimit fallback: both must hold."""
    if request.param == "cgroup":
        if cgroups.hierarchy() is None:
            unavailable("no writable cgroup v1 memory and pids controllers (or not root)")
    else:
        monkeypatch.setattr(cgroups, "hierarchy", lambda: None)
    return str(request.param)


@dataclass
class Ran:
    result: SandboxResult
    lines: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


async def sandboxed(workspace: Path, script: str, **spec: Any) -> Ran:
    """Run a shell script in a sandbox and keep everything it printed."""
    lines: list[str] = []
    result = await run(
        SandboxSpec(argv=["/bin/sh", "-c", script], workspace=workspace, **spec), lines.append
    )
    return Ran(result, lines)


async def started(
    workspace: Path, script: str, marker: str = "ready", **spec: Any
) -> tuple[asyncio.Task[SandboxResult], list[str]]:
    """Start a sandboxed script; return once it has printed MARKER, with the lines so far."""
    seen = asyncio.Event()
    lines: list[str] = []

    def on_line(line: str) -> None:
        lines.append(line)
        if line == marker:
            seen.set()

    spec.setdefault("limits", limits())
    sandbox = SandboxSpec(argv=["/bin/sh", "-c", script], workspace=workspace, **spec)
    task = asyncio.create_task(run(sandbox, on_line))
    try:
        await asyncio.wait_for(seen.wait(), PATIENCE)
    except BaseException:
        await cancel(task)
        raise
    return task, lines


async def cancel(task: asyncio.Task[SandboxResult]) -> None:
    """Cancel a run and see the cancellation come back out of it."""
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def limits(**values: Any) -> Limits:
    return Limits(**{"wall_seconds": PATIENCE, **values})


def processes_of(uid: int) -> list[psutil.Process]:
    """Live processes running as UID; none may be left once a sandbox of that uid is done."""
    found = []
    for proc in psutil.process_iter(["uids", "status"]):
        uids, status = proc.info["uids"], proc.info["status"]
        if uids and uids.real == uid and status != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


def assert_nothing_left(uid: int) -> None:
    """No process of the sandbox remains (checkable when the sandbox had a uid of its own), and
    its cgroups are gone."""
    if uid == os.getuid():
        return
    slot = uid - identity.BASE_UID
    with slot_held(slot):
        assert processes_of(uid) == []
        where = cgroups.hierarchy()
        if where is not None:
            assert not (where.memory / f"slot-{slot}").exists()
            assert not (where.pids / f"slot-{slot}").exists()


@contextmanager
def slot_held(slot: int, timeout: float = 120) -> Iterator[None]:
    """SLOT leased by this test while it looks: another test process may lease a slot (and make
    its cgroups) as soon as it is free, so what a slot leaves behind is checked while no
    sandbox can take it."""
    fd = os.open(identity.LOCK_DIR / f"{slot}.lock", os.O_RDWR | os.O_CLOEXEC)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"sandbox slot {slot} stayed leased for {timeout:g} s")
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)
