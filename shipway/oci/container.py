"""One container of an image release, under the contract a sandbox has: its own network
namespace let out by slirp4netns with the host's addresses unreachable, limits on memory,
processes and time, its output line by line, and root inside an unprivileged range of uids
outside.

podman creates and initialises the container (its namespaces exist, its command does not run
yet); shipway then gives the namespace its way out, says where it is (the router connects
into it), and starts the command attached, so its output streams until it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipway import children
from shipway.oci.podman import ULIMITS, Podman, PodmanError, missing
from shipway.sandbox import Limits, Mount, SandboxResult, Started, cgroups, network
from shipway.sandbox.cgroups import Cgroup
from shipway.sandbox.identity import lease
from shipway.sandbox.outcome import Evidence
from shipway.sandbox.spec import SandboxError

#: Container slot N maps root inside to uid FIRST_UID + N * UIDS outside, and UIDS ids from
#: there: a range of its own, apart from the sandboxes' uids and from /etc/subuid's ranges.
FIRST_UID = 2_000_000
UIDS = 65_536
#: Labels a container of shipway's carries, so a node can find its own after a crash.
INSTANCE_LABEL = "io.shipway.instance"
#: Seconds a container is given to stop before it is killed.
STOP_SECONDS = 2


@dataclass(frozen=True)
class ContainerSpec:
    """One command of an image, to run isolated: COMMAND is run by /bin/sh -c, or empty for
    the image's own ENTRYPOINT and CMD."""

    name: str
    image: str
    command: str
    env: dict[str, str]
    mounts: tuple[Mount, ...]
    limits: Limits
    scratch: Path
    hostname: str = "app"
    #: In a network namespace of its own (reached through it), else on the host's.
    isolated: bool = True


async def run(
    podman: Podman,
    spec: ContainerSpec,
    on_line: Callable[[str], None],
    on_started: Callable[[Started], None] | None = None,
) -> SandboxResult:
    """Run SPEC until it ends, its output to ON_LINE; ON_STARTED hears its pid 1 and network
    namespace once it runs. SandboxError when it cannot be set up."""
    slirp4netns = network.require() if spec.isolated else None
    if not spec.isolated and not network.shared_allowed():
        raise SandboxError(
            "a container may share the host's network only when shipway runs with "
            "--unsafe-shared-network"
        )
    with lease() as ident:
        first_uid = None if ident.slot is None else FIRST_UID + ident.slot * UIDS
        group, parent = slot_cgroup(ident.slot, spec.limits)
        spec.scratch.mkdir(parents=True, exist_ok=True)
        slirp = network.Slirp(slirp4netns, None, None) if slirp4netns else None
        began = time.monotonic()
        try:
            await _create(podman, spec, first_uid, parent, slirp is not None)
            await podman.run("init", spec.name, cwd=spec.scratch)
            state = await podman.json("inspect", "--type", "container", spec.name)
            pid = int(state[0]["State"]["Pid"])
            if slirp is not None:
                # Nothing runs in it yet: this future stands for the command's end.
                await slirp.attach(pid, os.stat(f"/proc/{pid}/ns/net").st_ino, _never())
            if on_started is not None:
                on_started(Started(pid, f"/proc/{pid}/ns/net"))
            attaching = await _start(podman, spec)
            ended: asyncio.Future[int] = asyncio.ensure_future(attaching.wait())
            evidence = Evidence(spec.limits, counted=group is not None)
            try:
                evidence.timed_out = await _pump(attaching, on_line, evidence)
            finally:
                if attaching.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        attaching.kill()
                await asyncio.shield(ended)
            return await _result(podman, spec, began, evidence, group)
        except PodmanError as e:
            if "image not known" in e.message:
                raise SandboxError(
                    f"the image {spec.image[:19]} is no longer on this machine (images of "
                    "releases past SHIPWAY_IMAGE_RETENTION are pruned): push its commit again "
                    "to build it"
                ) from None
            raise SandboxError(f"cannot run the container: {e.message}") from None
        finally:
            with contextlib.suppress(PodmanError):
                await asyncio.shield(
                    podman.run("rm", "--force", "--time", str(STOP_SECONDS), spec.name)
                )
            if slirp is not None:
                await slirp.close()
            if group is not None:
                await group.dispose(STOP_SECONDS + 3)


def slot_cgroup(slot: int | None, limits: Limits) -> tuple[Cgroup | None, str | None]:
    """The slot's cgroup, with the limits, as a sandbox of the slot has, and its path for
    podman to make the container's below it: its counters then outlive the container and say
    which limit it hit. None when shipway makes no cgroups here (podman sets the limits)."""
    found = cgroups.hierarchy() if slot is not None else None
    if found is None:
        return None, None
    where = found.aligned()
    name = f"slot-{slot}"
    try:
        return Cgroup.create(where, name, limits), f"{where.relative}/{name}"
    except OSError as e:
        raise SandboxError(f"cannot prepare the container's cgroup: {e}") from e


def _never() -> asyncio.Future[int]:
    return asyncio.get_running_loop().create_future()


