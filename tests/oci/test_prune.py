"""shipway.oci.prune over real podman: release images pruned, build cache kept until the disk
fills, and what is in use, kept or someone else's never touched."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from shipway.oci import prune
from shipway.oci.images import Images
from shipway.oci.podman import APP_LABEL, BUILD_LABEL, ULIMITS, Podman
from shipway.oci.prune import Pruned
from shipway.store import Store
from tests.oci.conftest import bin_with

BASE = "localhost/base:1"
MB = 1_000_000


def release(build: int) -> str:
    return f"localhost/shipway/web:build-{build}"


async def make(podman: Podman, root: Path, name: str | None, size: int = MB, **labels: str) -> str:
    """An image of one layer holding SIZE random bytes, named NAME, labelled LABELS: quick to
    make, and each one's layer its own."""
    folder = root / f"rootfs-{len(list(root.iterdir()))}"
    folder.mkdir()
    (folder / "blob").write_bytes(os.urandom(size))
    tar = folder.with_suffix(".tar")
    with tarfile.open(tar, "w") as out:
        out.add(folder, arcname=".")
    changes = [f"--change=LABEL {key}={value}" for key, value in labels.items()]
    said = await podman.run("import", "--quiet", *changes, str(tar), *([name] if name else []))
    return "sha256:" + said.strip().removeprefix("sha256:")


async def build(podman: Podman, root: Path, number: int, second: str) -> str:
    """The image the oci backend would build for build NUMBER of web: a chain of two COPY steps
    on BASE, the second's file holding SECOND."""
    context = root / f"context-{number}"
    context.mkdir()
    (context / "first").write_bytes(b"f" * MB)
    (context / "second").write_text(second * MB)
    (context / "Dockerfile").write_text(f"FROM {BASE}\nCOPY first /first\nCOPY second /second\n")
    iidfile = root / f"iid-{number}"
    await podman.run(
        "build", "--layers", "--pull=never", "--network", "none", *ULIMITS,
        "--iidfile", str(iidfile),
        "--tag", release(number), "--label", f"{APP_LABEL}=web",
        "--label", f"{BUILD_LABEL}={number}", str(context),
    )  # fmt: skip
    return "sha256:" + iidfile.read_text().strip().removeprefix("sha256:")


async def ids(podman: Podman) -> set[str]:
    """Every image in storage, intermediate ones too."""
    listed = await podman.json("images", "--all", "--format", "json") or ()
    return {f"sha256:{raw['Id']}" for raw in listed}


async def names(podman: Podman, image_id: str) -> set[str]:
    [found] = await podman.json("image", "inspect", image_id)
    return set(found.get("RepoTags") or ())


@pytest.fixture
def podman(storage: Images) -> Podman:
    return storage.podman


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "work").mkdir()
    return tmp_path / "work"


async def test_releases_not_kept_are_pruned_and_the_rest_stays(podman: Podman, work: Path) -> None:
    labels = {APP_LABEL: "web", BUILD_LABEL: "1"}
    gone = await make(podman, work, release(1), **labels)
    kept = await make(podman, work, release(2), **labels)
    used = await make(podman, work, release(3), **labels)
    await podman.run("create", "--name", "instance", "--network", "none", used, "/blob")
    shared = await make(podman, work, release(4), **labels)
    await podman.run("tag", shared, "example.com/team/web:4")
    # Labelled as shipway's (intermediate images are too) but without its tag: not a release.
    unnamed = await make(podman, work, None, **labels)
    elsewhere = await make(podman, work, "localhost/tiny:1", **labels)

    pruned = await prune.prune_releases(podman, {kept}, young=0)

    assert pruned.images == (gone,)
    assert set(pruned.tags) == {release(1), release(4)}
    # One layer of 1 MB went; nothing else did (du counts whole blocks and directories).
    assert MB <= pruned.freed < 2 * MB
    assert pruned.sentence() == "pruned 1 image, freed 1 MB"
    assert await ids(podman) == {kept, used, shared, unnamed, elsewhere}
    assert await names(podman, shared) == {"example.com/team/web:4"}
    assert await names(podman, used) == {release(3)}
    assert await prune.prune_releases(podman, {kept}, young=0) == Pruned()


