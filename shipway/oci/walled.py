"""A podman build's network: a namespace of its own, let out to the internet by slirp4netns
exactly as a sandbox is (the host's own addresses unreachable, its loopback refused), which
the build's RUN steps share.

As root, podman itself runs in that namespace, its steps on its network (`--network host`),
and so do its pulls. As another user, podman runs in a user namespace of its own, which the
namespace is made in (`podman unshare`) for the steps to join (`--network ns:PATH`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from shipway import children
from shipway.oci.podman import Podman
from shipway.sandbox import network
from shipway.sandbox.spec import SandboxError

#: Waits for slirp4netns to be in place (a byte on stdin), then runs the command.
_AFTER_NETWORK = '[ "$(head -c1)" = 1 ] || exit 125; exec "$@" </dev/null'
#: Run by `podman unshare`: a network namespace with lo up (network.own_network), held until
#: stdin closes; it prints its pid once it is there.
_HOLDER = (
    "import os, sys\n"
    "from shipway.sandbox.network import own_network\n"
    "own_network()\n"
    "print(os.getpid(), flush=True)\n"
    "sys.stdin.read()\n"
)
#: Seconds the namespace may take to be made.
READY_SECONDS = 30.0
#: Seconds podman is given to stop a build it is told to end.
STOP_SECONDS = 10.0

Runner = Callable[
    [list[str], Callable[[str], Awaitable[Any]], dict[str, str] | None], Awaitable[int]
]


@contextlib.asynccontextmanager
async def build_network(podman: Podman, wanted: bool) -> AsyncIterator[tuple[str, Runner]]:
    """What a build's RUN steps get for a network (podman build's --network) and how podman
    is to be run for it: none at all unless WANTED; else the walled namespace. SandboxError
    when it cannot be had here."""
    if not wanted:
        yield "none", run_offline
        return
    slirp4netns = network.require()
    if slirp4netns is None:  # the operator let sandboxes share the host's network
        yield "host", run_offline
    elif os.geteuid() == 0:
        yield "host", stream
    else:
        async with _rootless(podman, slirp4netns) as path:
            yield f"ns:{path}", run_offline


@contextlib.asynccontextmanager
async def _rootless(podman: Podman, slirp4netns: str) -> AsyncIterator[str]:
    """A walled network namespace in podman's own user namespace, held while in use: the
    /proc path of it."""
    proc = await children.start(
        *podman.argv("unshare", sys.executable, "-c", _HOLDER),
        stdin=children.PIPE,
        stdout=children.PIPE,
        stderr=children.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    ended: asyncio.Future[int] = asyncio.ensure_future(proc.wait())
    slirp = network.Slirp(slirp4netns, None, None)
    try:
        said = await asyncio.wait_for(proc.stdout.readline(), READY_SECONDS)
        if not said.strip().isdigit():
            said_lines = (await proc.stderr.read()).decode(errors="replace").strip().splitlines()
            why = said_lines[-1] if said_lines else "podman unshare failed"
            raise SandboxError(f"cannot make the build's network: {why}")
        path = f"/proc/{int(said)}/ns/net"
        await slirp.attach(int(said), os.stat(path).st_ino, ended)
        if ended.done():
            raise SandboxError("cannot make the build's network: its namespace ended")
        yield path
    finally:
        proc.stdin.close()
        await slirp.close()
        await _stop(proc, ended)


async def stream(
    argv: list[str], line: Callable[[str], Awaitable[Any]], env: dict[str, str] | None = None
) -> int:
    """Run ARGV, with ENV added to its environment and its output line by line to LINE, in a
    walled network namespace; return its exit code. SandboxError when that namespace cannot
    be had here."""
    environment = {**os.environ, **(env or {})}
    slirp4netns = network.require()
    if slirp4netns is None:  # the operator let sandboxes share the host's network
        return await _run(argv, line, environment)
    if os.geteuid() != 0:
        raise SandboxError("only root can run a command in a network namespace of its own")
    block_r, block_w = os.pipe()
    slirp = network.Slirp(slirp4netns, None, None)
    slirp.block_w = block_w
    try:
        proc = await children.start(
            "/bin/sh",
            "-c",
            _AFTER_NETWORK,
            "sh",
            *argv,
            stdin=block_r,
            stdout=children.PIPE,
            stderr=children.STDOUT,
            env=environment,
            preexec_fn=network.own_network,
        )
    except BaseException:
        os.close(block_w)
        raise
    finally:
        os.close(block_r)
    ended: asyncio.Future[int] = asyncio.ensure_future(proc.wait())
    try:
        inode = os.stat(f"/proc/{proc.pid}/ns/net").st_ino
        await slirp.attach(proc.pid, inode, ended)
        return await _relay(proc, line)
    finally:
        await _stop(proc, ended)
        await slirp.close()


async def run_offline(
    argv: list[str], line: Callable[[str], Awaitable[Any]], env: dict[str, str] | None = None
) -> int:
    """Run ARGV as `stream` does, on the host's network: for a build with none at all."""
    return await _run(argv, line, {**os.environ, **(env or {})})


async def _run(argv: list[str], line: Callable[[str], Awaitable[Any]], env: dict[str, str]) -> int:
    proc = await children.start(
        *argv,
        stdin=children.DEVNULL,
        stdout=children.PIPE,
        stderr=children.STDOUT,
        env=env,
    )
    try:
        return await _relay(proc, line)
    finally:
        await _stop(proc, asyncio.ensure_future(proc.wait()))


async def _stop(proc: children.Child, ended: asyncio.Future[int]) -> None:
    """End PROC if it still runs: podman is asked first, so that it unmounts and removes the
    build's working container, then killed."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(asyncio.shield(ended), STOP_SECONDS)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
    await asyncio.shield(ended)


async def _relay(proc: children.Child, line: Callable[[str], Awaitable[Any]]) -> int:
    assert proc.stdout is not None
    async for raw in proc.stdout:
        await line(raw.decode(errors="replace").rstrip("\r\n"))
    return await proc.wait()
