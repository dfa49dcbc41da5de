"""Specs that would mislead bubblewrap or hand a system directory to the sandbox are refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shipway.sandbox import Limits, Mount, SandboxError, SandboxSpec, run, runner


@pytest.mark.parametrize(
    "change",
    [
        {"argv": []},
        {"argv": ["sh", "a\0b"]},
        {"env": {"A=B": "c"}},
        {"env": {"": "c"}},
        {"mounts": [Mount(Path("/usr"), "usr")]},
        {"mounts": [Mount(Path("/usr"), "/usr/../etc")]},
        {"mounts": [Mount(Path("/usr"), "/")]},
        {"mounts": [Mount(Path("/usr"), "/proc/x")]},
        {"mounts": [Mount(Path("/usr"), "/dev")]},
        {"mounts": [Mount(Path("/usr"), "/workspace")]},
        {"mounts": [Mount(Path("/no/such/dir"), "/x")]},
        {"mounts": [Mount(Path("/usr/lib"), "/x", writable=True)]},
        {"mounts": [Mount(Path("/"), "/x", writable=True)]},
        {"workspace": Path("/")},
        {"workspace": Path("/etc")},
        {"workspace": Path("/no/such/dir")},
    ],
    ids=[
        "no-argv",
        "nul-in-argv",
        "equals-in-env-name",
        "empty-env-name",
        "relative-target",
        "unnormalized-target",
        "root-target",
        "proc-target",
        "dev-target",
        "workspace-target",
        "missing-source",
        "writable-system-dir",
        "writable-root",
        "workspace-is-root",
        "workspace-is-etc",
        "missing-workspace",
    ],
)
async def test_refused(workspace: Path, change: dict[str, object]) -> None:
    spec = SandboxSpec(argv=["true"], workspace=workspace)
    for name, value in change.items():
        setattr(spec, name, value)
    with pytest.raises(SandboxError):
        await run(spec, lambda _: None)


def test_limits_must_be_positive() -> None:
    with pytest.raises(SandboxError):
        Limits(memory_mb=0)
    with pytest.raises(SandboxError):
        Limits(wall_seconds=-1)
    assert Limits() == Limits(memory_mb=2048, processes=512, file_size_mb=2048, wall_seconds=900)


async def test_a_mount_bubblewrap_cannot_make_is_a_setup_failure(
    tmp_path: Path, workspace: Path
) -> None:
    lines: list[str] = []
    spec = SandboxSpec(
        argv=["true"], workspace=workspace, mounts=[Mount(tmp_path, "/usr/shipway-test")]
    )
    result = await run(spec, lines.append)
    assert result.exit_code != 0
    assert result.reason is not None
    assert result.reason.startswith("sandbox setup failed: "), (result, lines)
    assert "/usr/shipway-test" in result.reason


@pytest.mark.skipif(os.geteuid() != 0, reason="only root stages mount sources")
async def test_a_failure_before_bubblewrap_starts_is_an_error(
    tmp_path: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    monkeypatch.setattr(runner, "STAGING", str(not_a_dir))
    monkeypatch.setattr(runner, "_staging_ready", True)
    with pytest.raises(SandboxError, match=r"cannot set up the sandbox: .*tmpfs"):
        await run(SandboxSpec(argv=["true"], workspace=workspace), lambda _: None)
