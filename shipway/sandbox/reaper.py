"""The sandbox's supervisor, built from reaper.c with the host's C compiler.

shipway starts this small program in place of bubblewrap (see child.py): it sets up
bubblewrap's process and reaps everything below it. So a sandbox's supervisor holds a few
hundred KiB rather than a copy of shipway's memory, or even a bare interpreter's few MiB, and
shipway itself never forks for a sandbox. It is built the first time a process of shipway needs
it, beside its source (in __pycache__, where Python keeps its own compiled code), under a name
that changes with the source; where shipway's own files cannot be written, in a private
directory of that process instead.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from shipway.sandbox.spec import SandboxError

SOURCE = Path(__file__).with_name("reaper.c")


@functools.cache
def program() -> str:
    """The path of the built supervisor, building it first if need be."""
    name = f"reaper-{hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]}"
    built = _directory() / name
    if not os.access(built, os.X_OK):
        _compile(built)
    return str(built)


def _directory() -> Path:
    cache = SOURCE.parent / "__pycache__"
    with contextlib.suppress(OSError):
        cache.mkdir(exist_ok=True)
    if os.access(cache, os.W_OK | os.X_OK):
        return cache
    private = tempfile.mkdtemp(prefix="shipway-reaper-")
    atexit.register(shutil.rmtree, private, True)
    return Path(private)


def _compile(target: Path) -> None:
    cc = shutil.which("cc")
    if cc is None:
        raise SandboxError(
            "cannot build the sandbox's supervisor: no C compiler (cc); "
            "install gcc and libc6-dev (python3 -m shipway.system --install does)"
        )
    # Built under a name of this process's own, then renamed: others may be building it too.
    partial = target.with_name(f"{target.name}.{os.getpid()}")
    done = subprocess.run(
        [cc, "-O2", "-Wall", "-o", str(partial), str(SOURCE)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if ": error: " in line]
        raise SandboxError(
            f"cannot build the sandbox's supervisor from {SOURCE.name}: "
            f"{errors[0] if errors else f'cc exited with {done.returncode}'}"
        )
    os.replace(partial, target)
