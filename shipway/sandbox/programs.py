"""The sandbox's small C programs, built with the host's C compiler.

- reaper.c is each sandbox's supervisor, which shipway starts in place of bubblewrap (see
  child.py): it sets up bubblewrap's process and reaps everything below it. So a supervisor
  holds a few hundred KiB rather than a copy of shipway's memory, or even a bare
  interpreter's few MiB.
- netsetup.c gives a networked sandbox its routes and starts its slirp4netns (see network.py).

With them shipway never forks for a sandbox: it starts each with vfork and exec, which costs
the same whatever shipway's size, where a fork of a node holding 100 MiB took 10-15 ms. Each
is built the first time a process of shipway needs it, beside its source (in __pycache__,
where Python keeps its own compiled code), under a name that changes with the source; where
shipway's own files cannot be written, in a private directory of that process instead.
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

SUPERVISOR = Path(__file__).with_name("reaper.c")
NETWORK = Path(__file__).with_name("netsetup.c")


@functools.cache
def program(source: Path) -> str:
    """The path of the program built from SOURCE, building it first if need be."""
    name = f"{source.stem}-{hashlib.sha256(source.read_bytes()).hexdigest()[:16]}"
    built = _directory(source) / name
    if not os.access(built, os.X_OK):
        _compile(source, built)
    return str(built)


def supervisor() -> str:
    return program(SUPERVISOR)


def network() -> str:
    return program(NETWORK)


def _directory(source: Path) -> Path:
    cache = source.parent / "__pycache__"
    with contextlib.suppress(OSError):
        cache.mkdir(exist_ok=True)
    if os.access(cache, os.W_OK | os.X_OK):
        return cache
    private = tempfile.mkdtemp(prefix="shipway-programs-")
    atexit.register(shutil.rmtree, private, True)
    return Path(private)


def _compile(source: Path, target: Path) -> None:
    cc = shutil.which("cc")
    if cc is None:
        raise SandboxError(
            f"cannot build the sandbox's program {source.name}: no C compiler (cc); "
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
        raise SandboxError(
            f"cannot build the sandbox's program from {source.name}: "
            f"{errors[0] if errors else f'cc exited with {done.returncode}'}"
        )
    os.replace(partial, target)
