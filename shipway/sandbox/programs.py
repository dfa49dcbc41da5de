"""The sandbox's small C programs (see shipway.native).

- reaper.c is each sandbox's supervisor, which shipway starts in place of bubblewrap (see
  child.py): it sets up bubblewrap's process and reaps everything below it. So a supervisor
  holds a few hundred KiB rather than a copy of shipway's memory, or even a bare
  interpreter's few MiB.
- netsetup.c gives a networked sandbox its routes and starts its slirp4netns (see network.py).

With them shipway never forks for a sandbox: it starts each with vfork and exec, which costs
the same whatever shipway's size, where each fork of a node holding 100 MiB took 10-20 ms.
Without a C compiler, a sandbox is refused and says what to install.
"""

from __future__ import annotations

from pathlib import Path

from shipway import native
from shipway.sandbox.spec import SandboxError

SUPERVISOR = Path(__file__).with_name("reaper.c")
NETWORK = Path(__file__).with_name("netsetup.c")


def supervisor() -> str:
    return _built(SUPERVISOR)


def network() -> str:
    return _built(NETWORK)


def _built(source: Path) -> str:
    try:
        return native.program(source)
    except native.NativeError as e:
        raise SandboxError(e.message) from e
