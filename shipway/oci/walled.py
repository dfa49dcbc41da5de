"""A podman build's network: a namespace of its own, let out to the internet by slirp4netns
exactly as a sandbox is (the host's own addresses unreachable, its loopback refused), which
the build's RUN steps share (`--network host` inside it)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from typing import Any

from shipway.sandbox import network
from shipway.sandbox.spec import SandboxError

#: Waits for slirp4netns to be in place (a byte on stdin), then runs the command.
_AFTER_NETWORK = '[ "$(head -c1)" = 1 ] || exit 125; exec "$@" </dev/null'


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
        raise SandboxError(
            "a Dockerfile build with network needs shipway to run as root here, to wall its "
            "network off from the host's"
        )
    block_r, block_w = os.pipe()
    slirp = network.Slirp(slirp4netns, None, None)
    slirp.block_w = block_w
    try:
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            _AFTER_NETWORK,
            "sh",
            *argv,
            stdin=block_r,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
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
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        await asyncio.shield(ended)
        await slirp.close()


async def run_offline(
    argv: list[str], line: Callable[[str], Awaitable[Any]], env: dict[str, str] | None = None
) -> int:
    """Run ARGV as `stream` does, on the host's network: for a build with none at all."""
    return await _run(argv, line, {**os.environ, **(env or {})})


async def _run(argv: list[str], line: Callable[[str], Awaitable[Any]], env: dict[str, str]) -> int:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    try:
        return await _relay(proc, line)
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


async def _relay(proc: asyncio.subprocess.Process, line: Callable[[str], Awaitable[Any]]) -> int:
    assert proc.stdout is not None
    async for raw in proc.stdout:
        await line(raw.decode(errors="replace").rstrip("\r\n"))
    return await proc.wait()
