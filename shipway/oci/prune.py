"""Cleanup of shipway's podman storage: the images of releases no longer kept, and, when the
disk fills up, everything nothing refers to.

A release image is one with a tag in shipway's repository, `localhost/shipway/<app>:build-<id>`,
which the oci backend gives every image it builds. Its labels alone do not make it one:
podman copies `--label` into every intermediate image of the build too, and those are the
build cache.

- `prune_releases` removes the release images whose ID is not kept
  (shipway.releases.retention: the last releases of each environment, and those live or
  deploying). It removes them without their parents (`rmi --no-prune`): the layers under a
  release image are build cache, which a later build may still start from.
- `relieve_pressure`, when the file system holding the storage is over 75 % full, prunes the
  releases too, then every image nothing refers to: no name, no child image, no container,
  not kept. That is the build cache (whole build stages included), and the working
  containers a killed build left behind go with it.

Whatever the reason, neither ever removes an image a container uses (podman refuses, and it
counts as kept), an image made in the last hour (a build's image before its release is
recorded, or the cache of a build still running), or an image with a name outside shipway's
repository (a base made or imported by an operator, or pulled for a build).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipway import children
from shipway.builder.cache import PRUNE_ABOVE, disk_usage_ratio
from shipway.oci.podman import APP_LABEL, REPOSITORY, Podman, PodmanError, digest, missing
from shipway.releases.retention import kept_images
from shipway.settings import DEFAULT_IMAGE_RETENTION
from shipway.store import Store

log = logging.getLogger(__name__)

#: Seconds an image is left alone after it was made.
YOUNG = 3600.0
#: Seconds after which a build's working container (podman's "external" containers, which
#: only a build makes in shipway's storage) is taken as left behind by a build that was killed.
ABANDONED = 86400.0
#: Seconds between two sweeps of the control plane.
EVERY = 600.0
#: Rounds of removing the images nothing refers to: each frees the parents of the last.
_ROUNDS = 100
#: Seconds `du` may take to measure the storage.
_DU_TIMEOUT = 300.0

Log = Callable[[str], Awaitable[Any]]


@dataclass(frozen=True)
class Pruned:
    """What a prune removed: images (by ID), shipway's tags taken off them, working containers
    of killed builds, and the bytes the storage takes less on disk."""

    images: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    containers: tuple[str, ...] = ()
    freed: int = 0

    def __bool__(self) -> bool:
        return bool(self.images or self.tags or self.containers)

    def sentence(self) -> str:
        """What was done, for people: "pruned 3 images, freed 412 MB"."""
        done = [_count(len(self.images), "image")] if self.images or not self.tags else []
        if self.tags and not self.images:
            done.append(_count(len(self.tags), "tag"))
        if self.containers:
            done.append(_count(len(self.containers), "working container") + " of killed builds")
        return f"pruned {' and '.join(done)}, freed {_size(self.freed)}"


async def prune_releases(podman: Podman, keep: set[str], young: float = YOUNG) -> Pruned:
    """Remove the release images whose ID is not in KEEP (sha256:<id>), keeping their layers
    as build cache; an image with names of someone else's only loses shipway's tags."""
    doomed = [image for image in await _listing(podman) if _unkept_release(image, keep, young)]
    if not doomed:
        return Pruned()
    before = await _disk_use(podman.root)
    await _remove_releases(podman, doomed)
    after = await _listing(podman)
    return _outcome(doomed, after, (), before - await _disk_use(podman.root))


async def relieve_pressure(
    podman: Podman, keep: set[str] | None, threshold: float = PRUNE_ABOVE, young: float = YOUNG
) -> Pruned | None:
    """When the disk holding the storage is over THRESHOLD full, prune the releases not in
    KEEP, then everything nothing refers to; None when it is not. KEEP None (a builder that
    cannot tell which releases are kept) leaves every release image in place."""
    if not podman.root.is_dir() or disk_usage_ratio(podman.root) <= threshold:
        return None
    listed = await _listing(podman)
    containers = await _abandoned(podman)
    doomed = [image for image in listed if keep is not None and _unkept_release(image, keep, young)]
    if not (containers or doomed or _unreferenced(listed, keep or set(), young)):
        return Pruned()  # without measuring: a disk full of something else stays so
    before = await _disk_use(podman.root)
    if containers:
        await _quietly(podman.run("rm", "--force", *containers))
    await _remove_releases(podman, doomed)
    tried: set[str] = set()
    for _ in range(_ROUNDS):
        found = _unreferenced(await _listing(podman), keep or set(), young)
        # An image podman refused once (a container took it since) is not asked for again.
        unreferenced = [image for image in found if image.id not in tried]
        if not unreferenced:
            break
        tried.update(image.id for image in unreferenced)
        doomed += unreferenced
        await _rmi(podman, [image.id for image in unreferenced])
    after = await _listing(podman)
    freed = before - await _disk_use(podman.root)
    return _outcome(doomed, after, containers, freed)


async def sweep(
    podman: Podman, keep: set[str] | None, threshold: float = PRUNE_ABOVE, young: float = YOUNG
) -> list[str]:
    """Prune what KEEP lets go (everything nothing refers to when the disk is over THRESHOLD
    full), and say what was done: a line for people, or none when nothing was."""
    ratio = disk_usage_ratio(podman.root) if podman.root.is_dir() else 0.0
    relieved = await relieve_pressure(podman, keep, threshold, young)
    if relieved is not None:
        now = disk_usage_ratio(podman.root)
        return [
            f"disk {ratio:.0%} full, over {threshold:.0%}: {relieved.sentence()} ({now:.0%} now)"
        ]
    if keep is None:
        return []
    pruned = await prune_releases(podman, keep, young)
    return [f"images of releases no longer kept: {pruned.sentence()}"] if pruned else []


async def after_build(
    podman: Podman,
    keep: Store | set[str] | None,
    log: Log,
    per_environment: int = DEFAULT_IMAGE_RETENTION,
    *,
    threshold: float = PRUNE_ABOVE,
    young: float = YOUNG,
) -> None:
    """After a successful build: prune, and say so in the build's LOG. KEEP is the store the
    kept releases are read from (their last PER_ENVIRONMENT in each environment), or the
    images kept, or None where neither is known: then only an over-full disk is relieved, of
    the build cache alone. Never fails the build: a prune that fails says why in the log."""
    try:
        kept = await asyncio.to_thread(_kept, keep, per_environment)
        said = await sweep(podman, kept, threshold, young)
    except Exception as e:  # the build succeeded whatever happens to the cleanup
        await log(f"-----> Images not pruned: {e}")
        return
    for line in said:
        await log(f"-----> Images: {line}")


async def keep_pruning(
    store: Store, data_dir: Path, per_environment: int = DEFAULT_IMAGE_RETENTION
) -> None:
    """Sweep the storage of DATA_DIR now, then every EVERY seconds, until cancelled."""
    podman = Podman(data_dir)
    while True:
        if missing() is None and podman.root.is_dir():
            try:
                kept = await asyncio.to_thread(_kept, store, per_environment)
                for line in await sweep(podman, kept):
                    log.info("images: %s", line)
            except Exception as e:  # podman or the store is away: next time
                log.warning("images not pruned: %s", e)
        await asyncio.sleep(EVERY)


# -- podman's listing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Stored:
    """One image as `podman images --all` lists it."""

    id: str
    names: tuple[str, ...]
    parent: str | None
    labels: dict[str, str]
    containers: int
    created: float

    @property
    def ours(self) -> tuple[str, ...]:
        return tuple(name for name in self.names if name.startswith(REPOSITORY))

    def young(self, seconds: float) -> bool:
        return self.created > time.time() - seconds


async def _listing(podman: Podman) -> list[_Stored]:
    """Every image, intermediate ones too, once each (podman lists one per name)."""
    found = {}
    for raw in await podman.json("images", "--all", "--format", "json") or ():
        image = _Stored(
            id=digest(raw["Id"]),
            names=tuple(raw.get("Names") or ()),
            parent=digest(raw["ParentId"]) if raw.get("ParentId") else None,
            labels=dict(raw.get("Labels") or {}),
            containers=int(raw.get("Containers") or 0),
            created=float(raw.get("Created") or 0),
        )
        found[image.id] = image
    return list(found.values())


def _unkept_release(image: _Stored, keep: set[str], young: float) -> bool:
    return (
        bool(image.ours)
        and APP_LABEL in image.labels
        and image.id not in keep
        and not image.containers
        and not image.young(young)
    )


def _unreferenced(images: list[_Stored], keep: set[str], young: float) -> list[_Stored]:
    """The images nothing refers to: no name, no child, no container, not kept, not young."""
    parents = {image.parent for image in images}
    return [
        image
        for image in images
        if not image.names
        and image.id not in parents
        and not image.containers
        and image.id not in keep
        and not image.young(young)
    ]


# -- removal -------------------------------------------------------------------------------------


async def _remove_releases(podman: Podman, images: list[_Stored]) -> None:
    """Take shipway's tags off IMAGES, and remove those it alone had named."""
    alone = []
    for image in images:
        others = len(image.names) > len(image.ours)
        # podman removes an image by ID only once it has one name left.
        untag = image.ours if others else image.ours[1:]
        if untag:
            await _quietly(podman.run("untag", image.id, *untag))
        if not others:
            alone.append(image.id)
    await _rmi(podman, alone)


