"""The one way shipway runs an untrusted command: isolated by bubblewrap, as an unprivileged
user, within limits. Builds, app instances and functions all go through run().

Who the command runs as
    When shipway is root, each concurrent sandbox leases a slot N (flock on
    /run/shipway/sandbox-slots/N.lock) and runs as host uid and gid 200000 + N, with no
    supplementary groups. bubblewrap itself is exec'd under that uid, so the command is
    unprivileged outside (an ordinary host uid that owns nothing of the host) and inside (its
    user namespace maps only that uid; no capabilities; no nested user namespaces). Before
    the run, the workspace and writable mounts are chowned to the slot's uid without following
    symlinks. When shipway is not root it runs sandboxes as its own user, without a switch.

What it sees
    Only what is listed: the host toolchain read-only (/usr with the merged-usr links, a
    curated /etc without shadow or keys, see toolchain.py), a passwd and group naming only
    the sandbox user, fresh /dev, /proc (own PID namespace) and private tmpfs /tmp and
    /dev/shm, the workspace read-write at /workspace (the cwd) and the spec's mounts. The
    root and /dev are read-only. IPC, UTS, cgroup and network namespaces are new. With
    spec.network, slirp4netns (as the sandbox's uid) gives the network namespace a way out to
    the internet, with DNS at 10.0.2.3, but none to the host's loopback, the host's other
    addresses or link-local ones (see network.py); without slirp4netns it shares the host's
    network instead, with a warning. The environment is spec.env over PATH,
    HOME=/tmp and LANG=C.UTF-8, plus PWD; nothing of shipway's. As root, the mount sources
    are bound, in a private mount namespace of bubblewrap's parent, to a path the sandbox
    uid can reach: shipway's data dir may not be reachable (/root is 0700).

Limits
    As root with cgroup v1 memory and pids controllers, each run gets its own cgroup under
    shipway's (memory.limit_in_bytes, swap included where accounted; pids.max), and the
    kernel's counters (oom_kill, pids.events max) name the limit hit. Without them, the
    fallback is RLIMIT_AS and RLIMIT_NPROC: exact per sandbox as root, since the slot uid is
    its own; approximate as a normal user, whose other processes count too. RLIMIT_FSIZE
    always limits file size (SIGXFSZ, or a "File too large" error, names it). The processes
    limit counts the command's processes and threads, not bubblewrap's own two.

Ending
    shipway keeps the wall clock. At wall_seconds, or when the awaiting task is cancelled,
    the sandbox's pid 1 is SIGKILLed, which takes its whole PID namespace with it. A reaper
    process between shipway and bubblewrap (a small C program, reaper.c, see child.py) exits
    only once every process of the sandbox is gone and reaped, and run() returns (or
    re-raises) only after it has.
    Everything dies with shipway too (parent-death signals all the way down).
"""

from __future__ import annotations

from shipway.sandbox.joins import expect_sandboxes
from shipway.sandbox.runner import run
from shipway.sandbox.spec import (
    Limits,
    Mount,
    SandboxError,
    SandboxResult,
    SandboxSpec,
    Started,
)
from shipway.sandbox.toolchain import toolchain_mounts

__all__ = [
    "Limits",
    "Mount",
    "SandboxError",
    "SandboxResult",
    "SandboxSpec",
    "Started",
    "expect_sandboxes",
    "run",
    "toolchain_mounts",
]
