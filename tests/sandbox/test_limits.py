"""Limits hold, the reason names the one hit, and nothing of the sandbox outlives run()."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from shipway.sandbox import SandboxSpec, run
from tests.helpers import until
from tests.sandbox.conftest import (
    assert_nothing_left,
    cancel,
    limits,
    processes_of,
    sandboxed,
    started,
)

FORK_LOOP = """
import os, sys, time
children = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(600)
            os._exit(0)
        children += 1
except OSError as e:
    print(f"fork failed after {children} children: {e}", flush=True)
    sys.exit(1)
"""


async def test_fork_loop_stops_at_the_process_limit(workspace: Path, mode: str) -> None:
    (workspace / "forks.py").write_text(FORK_LOOP)
    ran = await sandboxed(workspace, "id -u; exec python3 forks.py", limits=limits(processes=64))
    assert ran.result.exit_code == 1
    assert ran.result.reason == "process limit of 64 reached"
    children = int(ran.lines[-1].split()[3])
    assert 60 <= children < 64
    assert_nothing_left(int(ran.lines[0]))
    assert subprocess.run(["true"], check=False).returncode == 0


async def test_fork_bomb_is_contained(workspace: Path, mode: str) -> None:
    ran = await sandboxed(
        workspace,
        # The bomb goes off in a subshell, the shell's one fork, and the shell waits by exec:
        # once the bomb fills the limit the shell could fork nothing, and a shell that cannot
        # fork exits, which would end the sandbox before its wall time.
        "id -u; bomb() { bomb | bomb & }; (bomb) & exec sleep 60",
        limits=limits(processes=64, wall_seconds=3),
    )
    assert ran.result.reason is not None
    assert ran.result.reason.startswith("killed: timed out after 3 s")
    assert ran.result.reason.endswith("process limit of 64 reached")
    assert_nothing_left(int(ran.lines[0]))
    assert subprocess.run(["true"], check=False).returncode == 0


@pytest.mark.parametrize(
    "program",
    [
        "x = bytearray(10 * 2**30)",
        "chunks = []\nwhile True: chunks.append(bytearray(2**24))",
    ],
    ids=["10GiB-at-once", "16MiB-at-a-time"],
)
async def test_memory_limit(workspace: Path, mode: str, program: str) -> None:
    (workspace / "hog.py").write_text(program)
    ran = await sandboxed(workspace, "id -u; exec python3 hog.py", limits=limits(memory_mb=256))
    assert ran.result.exit_code != 0
    expected = "memory limit of 256 MiB exceeded"
    assert ran.result.reason == (f"killed: {expected}" if mode == "cgroup" else expected)
    assert_nothing_left(int(ran.lines[0]))


async def test_wall_clock(workspace: Path, mode: str) -> None:
    ran = await sandboxed(
        workspace, "id -u; sleep 1000 & sleep 1000; echo never", limits=limits(wall_seconds=2)
    )
    assert ran.result.exit_code == 137
    assert ran.result.reason == "killed: timed out after 2 s"
    assert "never" not in ran.lines
    assert ran.result.duration >= 2
    assert_nothing_left(int(ran.lines[0]))


@pytest.mark.parametrize(
    "writer",
    [
        "head -c 5000000 /dev/zero > big",
        "exec python3 -c \"open('big', 'wb').write(b'x' * 5_000_000)\"",
    ],
    ids=["killed-by-SIGXFSZ", "python-ignores-SIGXFSZ"],
)
async def test_file_size_limit(workspace: Path, writer: str) -> None:
    ran = await sandboxed(workspace, writer, limits=limits(file_size_mb=1))
    assert ran.result.exit_code != 0
    assert ran.result.reason == "file size limit of 1 MiB exceeded"
    assert (workspace / "big").stat().st_size <= 2**20


async def test_cancel_kills_every_process(workspace: Path, mode: str) -> None:
    script = "id -u; (sleep 1000 &); sleep 1000 & sh -c 'sleep 1000' & echo ready; wait"
    task, lines = await started(workspace, script)
    uid = int(lines[0])
    if uid != os.getuid():
        # "ready" can come before the shells it started have become `sleep`s.
        def sleeping() -> bool:
            return sum(p.name() == "sleep" for p in processes_of(uid)) == 3

        await until(sleeping, 30)
    await cancel(task)
    assert_nothing_left(uid)


async def test_reasons_for_ordinary_endings(workspace: Path) -> None:
    ok = await sandboxed(workspace, "true")
    failed = await sandboxed(workspace, "exit 3")
    crashed = await sandboxed(workspace, "kill -SEGV $$")
    lines: list[str] = []
    missing = await run(SandboxSpec(argv=["no-such-command"], workspace=workspace), lines.append)
    assert (ok.result.exit_code, ok.result.reason) == (0, None)
    assert (failed.result.exit_code, failed.result.reason) == (3, "exited with code 3")
    assert crashed.result.reason == "killed by SIGSEGV (exit code 139)"
    assert missing.exit_code != 0
    assert missing.reason == "cannot run no-such-command: No such file or directory", lines