async def _rmi(podman: Podman, ids: list[str]) -> None:
    """Remove IDS, without their parents. podman goes on past an image it refuses (one a
    container has started using since it was listed: kept) and says only the last refusal;
    the listing after it tells what went."""
    if ids:
        await _quietly(podman.run("rmi", "--no-prune", *ids))


async def _abandoned(podman: Podman) -> tuple[str, ...]:
    """The working containers of builds that began long ago: a build killed midway leaves its
    container behind, and with it the images and layers it was made from."""
    listed = await podman.json("ps", "--all", "--external", "--format", "json") or ()
    old = time.time() - ABANDONED
    return tuple(
        raw["Id"]
        for raw in listed
        if str(raw.get("State")).lower() == "storage" and float(raw.get("Created") or 0) < old
    )


async def _quietly(call: Awaitable[str]) -> None:
    """Run a removal whose refusal only means that something stays (it is in use, or gone
    already): the listing after it tells what went."""
    try:
        await call
    except PodmanError as e:
        log.info("podman kept something: %s", e.message)


def _outcome(
    doomed: Iterable[_Stored], after: list[_Stored], containers: tuple[str, ...], freed: int
) -> Pruned:
    remaining = {image.id: image for image in after}
    gone = tuple(dict.fromkeys(image.id for image in doomed if image.id not in remaining))
    names = {name for image in after for name in image.names}
    tags = tuple(name for image in doomed for name in image.ours if name not in names)
    return Pruned(images=gone, tags=tags, containers=containers, freed=max(0, freed))


# -- measures ------------------------------------------------------------------------------------


async def _disk_use(root: Path) -> int:
    """Bytes the storage takes on disk, by `du`: blocks shared by hard links once, and the
    mounts of running containers (other file systems) not at all. Unlike the sizes podman
    reports, where the layers images share count in each, the difference of two measures is
    what a prune freed, give or take what a build wrote in between."""
    proc = await children.start(
        "du",
        "--summarize",
        "--one-file-system",
        "--block-size=1",
        str(root),
        stdin=children.DEVNULL,
        stdout=children.PIPE,
        stderr=children.DEVNULL,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), _DU_TIMEOUT)
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    # du reports what it could read even when some directory was not readable.
    first = out.split(maxsplit=1)[0] if out.strip() else b"0"
    return int(first) if first.isdigit() else 0


def _kept(keep: Store | set[str] | None, per_environment: int) -> set[str] | None:
    if not isinstance(keep, Store):
        return keep
    with keep.transaction() as session:
        return kept_images(session, per_environment)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _size(n: int) -> str:
    if n >= 1e9:
        return f"{n / 1e9:.1f} GB"
    if n >= 1e6:
        return f"{n / 1e6:.0f} MB"
    return f"{n / 1e3:.0f} kB"