async def _start(podman: Podman, spec: ContainerSpec) -> children.Child:
    """Start the initialised container attached: its output from the very first line."""
    return await children.start(
        *podman.argv("start", "--attach", "--sig-proxy=false", spec.name),
        cwd=spec.scratch,
        stdin=children.DEVNULL,
        stdout=children.PIPE,
        stderr=children.STDOUT,
    )


async def _pump(
    attaching: children.Child, on_line: Callable[[str], None], evidence: Evidence
) -> bool:
    """Relay the container's output until it ends; True when it ran past its time limit."""
    assert attaching.stdout is not None
    stdout = attaching.stdout

    async def relay() -> None:
        async for raw in stdout:
            line = raw.decode(errors="replace").rstrip("\r\n")
            evidence.read(line)
            on_line(line)

    limit = evidence.limits.wall_seconds
    timeout = None if math.isinf(limit) else limit
    try:
        await asyncio.wait_for(relay(), timeout)
    except TimeoutError:
        return True
    return False


async def _result(
    podman: Podman, spec: ContainerSpec, began: float, evidence: Evidence, group: Cgroup | None
) -> SandboxResult:
    """How the container ended, in the words a sandbox's result uses."""
    if evidence.timed_out:
        with contextlib.suppress(PodmanError):
            await podman.run("kill", spec.name)
    state = await _ended_state(podman, spec.name)
    code = int(state.get("ExitCode") or 0)
    if group is None:  # podman's word on an OOM kill is then all there is
        evidence.oom_kills = 1 if state.get("OOMKilled") else 0
    else:
        # The kernel counts an OOM kill, and a fork refused, in the cgroup of the process
        # concerned: the container's, which podman made below the slot's and removes. The
        # slot's peaks say what reached its limits: a SIGKILL with memory at the limit is an
        # OOM kill.
        killed = code == 128 + signal.SIGKILL and group.reached_memory_limit()
        evidence.oom_kills = max(group.oom_kills(), int(killed))
        evidence.process_limit_hits = max(
            group.process_limit_hits(), int(group.reached_process_limit())
        )
    return SandboxResult(code, evidence.reason(code), time.monotonic() - began)


async def sweep(podman: Podman) -> list[str]:
    """Remove the instance containers a node that died left behind; their names."""
    if not podman.root.is_dir() or missing() is not None:
        return []
    names = (
        await podman.run(
            "ps", "--all", "--filter", f"label={INSTANCE_LABEL}", "--format", "{{.Names}}"
        )
    ).split()
    if names:
        with contextlib.suppress(PodmanError):
            await podman.run("rm", "--force", "--time", "0", *names)
    return names


async def _ended_state(podman: Podman, name: str) -> dict[str, Any]:
    """The container's state once it has stopped (podman notes it a moment after the end)."""
    for _ in range(100):
        found = await podman.json("inspect", "--type", "container", name)
        state: dict[str, Any] = found[0]["State"]
        if state.get("Status") not in ("running", "stopping"):
            break
        await asyncio.sleep(0.05)
    return state


async def _create(
    podman: Podman,
    spec: ContainerSpec,
    first_uid: int | None,
    cgroup_parent: str | None,
    walled: bool,
) -> None:
    """Create the container: below CGROUP_PARENT, whose limits hold it (else with podman's),
    with root inside mapped to FIRST_UID's range, with no network but loopback when WALLED."""
    limits = spec.limits
    args = ["create", "--name", spec.name, "--label", f"{INSTANCE_LABEL}={spec.name}"]
    args += ["--init", "--hostname", spec.hostname, *ULIMITS]
    if cgroup_parent is not None:
        # conmon stays in the node's cgroup: neither counted against the app nor left in
        # the slot's once the container is gone.
        args += ["--cgroup-parent", cgroup_parent, "--cgroups", "no-conmon"]
    else:
        args += ["--memory", f"{limits.memory_mb}m", "--memory-swap", f"{limits.memory_mb}m"]
        args += ["--pids-limit", str(limits.processes)]
    args += ["--ulimit", f"fsize={limits.file_size_mb * 1024 * 1024}"]
    if first_uid is not None:
        args += ["--uidmap", f"0:{first_uid}:{UIDS}", "--gidmap", f"0:{first_uid}:{UIDS}"]
    if walled:
        resolv = spec.scratch / "resolv.conf"
        resolv.write_bytes(network.RESOLV_CONF)
        args += ["--network", "none", "--volume", f"{resolv}:/etc/resolv.conf:ro"]
    else:
        args += ["--network", "host"]
    for mount in spec.mounts:
        args += ["--volume", f"{mount.source}:{mount.target}:{'rw' if mount.writable else 'ro'}"]
    for key in spec.env:  # values come from podman's environment, never its command line
        args += ["--env", key]
    if spec.command:
        args += ["--entrypoint", "/bin/sh", spec.image, "-c", spec.command]
    else:
        args.append(spec.image)
    await podman.run(*args, env=spec.env, cwd=spec.scratch)
