"""Output arrives line by line, in order, as it is produced, whatever bytes the command writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipway.sandbox import SandboxSpec, run
from shipway.sandbox.runner import MAX_LINE
from tests.sandbox.conftest import assert_nothing_left, cancel, limits, sandboxed, started


async def test_stdout_and_stderr_lines_arrive_in_order(workspace: Path) -> None:
    ran = await sandboxed(
        workspace,
        'i=0; while [ $i -lt 2000 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done',
    )
    assert ran.result.reason is None
    assert ran.lines == [f"{kind} {i}" for i in range(2000) for kind in ("out", "err")]


async def test_lines_stream_while_the_command_runs(workspace: Path) -> None:
    task, lines = await started(workspace, "echo first; exec sleep 1000", marker="first")
    assert lines == ["first"] and not task.done()
    await cancel(task)


async def test_bytes_that_are_not_lines_of_utf8(workspace: Path) -> None:
    (workspace / "long").write_bytes(b"y" * (MAX_LINE * 2 + 10) + b"\n")
    ran = await sandboxed(
        workspace,
        r"printf 'caf\303\251 \377\376 end\r\n'; cat long; printf 'no newline at the end'",
    )
    assert ran.result.reason is None
    assert ran.lines[0] == "café \ufffd\ufffd end"
    assert ran.lines[1:4] == ["y" * MAX_LINE, "y" * MAX_LINE, "y" * 10]
    assert ran.lines[4] == "no newline at the end"
    assert len(ran.lines) == 5


async def test_a_failing_callback_stops_the_sandbox(workspace: Path) -> None:
    uid: list[str] = []

    def on_line(line: str) -> None:
        if line.isdigit():
            uid.append(line)
            return
        raise RuntimeError(f"cannot take {line!r}")

    spec = SandboxSpec(
        argv=["/bin/sh", "-c", "id -u; echo boom; exec sleep 1000"],
        workspace=workspace,
        limits=limits(),
    )
    with pytest.raises(RuntimeError, match="boom"):
        await run(spec, on_line)
    assert_nothing_left(int(uid[0]))
