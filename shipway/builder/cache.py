"""The warm cache: download caches and the index from dependency keys to layers, shared by
the apps of one organization and never across organizations (a tenant's install scripts ran
while its layers and downloads were made).

DATA/cache/org-<id>/downloads/ is mounted into the organization's installs at /cache (pip and
npm keep their downloads there), one install at a time; an install that finds them in use
downloads into a directory of its own. DATA/cache/org-<id>/deps/<key> names the layer built
for a key; it is never visible inside a sandbox, so a build cannot point another build at a
layer. Installs of different keys run side by side; a build whose key is being installed
waits for that install and reuses its layer. DATA/cache/<app id>/ holds what stays an app's
own (podman's tmp).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

log = logging.getLogger(__name__)

PRUNE_ABOVE = 0.75
#: How often a build waiting for another install of its key checks whether it has ended.
WAIT_POLL = 0.1
#: How often an install touches its key's lock file to show it is alive, and after how many
#: seconds without a touch a build waiting for it installs alongside (the install's process
#: is stopped or hung). Two installs of one key make equal layers; the last one kept wins.
HEARTBEAT = 1.0
STALE = 15.0


class BuildCache:
    """The cache under DATA/cache/NAME: `org-<id>` for an organization's, an app id for an
    app's own."""

    def __init__(self, data_dir: Path, name: str) -> None:
        self.root = data_dir / "cache" / name
        self.downloads = self.root / "downloads"
        self.index = self.root / "deps"

    @classmethod
    def of_organization(cls, data_dir: Path, organization_id: int) -> BuildCache:
        return cls(data_dir, f"org-{organization_id}")

    @classmethod
    def of_app(cls, data_dir: Path, app_id: int) -> BuildCache:
        return cls(data_dir, str(app_id))

    def prepare(self) -> None:
        self.prepare_downloads(self.downloads)
        self.index.mkdir(parents=True, exist_ok=True)

    def layer_for(self, key: str) -> str | None:
        try:
            return (self.index / key).read_text().strip() or None
        except OSError:
            return None

    def remember(self, key: str, digest: str) -> None:
        tmp = self.index / f".{key}.tmp"
        tmp.write_text(digest)
        tmp.replace(self.index / key)

    def prepare_downloads(self, path: Path) -> Path:
        for sub in ("pip", "npm"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        return path

    @contextlib.asynccontextmanager
    async def installing(
        self, key: str, spare: Path, waiting: Callable[[str], Awaitable[None]]
    ) -> AsyncIterator[Path]:
        """Hold KEY for one install, across processes. A build of the same key waits for it
        (WAITING is awaited with a line for the build's log) and then finds its layer, unless the
        install shows no sign of life for STALE seconds. Yields where the install keeps its
        downloads: the organization's, handed to that sandbox's uid, when no other install
        has them; else SPARE, the build's own. A cancelled wait takes nothing with it."""
        with _lock_file(self.index / f".{key}.lock") as key_lock:
            held = _try_lock(key_lock)
            if not held:
                await waiting("Waiting for another install of the same dependencies")
                while not (held := _try_lock(key_lock)):
                    if time.time() - os.fstat(key_lock).st_mtime > STALE:
                        quiet = f"It showed no sign of life for {STALE:.0f}s: installing alongside"
                        await waiting(quiet)
                        break
                    await asyncio.sleep(WAIT_POLL)
            alive = None
            if held:
                os.utime(key_lock)
                alive = asyncio.create_task(_beating(key_lock))
            try:
                with _lock_file(self.root / ".downloads.lock") as downloads_lock:
                    if _try_lock(downloads_lock):
                        yield self.downloads
                    else:
                        yield self.prepare_downloads(spare)
            finally:
                if alive is not None:
                    alive.cancel()


@contextlib.contextmanager
def _lock_file(path: Path) -> Iterator[int]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        yield fd
    finally:
        os.close(fd)


async def _beating(fd: int) -> None:
    """Touch FD's file every HEARTBEAT seconds until cancelled."""
    while True:
        await asyncio.sleep(HEARTBEAT)
        os.utime(fd)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def disk_usage_ratio(path: Path) -> float:
    usage = shutil.disk_usage(path)
    return usage.used / usage.total if usage.total else 0.0


def prune(data_dir: Path, threshold: float = PRUNE_ABOVE) -> list[Path]:
    """Delete download caches, least recently used first, while the disk is over THRESHOLD full."""
    root = data_dir / "cache"
    if not root.is_dir() or disk_usage_ratio(data_dir) <= threshold:
        return []
    caches = sorted(
        (p for p in root.glob("*/downloads") if p.is_dir()), key=lambda p: p.stat().st_mtime
    )
    removed = []
    for cache in caches:
        if disk_usage_ratio(data_dir) <= threshold:
            break
        shutil.rmtree(cache, ignore_errors=True)
        removed.append(cache)
        log.info("pruned build cache %s: disk over %.0f%% full", cache, threshold * 100)
    return removed
