"""How bubblewrap's process is set up.

shipway starts the sandbox's supervisor (reaper.c) rather than bubblewrap, with `ChildSetup`'s
steps on its command line. The supervisor stays behind as a child subreaper that waits until
every process below it is gone, then exits with bubblewrap's status. Its child joins the
cgroups, sets the rlimits, stages the mount sources, drops from root to the sandbox uid for
good, and execs bubblewrap. bubblewrap exits as soon as the command has, leaving the sandbox's
pid 1 to die and be reaped by its nearest subreaper; without this one that would be the host's
init, which may never reap it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Staging:
    """Host paths bound under a private tmpfs at ROOT, in a mount namespace of the child's own.

    The sandbox uid may not be able to reach a source (shipway's data dir sits under /root,
    mode 0700), so root binds each one to a path bubblewrap can reach; nobody else sees them.
    """

    root: str
    #: (host path, staged path, whether it is a directory)
    binds: tuple[tuple[str, str, bool], ...]


@dataclass(frozen=True)
class ChildSetup:
    """What bubblewrap's process is set up with; every step is skipped when its field is empty.
    A step that fails says why in ERROR_FD, which is closed once bubblewrap runs."""

    error_fd: int
    cgroup_procs: tuple[str, ...] = ()
    rlimits: tuple[tuple[int, int], ...] = ()
    staging: Staging | None = None
    uid: int | None = None
    gid: int | None = None

    def argv(self, supervisor: str, executable: str, argv: Sequence[str]) -> list[str]:
        """The command line of SUPERVISOR that runs EXECUTABLE as ARGV once this is set up."""
        line = [supervisor, "--parent", str(os.getpid()), "--error-fd", str(self.error_fd)]
        for path in self.cgroup_procs:
            line += ["--cgroup", path]
        for limit, value in self.rlimits:
            line += ["--rlimit", str(limit), str(value)]
        if self.staging is not None:
            line += ["--stage", self.staging.root]
            for source, staged, is_dir in self.staging.binds:
                line += ["--bind", source, staged, "d" if is_dir else "f"]
        if self.uid is not None and self.gid is not None:
            line += ["--uid", str(self.uid), "--gid", str(self.gid)]
        return [*line, "--", executable, *argv]