async def test_a_release_image_made_in_the_last_hour_stays(podman: Podman, work: Path) -> None:
    made = await make(podman, work, release(1), **{APP_LABEL: "web"})
    assert await prune.prune_releases(podman, set()) == Pruned()
    assert made in await ids(podman)


async def test_a_release_leaves_its_layers_as_build_cache(podman: Podman, work: Path) -> None:
    await make(podman, work, BASE)
    old = await build(podman, work, 1, "a")
    new = await build(podman, work, 2, "b")
    built = await ids(podman)

    pruned = await prune.prune_releases(podman, {new}, young=0)

    assert pruned.images == (old,) and pruned.tags == (release(1),)
    assert await ids(podman) == built - {old}
    # The steps under it stay: a build of the same source again starts warm.
    said = await podman.run(
        "build", "--layers", "--pull=never", "--network", "none", *ULIMITS, str(work / "context-1")
    )
    assert said.count("Using cache") == 2


async def test_under_pressure_everything_unreferenced_goes(podman: Podman, work: Path) -> None:
    base = await make(podman, work, BASE)
    first = await build(podman, work, 1, "a")
    first_chain = await ids(podman) - {base}
    second = await build(podman, work, 2, "b")
    second_chain = await ids(podman) - first_chain - {base}
    dangling = await make(podman, work, None)
    kept_unnamed = await make(podman, work, None)
    everything = await ids(podman)

    assert await prune.relieve_pressure(podman, set(), threshold=1.0, young=0) is None
    assert await ids(podman) == everything
    relieved = await prune.relieve_pressure(podman, {second, kept_unnamed}, threshold=0.0, young=0)

    assert relieved is not None
    left = await ids(podman)
    assert set(relieved.images) == everything - left
    assert first in relieved.images and dangling in relieved.images
    assert {base, kept_unnamed} | second_chain <= left
    # Of build 1's chain (COPY, COPY, LABEL, LABEL) only the first COPY stays: the kept
    # release was built on it too.
    assert len(first_chain & left) == 1
    assert relieved.tags == (release(1),)
    # build 1's second COPY step and the dangling image: 2 MB.
    assert 2 * MB <= relieved.freed < 3 * MB
    assert relieved.sentence() == "pruned 4 images, freed 2 MB"


async def test_under_pressure_with_nothing_to_prune_nothing_is_measured(
    podman: Podman, work: Path
) -> None:
    made = await make(podman, work, release(1), **{APP_LABEL: "web"})
    assert await prune.relieve_pressure(podman, {made}, threshold=0.0, young=0) == Pruned()
    assert await ids(podman) == {made}


async def test_under_pressure_without_knowing_what_is_kept_releases_stay(
    podman: Podman, work: Path
) -> None:
    tagged = await make(podman, work, release(1), **{APP_LABEL: "web"})
    dangling = await make(podman, work, None)
    relieved = await prune.relieve_pressure(podman, None, threshold=0.0, young=0)
    assert relieved is not None and relieved.images == (dangling,)
    assert await ids(podman) == {tagged}


