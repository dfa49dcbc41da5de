from __future__ import annotations

import asyncio
import fcntl
import os
import time
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


def held_elsewhere(path: Path, age: float) -> int:
    """An open file holding PATH's lock, as another process's install would, last touched
    AGE seconds ago."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    then = time.time() - age
    os.utime(fd, (then, then))
    return fd


async def test_an_install_that_shows_no_sign_of_life_is_waited_for_no_longer(
    tmp_path: Path,
) -> None:
    org = cache.BuildCache.of_organization(tmp_path, 7)
    org.prepare()
    stopped = held_elsewhere(org.index / ".k.lock", age=cache.STALE + 60)
    lines: list[str] = []

    async def waiting(line: str) -> None:
        lines.append(line)

    try:
        async with org.installing("k", tmp_path / "spare", waiting) as downloads:
            assert downloads == org.downloads, "the stopped install holds the key, not them"
    finally:
        os.close(stopped)
    assert lines[0] == "Waiting for another install of the same dependencies"
    assert "no sign of life" in lines[1] and "installing alongside" in lines[1]


async def test_an_install_beside_another_keeps_its_downloads_apart(tmp_path: Path) -> None:
    """Another key's install has the organization's downloads: this one neither waits for it
    nor shares them (they belong to that sandbox's uid meanwhile)."""
    org = cache.BuildCache.of_organization(tmp_path, 7)
    org.prepare()
    other = held_elsewhere(org.root / ".downloads.lock", age=0)
    lines: list[str] = []

    async def waiting(line: str) -> None:
        lines.append(line)

    try:
        async with org.installing("k", tmp_path / "spare", waiting) as downloads:
            assert downloads == tmp_path / "spare"
            assert (downloads / "pip").is_dir() and (downloads / "npm").is_dir()
    finally:
        os.close(other)
    assert lines == []


async def test_an_install_of_the_same_key_is_waited_for_while_it_lives(tmp_path: Path) -> None:
    org = cache.BuildCache.of_organization(tmp_path, 7)
    org.prepare()
    lines: list[str] = []
    order: list[str] = []

    async def waiting(line: str) -> None:
        lines.append(line)

    async def install(name: str, release: asyncio.Event | None) -> None:
        async with org.installing("k", tmp_path / name, waiting):
            order.append(name)
            if release is not None:
                await release.wait()
            order.append(f"{name} done")

    release = asyncio.Event()
    first = asyncio.create_task(install("first", release))
    while order != ["first"]:
        await asyncio.sleep(0.01)
    second = asyncio.create_task(install("second", None))
    while not lines:
        await asyncio.sleep(0.01)
    release.set()
    await asyncio.gather(first, second)
    assert order == ["first", "first done", "second", "second done"]
    assert lines == ["Waiting for another install of the same dependencies"]
