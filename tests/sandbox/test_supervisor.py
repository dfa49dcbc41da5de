"""A sandbox's supervisor is a bare interpreter running reaper.py, not a copy of shipway, and
it still reaps everything below it and passes on bubblewrap's exit code."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import psutil

from shipway.sandbox import reaper
from tests.sandbox.conftest import cancel, started


def _supervisor() -> psutil.Process:
    """The one child of this process that has bubblewrap below it."""
    (found,) = [
        child
        for child in psutil.Process().children()
        if any(c.name() == "bwrap" for c in child.children())
    ]
    return found


async def test_the_supervisor_is_the_reaper_program_and_holds_no_copy_of_shipway(
    workspace: Path,
) -> None:
    task, _ = await started(workspace, "echo ready; exec sleep 1000")
    try:
        supervisor = _supervisor()
        (bwrap,) = supervisor.children()
        assert supervisor.cmdline() == [
            sys.executable,
            "-I",
            "-S",
            reaper.__file__,
            str(bwrap.pid),
        ]
        modules = {Path(m.path).name for m in supervisor.memory_maps() if m.path.endswith(".so")}
        assert not any(name.startswith("_ctypes") for name in modules), modules
        assert supervisor.num_fds() == 3, os.listdir(f"/proc/{supervisor.pid}/fd")
    finally:
        await cancel(task)


async def test_orphans_left_in_the_sandbox_are_reaped_before_run_returns(
    workspace: Path,
) -> None:
    task, _ = await started(workspace, "(sleep 1000 &); echo ready; exec sleep 1000")
    supervisor = _supervisor()
    await cancel(task)
    assert not supervisor.is_running()