async def test_under_pressure_a_killed_builds_container_goes(
    podman: Podman, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await import_runnable(podman, work)
    context = work / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {BASE}\nRUN sleep 1\n")
    building = subprocess.Popen(
        podman.argv("build", "--pull=never", "--network", "none", *ULIMITS, str(context)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            if await working_containers(podman):
                break
            await asyncio.sleep(0.1)
    finally:
        building.kill()
        building.wait()
    [left] = await working_containers(podman)
    await asyncio.sleep(1.5)  # the RUN step's own process ends
    monkeypatch.setattr(prune, "ABANDONED", 0.0)

    relieved = await prune.relieve_pressure(podman, set(), threshold=0.0, young=0)

    assert relieved is not None and relieved.containers == (left,)
    assert await working_containers(podman) == []
    assert "1 working container of killed builds" in relieved.sentence()


async def import_runnable(podman: Podman, work: Path) -> None:
    """BASE with the machine's own sh and sleep, and the libraries they need."""
    root = work / "runnable"
    for command in ("sh", "sleep"):
        found = shutil.which(command)
        assert found is not None
        said = subprocess.run(["ldd", found], capture_output=True, text=True).stdout
        needed = [part for part in said.split() if part.startswith("/")]
        for path in [os.path.realpath(found), *needed]:
            target = root / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
        (root / "bin").mkdir(exist_ok=True)
        if not (root / "bin" / command).exists():
            (root / "bin" / command).symlink_to(os.path.realpath(found))
    with tarfile.open(work / "runnable.tar", "w") as out:
        out.add(root, arcname=".")
    await podman.run("import", "--quiet", str(work / "runnable.tar"), BASE)


async def working_containers(podman: Podman) -> list[str]:
    listed = await podman.json("ps", "--all", "--external", "--format", "json") or ()
    return [raw["Id"] for raw in listed if str(raw.get("State")).lower() == "storage"]


async def test_after_a_build_the_log_says_what_was_pruned(podman: Podman, work: Path) -> None:
    made = await make(podman, work, release(1), **{APP_LABEL: "web"})
    lines: list[str] = []

    async def log(line: str) -> None:
        lines.append(line)

    # Nothing is an hour old yet, and the disk is not 75 % full: nothing to say.
    await prune.after_build(podman, set(), log)
    assert lines == [] and await ids(podman) == {made}
    await prune.after_build(podman, set(), log, young=0)
    assert lines == ["-----> Images: images of releases no longer kept: pruned 1 image, freed 1 MB"]
    assert await ids(podman) == set()


async def test_the_store_says_what_is_kept(podman: Podman, work: Path, store: Store) -> None:
    """No release in the store: no release image is kept, once it is an hour old."""
    made = await make(podman, work, release(1), **{APP_LABEL: "web"})
    lines: list[str] = []

    async def log(line: str) -> None:
        lines.append(line)

    await prune.after_build(podman, store, log)
    assert lines == [] and await ids(podman) == {made}
    await prune.after_build(podman, store, log, young=0)
    assert await ids(podman) == set() and len(lines) == 1


async def test_the_control_plane_sweeps_at_start(
    podman: Podman,
    work: Path,
    store: Store,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made = await make(podman, work, release(1), **{APP_LABEL: "web"})
    swept: list[set[str] | None] = []
    sweep = prune.sweep

    async def watched(podman: Podman, keep: set[str] | None) -> list[str]:
        swept.append(keep)
        return await sweep(podman, keep)

    monkeypatch.setattr(prune, "sweep", watched)
    sweeping = asyncio.create_task(prune.keep_pruning(store, podman.data_dir))
    for _ in range(100):
        if swept:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    assert not sweeping.done()  # swept, and waiting for the next time
    sweeping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sweeping
    assert swept == [set()]
    assert await ids(podman) == {made}  # made this very hour
    assert "not pruned" not in caplog.text


async def test_after_a_build_under_pressure_the_log_says_how_much_was_freed(
    podman: Podman, work: Path
) -> None:
    release_image = await make(podman, work, release(1), **{APP_LABEL: "web"})
    dangling = await make(podman, work, None)
    lines: list[str] = []

    async def log(line: str) -> None:
        lines.append(line)

    # A builder that cannot tell which releases are kept prunes only the build cache.
    await prune.after_build(podman, None, log, threshold=0.0, young=0)
    assert await ids(podman) == {release_image}
    [line] = lines
    assert line.startswith("-----> Images: disk ") and "full, over 0%: " in line
    assert "pruned 1 image, freed 1 MB" in line
    assert dangling not in await ids(podman)


async def test_a_failed_prune_never_fails_the_build(
    podman: Podman, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines: list[str] = []

    async def log(line: str) -> None:
        lines.append(line)

    (podman.root).mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("PATH", bin_with(tmp_path, "du"))
    await prune.after_build(podman, set(), log)
    assert lines == ["-----> Images not pruned: podman and runc are not installed: "
                     "run `apt-get install podman runc`"]  # fmt: skip


def test_the_sentence_counts_what_went() -> None:
    assert Pruned().sentence() == "pruned 0 images, freed 0 kB"
    assert Pruned(tags=("a", "b")).sentence() == "pruned 2 tags, freed 0 kB"
    two = Pruned(images=("x", "y"), containers=("c",), freed=2_500_000_000)
    assert (
        two.sentence() == "pruned 2 images and 1 working container of killed builds, freed 2.5 GB"
    )
    assert not Pruned() and Pruned(tags=("a",))
