"""As root, each sandbox runs as a uid of its own; as anyone else, as that user."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipway.sandbox import Limits, Mount, cgroups, identity
from shipway.sandbox.cgroups import Cgroup
from tests.conftest import unavailable
from tests.sandbox.conftest import processes_of, sandboxed

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="only root switches uids")


@needs_root
async def test_workspace_and_writable_mounts_are_handed_over(
    tmp_path: Path, workspace: Path
) -> None:
    host_file = tmp_path / "host-owned"
    host_file.write_text("root's\n")
    (workspace / "src").mkdir()
    (workspace / "src" / "app.py").write_text("print(1)\n")
    cache = tmp_path / "cache"
    cache.mkdir()
    # A previous run may have left a symlink to a host file: it must not be followed.
    (cache / "link").symlink_to(host_file)
    layer = tmp_path / "layer"
    layer.mkdir()
    (layer / "file").write_text("read only\n")
    ran = await sandboxed(
        workspace,
        "id -u; echo more >> /workspace/src/app.py; touch /cache/new; cat /layer/file",
        mounts=[Mount(cache, "/cache", writable=True), Mount(layer, "/layer")],
    )
    assert ran.result.reason is None, ran.output
    uid = int(ran.lines[0])
    assert identity.BASE_UID <= uid < identity.BASE_UID + identity.SLOTS
    for path in (workspace, workspace / "src" / "app.py", cache / "new", cache / "link"):
        assert path.lstat().st_uid == uid, path
    assert host_file.stat().st_uid == 0
    assert (layer / "file").stat().st_uid == 0


@pytest.fixture
def own_slots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Slots of this test's own, apart from those of any shipway running on this machine."""
    monkeypatch.setattr(identity, "LOCK_DIR", tmp_path / "slots")
    monkeypatch.setattr(identity, "BASE_UID", 300_000)


@pytest.fixture
def slot_zero_left_dirty(own_slots: None) -> Iterator[int]:
    """Slot 0 as a crashed shipway would leave it: lock file written, a process still running."""
    identity.LOCK_DIR.mkdir(parents=True, exist_ok=True)
    (identity.LOCK_DIR / "0.lock").write_text("99999999\n")
    uid = identity.BASE_UID
    straggler = subprocess.Popen(["sleep", "1000"], user=uid, group=uid, extra_groups=[])
    yield uid
    straggler.kill()
    straggler.wait()


@needs_root
def test_a_dirty_slot_is_swept_before_reuse(slot_zero_left_dirty: int) -> None:
    assert processes_of(slot_zero_left_dirty)
    with identity.lease() as ident:
        assert ident.uid == slot_zero_left_dirty
        assert processes_of(ident.uid) == []
    assert (identity.LOCK_DIR / "0.lock").read_text() == ""


@needs_root
def test_concurrent_leases_get_different_uids(own_slots: None) -> None:
    with identity.lease() as a, identity.lease() as b:
        assert a.uid != b.uid and a.gid != b.gid
        assert a.switched and b.switched


def test_a_stale_cgroup_is_emptied_and_remade() -> None:
    where = cgroups.hierarchy()
    if where is None:
        unavailable("no writable cgroup v1 memory and pids controllers (or not root)")
        return
    name = f"test-stale-{uuid.uuid4().hex[:8]}"
    stale = Cgroup.create(where, name, Limits(processes=4))
    sleeper = subprocess.Popen(["sleep", "1000"])
    try:
        for path in stale.procs_files:
            Path(path).write_text(str(sleeper.pid))
        fresh = Cgroup.create(where, name, Limits(memory_mb=64))
        assert sleeper.wait(timeout=60) == -9
        assert fresh.members() == []
        assert (fresh.memory / "memory.limit_in_bytes").read_text().strip() == str(64 * 2**20)
        assert (fresh.pids / "pids.max").read_text().strip() == "514"
    finally:
        sleeper.kill()
        Cgroup(where.memory / name, where.pids / name).clear()


NOBODY_RUN = """
import asyncio, json, sys
from pathlib import Path
from shipway.sandbox import Limits, SandboxError, SandboxSpec, run

async def main() -> None:
    lines = []
    script = sys.argv[2]
    spec = SandboxSpec(argv=["/bin/sh", "-c", script], workspace=Path(sys.argv[1]),
                       limits=Limits(processes=32, file_size_mb=1, wall_seconds=60),
                       network=sys.argv[3] == "network")
    try:
        result = await run(spec, lines.append)
    except SandboxError as e:
        print(json.dumps({"refused": e.message}))
        return
    print(json.dumps({"lines": lines, "exit_code": result.exit_code, "reason": result.reason}))

asyncio.run(main())
"""


@needs_root
@pytest.mark.parametrize(
    ("script", "reason"),
    [
        ("id -u; cat /proc/self/status | grep -c CapEff:.0000000000000000", None),
        ("id -u; exec python3 forks.py", "process limit of 32 reached"),
        ("id -u; head -c 5000000 /dev/zero > big", "file size limit of 1 MiB exceeded"),
    ],
    ids=["runs", "processes", "file-size"],
)
def test_as_an_ordinary_user(script: str, reason: str | None) -> None:
    """shipway not running as root: no uid switch, no cgroups, rlimits only."""
    from tests.sandbox.test_limits import FORK_LOOP

    python = shutil.which("python3", path="/usr/bin")
    if python is None:
        unavailable("/usr/bin/python3 is not installed")
        return
    nobody = 65534
    repo = Path(__file__).resolve().parents[2]
    site = Path(pytest.__file__).resolve().parents[1]
    work = Path(tempfile.mkdtemp(prefix="sandbox-nobody-"))
    try:
        (work / "forks.py").write_text(FORK_LOOP)
        (work / "run.py").write_text(textwrap.dedent(NOBODY_RUN))
        for path in (work, work / "forks.py", work / "run.py"):
            os.chown(path, nobody, nobody)
        done = subprocess.run(
            [python, str(work / "run.py"), str(work), script, "none"],
            user=nobody,
            group=nobody,
            extra_groups=[],
            env={"PYTHONPATH": f"{repo}:{site}", "PATH": "/usr/bin:/bin"},
            cwd=work,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        outcome = json.loads(done.stdout.splitlines()[-1])
        assert outcome["lines"][0] == str(nobody)
        assert outcome["reason"] == reason, outcome
    finally:
        shutil.rmtree(work, ignore_errors=True)
