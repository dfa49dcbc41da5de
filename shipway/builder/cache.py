"""The warm cache: per-app download caches and the index from dependency keys to layers.

DATA/cache/<app id>/downloads/ is mounted into the app's builds at /cache (pip and npm keep
their downloads there). DATA/cache/<app id>/deps/<key> names the layer built for a key; it is
never visible inside a sandbox, so a build cannot point another build at a layer.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

PRUNE_ABOVE = 0.75


class AppCache:
    def __init__(self, data_dir: Path, app_id: int) -> None:
        self.root = data_dir / "cache" / str(app_id)
        self.downloads = self.root / "downloads"
        self.index = self.root / "deps"

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
