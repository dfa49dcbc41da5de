"""Quick cgroup joins: the thread that keeps them quick moves nothing, stops when its time is
up, gives up for good where it cannot write, and the sandboxes started meanwhile are limited
as ever."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from shipway.sandbox import cgroups, expect_sandboxes, joins
from tests.conftest import unavailable
from tests.sandbox.conftest import PATIENCE, limits, sandboxed


def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.01)


@pytest.fixture
def v1() -> None:
    if cgroups.hierarchy() is None:
        unavailable("no writable cgroup v1 memory and pids controllers (or not root)")


@pytest.mark.usefixtures("v1")
def test_keeping_joins_quick_moves_nothing_and_stops_when_its_time_is_up() -> None:
    before = Path("/proc/self/cgroup").read_text()
    quick = joins._QuickJoins()
    quick.extend(0.05)
    until(lambda: quick.writes >= 2 and not quick.running, "two writes, then the thread ended")
    assert Path("/proc/self/cgroup").read_text() == before
    done = quick.writes
    quick.extend(0.05)
    until(lambda: quick.writes > done and not quick.running, "a later extend writes again")


def test_a_process_that_cannot_write_gives_up_once_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    nowhere = cgroups.Hierarchy(tmp_path / "own" / cgroups.PARENT, tmp_path / "pids")
    monkeypatch.setattr(cgroups, "hierarchy", lambda: nowhere)
    quick = joins._QuickJoins()
    with caplog.at_level(logging.INFO, logger=joins.__name__):
        quick.extend(1)
        until(lambda: not quick.running, "the thread ended")
        quick.extend(1)
        assert not quick.running
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "cgroup joins wait for the kernel" in said[0], said
    assert quick.writes == 0


def test_without_sandbox_cgroups_nothing_is_written(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cgroups, "hierarchy", lambda: None)
    quick = joins._QuickJoins()
    quick.extend(1)
    assert not quick.running and quick.writes == 0


@pytest.mark.usefixtures("v1")
async def test_a_sandbox_started_while_joins_are_quick_keeps_its_limits(workspace: Path) -> None:
    (workspace / "hog.py").write_text("x = bytearray(10 * 2**30)")
    expect_sandboxes()
    ran = await sandboxed(workspace, "exec python3 hog.py", limits=limits(memory_mb=256))
    assert ran.result.reason == "killed: memory limit of 256 MiB exceeded"
