"""What a sandboxed command can see and touch: its workspace, its mounts, the toolchain; no more."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import psutil
import pytest

from shipway.sandbox import Mount, SandboxSpec, run
from tests.helpers import until
from tests.sandbox.conftest import cancel, processes_of, sandboxed, started


async def test_etc_shadow_is_not_there(workspace: Path) -> None:
    ran = await sandboxed(workspace, "ls -a /etc; cat /etc/shadow; cat /etc/gshadow")
    assert ran.result.exit_code != 0
    assert ran.result.reason == f"exited with code {ran.result.exit_code}"
    assert "shadow" not in ran.lines and "gshadow" not in ran.lines
    assert not any(line.startswith("root:") for line in ran.lines)
    assert "resolv.conf" in ran.lines and "passwd" in ran.lines


async def test_the_data_dir_and_other_apps_are_out_of_sight(
    tmp_path: Path, workspace: Path
) -> None:
    data = tmp_path / "data"
    (data / "repos" / "other.git").mkdir(parents=True)
    (data / "repos" / "other.git" / "HEAD").write_text("OTHER-APP-REPO\n")
    (data / "secret.key").write_text("TOP-SECRET-KEY\n")
    (data / "cache" / "2" / "downloads").mkdir(parents=True)
    (data / "cache" / "2" / "downloads" / "other-app-wheel.whl").write_text("OTHER-APP-CACHE\n")
    script = (
        f"cat {data}/secret.key {data}/repos/other.git/HEAD; ls {tmp_path}; echo found:; "
        "find / -path /proc -prune -o \\( -name secret.key -o -name other.git "
        "-o -name other-app-wheel.whl \\) -print 2>/dev/null; "
        "grep -rs OTHER- /workspace /tmp /etc; echo done"
    )
    ran = await sandboxed(workspace, script)
    assert ran.lines[ran.lines.index("found:") + 1 :] == ["done"]
    for secret in ("TOP-SECRET-KEY", "OTHER-APP-REPO", "OTHER-APP-CACHE"):
        assert secret not in ran.output


@pytest.mark.parametrize("target", ["/usr/evil", "/evil", "/etc/evil", "/etc/passwd", "/dev/evil"])
async def test_nothing_outside_the_workspace_is_writable(workspace: Path, target: str) -> None:
    ran = await sandboxed(workspace, f"echo x > {target} && echo WROTE")
    assert ran.result.exit_code != 0 and "WROTE" not in ran.lines
    assert ran.result.reason == f"exited with code {ran.result.exit_code}"
    assert not Path(target).exists() or target == "/etc/passwd"


async def test_the_workspace_tmp_and_writable_mounts_are_writable(
    tmp_path: Path, workspace: Path
) -> None:
    cache, layer = tmp_path / "cache", tmp_path / "layer"
    cache.mkdir()
    layer.mkdir()
    (layer / "lib.txt").write_text("from a layer\n")
    config = tmp_path / "app.json"
    config.write_text('{"from": "a file mount"}\n')
    (workspace / "node_modules").mkdir()
    deps = tmp_path / "deps"
    deps.mkdir()
    script = (
        "set -e; echo w > /workspace/out; echo c > /cache/out; echo t > /tmp/out; "
        "echo s > /dev/shm/out; echo d > /workspace/node_modules/out; cat /layer/lib.txt; "
        "cat /config/app.json; "
        "if echo x > /layer/out; then echo LAYER-WRITABLE; fi"
    )
    ran = await sandboxed(
        workspace,
        script,
        mounts=[
            Mount(cache, "/cache", writable=True),
            Mount(layer, "/layer"),
            Mount(deps, "/workspace/node_modules", writable=True),
            Mount(config, "/config/app.json"),
        ],
    )
    assert ran.result.reason is None, ran.output
    assert "from a layer" in ran.lines and "LAYER-WRITABLE" not in ran.lines
    assert '{"from": "a file mount"}' in ran.lines
    assert (workspace / "out").read_text() == "w\n"
    assert (cache / "out").read_text() == "c\n"
    assert (deps / "out").read_text() == "d\n"
    assert not (workspace / "node_modules" / "out").exists()
    assert not (layer / "out").exists()


async def test_unprivileged_inside_and_outside(workspace: Path) -> None:
    task, lines = await started(workspace, "id -u; id -g; id -G; echo ready; exec sleep 1000")
    try:
        uid, gid, groups = int(lines[0]), int(lines[1]), lines[2].split()
        assert uid != 0 and gid != 0 and groups == [str(gid)]
        # "ready" comes just before the shell execs sleep: wait for the exec.
        sleeper = await until(lambda: sleeping(uid))
        status = dict(
            line.split(":", 1)
            for line in Path(f"/proc/{sleeper.pid}/status").read_text().split("\n")
            if ":" in line
        )
        assert status["Uid"].split() == [str(uid)] * 4
        assert status["Gid"].split() == [str(gid)] * 4
        assert status["Groups"].split() == []
        assert int(status["CapEff"], 16) == 0
        if os.geteuid() == 0:
            assert uid != os.getuid()
    finally:
        await cancel(task)


def sleeping(uid: int) -> psutil.Process | None:
    """The sandbox's `sleep 1000`, once its shell has exec'd it."""
    for process in processes_of(uid):
        with contextlib.suppress(psutil.Error):  # gone meanwhile
            if process.cmdline() == ["sleep", "1000"]:
                return process
    return None


async def test_own_pid_namespace(workspace: Path) -> None:
    ran = await sandboxed(workspace, "echo $$; ls /proc | grep -E '^[0-9]+$'")
    assert ran.result.reason is None
    own, visible = int(ran.lines[0]), {int(pid) for pid in ran.lines[1:]}
    assert own <= 3
    assert len(visible) < 10 and max(visible) < 100
    assert len(visible) < len(psutil.pids())


async def test_only_the_given_environment(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPWAY_HOST_SECRET", "do-not-leak")
    lines: list[str] = []
    spec = SandboxSpec(
        argv=["python3", "-c", "import json, os; print(json.dumps(dict(os.environ)))"],
        workspace=workspace,
        env={"APP_SETTING": "on", "PATH": "/workspace/bin:/usr/bin:/bin"},
    )
    result = await run(spec, lines.append)
    assert result.reason is None, lines
    env = json.loads(lines[-1])
    assert env == {
        "APP_SETTING": "on",
        "PATH": "/workspace/bin:/usr/bin:/bin",
        "HOME": "/tmp",
        "LANG": "C.UTF-8",
        "PWD": "/workspace",
    }
    assert "do-not-leak" not in lines[-1]


async def test_concurrent_sandboxes_do_not_see_each_other(tmp_path: Path) -> None:
    signal_dir = tmp_path / "signal"
    signal_dir.mkdir()
    runs = {}
    for name in ("a", "b"):
        workspace = tmp_path / f"ws-{name}"
        workspace.mkdir()
        script = (
            f"id -u; echo {name} > /workspace/mine-{name}; echo ready; "
            "while [ ! -e /signal/go ]; do sleep 0.05; done; ls /workspace; "
            "find / -path /proc -prune -o -name 'mine-*' -print 2>/dev/null; true"
        )
        runs[name] = await started(workspace, script, mounts=[Mount(signal_dir, "/signal")])
    (signal_dir / "go").touch()
    results = [await task for task, _ in runs.values()]
    assert [r.reason for r in results] == [None, None]
    for name, (_, lines) in runs.items():
        assert lines[2:] == [f"mine-{name}", f"/workspace/mine-{name}"]
    if os.geteuid() == 0:
        assert runs["a"][1][0] != runs["b"][1][0]
