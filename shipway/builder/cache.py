"""The warm cache: download caches and the index from dependency keys to layers, shared by
the apps of one organization and never across organizations (a tenant's install scripts ran
while its layers and downloads were made).

DATA/cache/org-<id>/downloads/ is mounted into the organization's builds at /cache (pip and
npm keep their downloads there), one install at a time. DATA/cache/org-<id>/deps/<key> names
the layer built for a key; it is never visible inside a sandbox, so a build cannot point
another build at a layer. DATA/cache/<app id>/ holds what stays an app's own (podman's tmp).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

log = logging.getLogger(__name__)

PRUNE_ABOVE = 0.75
#: How often a build waiting for its organization's install checks whether it has ended.
WAIT_POLL = 0.1


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
        for sub in ("pip", "npm"):
            (self.downloads / sub).mkdir(parents=True, exist_ok=True)
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

    @contextlib.asynccontextmanager
    async def installing(self, waiting: Callable[[], Awaitable[None]]) -> AsyncIterator[None]:
        """Hold the cache for one install (its downloads are handed to that sandbox's uid),
        across processes; WAITING is awaited once if another install holds it first. A
        cancelled wait takes nothing with it."""
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            if not _try_lock(fd):
                await waiting()
                while not _try_lock(fd):
                    await asyncio.sleep(WAIT_POLL)
            yield
        finally:
            os.close(fd)


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
