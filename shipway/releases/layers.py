"""Layers: directory trees named by the sha256 of a canonical tar of their contents.

A layer is written once into DATA/layers/sha256/<hex>/ and never changed; the same tree always
gets the same digest (entries sorted, owners, times and modes normalised).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _entries(root: Path) -> Iterator[Path]:
    """Every path below ROOT in a stable order, directories before their contents."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(dirpath)
        for name in [*dirnames, *sorted(filenames)]:
            yield base / name


def _canonical(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    if info.isfile():
        info.mode = 0o755 if info.mode & stat.S_IXUSR else 0o644
    elif info.isdir():
        info.mode = 0o755
    return info


class _HashWriter:
    def __init__(self) -> None:
        self.sha = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        return len(data)


def tree_digest(root: Path) -> str:
    """The "sha256:<hex>" digest of ROOT's canonical tar; identical trees, identical digests."""
    sink = _HashWriter()
    write_tar(root, sink)
    return f"sha256:{sink.sha.hexdigest()}"


def write_tar(root: Path, out: Any) -> None:
    """ROOT's canonical tar, written to the file object OUT: how a layer travels."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for path in _entries(root):
            info = _canonical(tar.gettarinfo(str(path), arcname=str(path.relative_to(root))))
            if info.isfile():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            elif info.isdir() or info.issym():
                tar.addfile(info)


class LayerStore:
    """DATA/layers/sha256/<hex>/: immutable, content-addressed directory trees."""

    def __init__(self, root: Path) -> None:
        self.root = root / "sha256"

    def path(self, digest: str) -> Path:
        algo, _, hexdigest = digest.partition(":")
        if algo != "sha256" or len(hexdigest) != 64:
            raise ValueError(f"not a sha256 digest: {digest!r}")
        return self.root / hexdigest

    def has(self, digest: str) -> bool:
        return self.path(digest).is_dir()

    def receive(self, archive: Path, digest: str) -> None:
        """Store the layer DIGEST from ARCHIVE, a tar of it (see `write_tar`); ValueError if
        its contents are not those of DIGEST, or are not a tree of files, dirs and links."""
        target = self.path(digest)
        if target.is_dir():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".in-"))
        try:
            tree = staging / "t"
            tree.mkdir()
            try:
                with tarfile.open(archive, mode="r:") as tar:
                    for member in tar:
                        if not (member.isfile() or member.isdir() or member.issym()):
                            raise ValueError(f"{member.name}: a layer holds files, dirs and links")
                        tar.extract(member, tree, filter="tar")
            except (tarfile.TarError, OSError) as e:
                raise ValueError(f"not a layer archive: {e}") from e
            found = tree_digest(tree)
            if found != digest:
                raise ValueError(f"the archive's digest is {found}, not {digest}")
            self.add(tree)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def add(self, tree: Path) -> str:
        """Move TREE into the store under its digest (or drop it if present); return the digest."""
        digest = tree_digest(tree)
        target = self.path(digest)
        if target.is_dir():
            shutil.rmtree(tree, ignore_errors=True)
            return digest
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(tree, target)
        except OSError:
            # Another build stored the same tree first, or TREE is on another filesystem.
            if not target.is_dir():
                staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".in-"))
                shutil.copytree(tree, staging / "t", symlinks=True)
                os.rename(staging / "t", target)
                shutil.rmtree(staging, ignore_errors=True)
            shutil.rmtree(tree, ignore_errors=True)
        _make_read_only(target)
        return digest


def _make_read_only(root: Path) -> None:
    for path in [root, *_entries(root)]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
