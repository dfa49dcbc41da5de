"""A sandbox's supervisor is the small program built from reaper.c, not a copy of shipway nor
an interpreter, and it still reaps everything below it and passes on bubblewrap's exit code."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import psutil
import pytest

from shipway import native
from shipway.native import NativeError
from shipway.sandbox import SandboxError, programs
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
        line = supervisor.cmdline()
        assert line[:3] == [programs.supervisor(), "--parent", str(os.getpid())]
        assert line[line.index("--") + 2 :][:2] == ["bwrap", "--args"]
        assert supervisor.exe() == programs.supervisor()
        assert bwrap.ppid() == supervisor.pid
        mapped = {Path(m.path).name for m in supervisor.memory_maps()}
        assert not any("python" in name for name in mapped), mapped
        # A copy of shipway holds tens of MiB of its own, a bare interpreter about 3.
        assert supervisor.memory_full_info().uss < 1024 * 1024
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


def test_without_a_c_compiler_the_supervisor_cannot_be_built_and_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(NativeError, match=r"no C compiler \(cc\); install gcc and libc6-dev"):
        native._compile(programs.SUPERVISOR, tmp_path / "reaper")
    assert list(tmp_path.iterdir()) == []
    # And a sandbox says so, as any sandbox it cannot set up.
    monkeypatch.setattr(
        programs.native, "program", lambda source: native._compile(source, tmp_path / "x")
    )
    with pytest.raises(SandboxError, match=r"no C compiler \(cc\)"):
        programs.supervisor()


def test_a_compiler_error_is_named_and_leaves_nothing_behind(tmp_path: Path) -> None:
    broken = tmp_path / "reaper.c"
    broken.write_text("int main(void) { return missing; }\n")
    with pytest.raises(NativeError, match=r"from reaper\.c: .*missing"):
        native._compile(broken, tmp_path / "reaper")
    assert list(tmp_path.iterdir()) == [broken]


def test_once_shipway_is_gone_nothing_is_started(tmp_path: Path) -> None:
    """The supervisor's parent must still be the shipway that started it: else it starts
    nothing, and says so in the error pipe."""
    marker = tmp_path / "ran"
    read, write = os.pipe()
    supervisor = [programs.supervisor(), "--parent", "1", "--error-fd", str(write)]
    done = subprocess.run(
        [*supervisor, "--", "/bin/sh", "sh", "-c", f"touch {marker}"], pass_fds=(write,)
    )
    os.close(write)
    with os.fdopen(read) as said:
        assert said.read() == "cannot set up the sandbox: shipway is gone"
    assert done.returncode == 127
    assert not marker.exists()


@pytest.mark.parametrize(
    "line",
    [
        ["--uid", "x", "--"],
        ["--stage"],
        ["--bind", "a", "b"],
        ["--"],
        ["--", "/bin/true"],
        [*["--rlimit", "1", "1"] * 65, "--", "/bin/true", "true"],
    ],
)
def test_a_malformed_command_line_starts_nothing(line: list[str]) -> None:
    read, write = os.pipe()
    done = subprocess.run(
        [programs.supervisor(), "--error-fd", str(write), *line], pass_fds=(write,)
    )
    os.close(write)
    with os.fdopen(read) as said:
        assert said.read().startswith("cannot set up the sandbox: "), line
    assert done.returncode == 127
