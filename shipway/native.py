"""shipway's small C programs, built with the host's C compiler.

Each is built the first time a process of shipway needs it, beside its source (in
__pycache__, where Python keeps its own compiled code), under a name that changes with the
source; where shipway's own files cannot be written, in a private directory of that process
instead. gcc and libc6-dev are among the host packages (`python3 -m shipway.system`).
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

from shipway.errors import ServiceError


class NativeError(ServiceError):
    """Raised when one of shipway's C programs cannot be built here; the message says why."""

    code = "native_program_unavailable"


@functools.cache
def program(source: Path) -> str:
    """The path of the program built from SOURCE, building it first if need be."""
    name = f"{source.stem}-{hashlib.sha256(source.read_bytes()).hexdigest()[:16]}"
    built = _directory(source) / name
    if not os.access(built, os.X_OK):
        _compile(source, built)
    return str(built)


def _directory(source: Path) -> Path:
    cache = source.parent / "__pycache__"
    with contextlib.suppress(OSError):
        cache.mkdir(exist_ok=True)
    if os.access(cache, os.W_OK | os.X_OK):
        return cache
    private = tempfile.mkdtemp(prefix="shipway-native-")
    atexit.register(shutil.rmtree, private, True)
    return Path(private)


def _compile(source: Path, target: Path) -> None:
    cc = shutil.which("cc")
    if cc is None:
        raise NativeError(
            f"cannot build shipway's program {source.name}: no C compiler (cc); "
            "install gcc and libc6-dev (python3 -m shipway.system --install does)"
        )
    # Built under a name of this process's own, then renamed: others may be building it too.
    partial = target.with_name(f"{target.name}.{os.getpid()}")
    done = subprocess.run(
        [cc, "-O2", "-Wall", "-o", str(partial), str(source)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if ": error: " in line]
        raise NativeError(
            f"cannot build shipway's program from {source.name}: "
            f"{errors[0] if errors else f'cc exited with {done.returncode}'}"
        )
    os.replace(partial, target)
