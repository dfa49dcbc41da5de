from __future__ import annotations

import os
from pathlib import Path

import pytest

from shipway.builder import cache


def downloads(data: Path, app_id: int, age: int) -> Path:
    path = data / "cache" / str(app_id) / "downloads"
    (path / "pip").mkdir(parents=True)
    (path / "pip" / "wheel").write_bytes(b"x" * 10)
    os.utime(path, (age, age))
    return path


def test_nothing_is_pruned_below_the_threshold(tmp_path: Path) -> None:
    kept = downloads(tmp_path, 1, 1000)
    assert cache.prune(tmp_path, threshold=1.0) == []
    assert kept.is_dir()


def test_the_least_recently_used_caches_go_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = downloads(tmp_path, 1, 1000), downloads(tmp_path, 2, 2000)
    ratios = iter([0.9, 0.9, 0.5])
    monkeypatch.setattr(cache, "disk_usage_ratio", lambda _path: next(ratios))
    assert cache.prune(tmp_path) == [old]
    assert not old.exists() and new.is_dir()
    assert (tmp_path / "cache" / "1").is_dir(), "the layer index is not a download cache"


def test_the_index_remembers_layers(tmp_path: Path) -> None:
    app = cache.BuildCache.of_organization(tmp_path, 7)
    app.prepare()
    assert app.layer_for("k") is None
    app.remember("k", "sha256:" + "a" * 64)
    assert app.layer_for("k") == "sha256:" + "a" * 64
