"""Unix socket paths of any length: a socket's address holds at most 107 bytes, and a data dir
deep in a tree can make the path of an add-on's socket longer than that."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shipway.errors import ServiceError

#: The most bytes of a Unix socket's path (sun_path, less its closing NUL).
MAX_PATH = 107


@contextmanager
def reachable(directory: Path) -> Iterator[str]:
    """A short path to DIRECTORY while the block runs (/proc/self/fd/N of a descriptor this
    process holds; a child given that descriptor with pass_fds sees it at the same path)."""
    fd = os.open(directory, os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)


def fd_of(short: str) -> int:
    """The descriptor behind a path `reachable` gave."""
    return int(short.rsplit("/", 1)[1])


def check(path: Path) -> Path:
    """PATH, a socket a server binds itself, if it fits in an address; else say what to do."""
    if len(os.fsencode(path)) > MAX_PATH:
        raise ServiceError(
            f"the socket path {path} is longer than {MAX_PATH} bytes: "
            "run shipway with a data dir at a shorter path (--data)"
        )
    return path
