"""Real podman and mmdebstrap: image storage of its own for each test, a Debian base made once
per test run, and small image archives made once per process.

`needs_podman()` and `needs_mmdebstrap()` skip a test on a machine that lacks them and fail it
in CI (CI=true), where they must be installed; any test or fixture may call them."""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shipway.datadir import pid_alive
from shipway.oci import images, podman
from shipway.oci.images import Images
from shipway.store import Store
from tests.cli.conftest import server  # noqa: F401  (the CLI tests' API, for the CLI's)
from tests.conftest import unavailable
from tests.helpers import migrated_store

#: What the tiny image says about itself, as an image shipway built would.
TINY_LABELS = {podman.APP_LABEL: "web", podman.BUILD_LABEL: "7"}


def needs_podman() -> None:
    """Skip unless podman and runc are installed (fail in CI)."""
    problem = podman.missing()
    if problem is not None:
        unavailable(problem)


def needs_mmdebstrap() -> None:
    """Skip unless mmdebstrap, podman and runc are installed (fail in CI)."""
    needs_podman()
    if shutil.which("mmdebstrap") is None:
        unavailable("mmdebstrap is not installed: run `apt-get install mmdebstrap`")


def tidy(store: Images) -> None:
    """Remove STORE's containers and its podman run root (on /run); the storage itself goes
    with the test's tmp_path."""
    asyncio.run(_remove_containers(store.podman))
    shutil.rmtree(store.podman.runroot, ignore_errors=True)


async def _remove_containers(pod: podman.Podman) -> None:
    if pod.root.exists():
        await pod.run("rm", "--all", "--force")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """SQLite only: what images do with the store is one audit entry each, a plain row the
    store's own suite runs on both databases."""
    found = migrated_store(f"sqlite:///{tmp_path / 'shipway.db'}")
    yield found
    found.close()


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Images]:
    """The images of a data dir of the test's own (the API's, with the `settings` fixture)."""
    needs_podman()
    found = Images(tmp_path / "data")
    yield found
    tidy(found)


@pytest.fixture(scope="session")
def debian_tar(request: pytest.FixtureRequest) -> Path:
    """debian:bookworm-slim's root file system as `images base` makes it (real mmdebstrap,
    about 20 s), made once per test run however many workers it has. The tar stays in the
    pytest cache until a later run finds its run over."""
    needs_mmdebstrap()
    assert request.config.cache is not None
    folder = Path(request.config.cache.mkdir("shipway-oci"))
    # xdist's workers are children of the run's pytest process, which names the run.
    run = os.getppid() if hasattr(request.config, "workerinput") else os.getpid()
    out = folder / f"bookworm-slim-{run}.tar"
    with (folder / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not out.exists():
            for old in folder.glob("bookworm-slim-*"):
                if not pid_alive(int(old.name.split("-")[-1].split(".")[0])):
                    old.unlink(missing_ok=True)
            part = out.with_suffix(".part")
            asyncio.run(images.rootfs(images.BASES["debian:bookworm-slim"], part))
            part.rename(out)
    return out


@dataclass(frozen=True)
class Archives:
    """Archives of localhost/tiny:1 (labelled as shipway's build 7 of web) in both formats,
    and one of two images, as `podman save` writes them."""

    docker: Path
    oci: Path
    two: Path
    image_id: str


@pytest.fixture(scope="session")
def archives(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archives]:
    needs_podman()
    root = tmp_path_factory.mktemp("archives")
    maker = Images(root / "data")
    image_id = asyncio.run(_save_tiny(maker.podman, root))
    yield Archives(root / "docker.tar", root / "oci.tar", root / "two.tar", image_id)
    tidy(maker)


async def _save_tiny(pod: podman.Podman, root: Path) -> str:
    changes = [f"--change=LABEL {key}={value}" for key, value in TINY_LABELS.items()]
    for name, text in (("tiny", "hello\n"), ("other", "other\n")):
        (root / name).mkdir()
        (root / name / "hello.txt").write_text(text)
        with tarfile.open(root / f"{name}-rootfs.tar", "w") as tar:
            tar.add(root / name, arcname=".")
        await pod.run("import", *changes, str(root / f"{name}-rootfs.tar"), f"localhost/{name}:1")
    await pod.run("save", "--output", str(root / "docker.tar"), "localhost/tiny:1")
    await pod.run(
        "save", "--format", "oci-archive", "--output", str(root / "oci.tar"), "localhost/tiny:1"
    )
    await pod.run(
        "save", "--multi-image-archive", "--output", str(root / "two.tar"),
        "localhost/tiny:1", "localhost/other:1",
    )  # fmt: skip
    return "sha256:" + (await pod.run("image", "inspect", "--format", "{{.Id}}", "tiny:1")).strip()


def bin_with(tmp_path: Path, *commands: str) -> str:
    """A PATH with only COMMANDS on it, for a machine that lacks the others."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    for command in commands:
        found = shutil.which(command)
        assert found is not None, command
        (folder / command).symlink_to(found)
    return str(folder)
