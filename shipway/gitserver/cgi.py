"""Run `git http-backend` as a CGI, streaming the request in and the response out."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from shipway.errors import TooLarge

MIB = 1024 * 1024


@dataclass
class CgiResponse:
    status: int
    headers: list[tuple[str, str]]
    body: AsyncIterator[bytes]


async def run(env: Mapping[str, str], body: AsyncIterator[bytes], limit: int) -> CgiResponse:
    """Start http-backend with ENV, feed it BODY (refused past LIMIT bytes), parse its headers."""
    proc = await asyncio.create_subprocess_exec(
        "git",
        "http-backend",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=dict(env),
    )
    assert proc.stdin is not None and proc.stdout is not None
    too_large: list[TooLarge] = []

    async def feed() -> None:
        assert proc.stdin is not None
        size = 0
        try:
            async for chunk in body:
                size += len(chunk)
                if size > limit:
                    too_large.append(
                        TooLarge(f"the push is larger than the {limit // MIB} MiB limit")
                    )
                    proc.kill()
                    return
                proc.stdin.write(chunk)
                await proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            with contextlib.suppress(Exception):
                proc.stdin.close()

    feeder = asyncio.create_task(feed())
    status, headers = 200, []
    while True:
        raw = await proc.stdout.readline()
        if not raw:
            await feeder
            if too_large:
                raise too_large[0]
            break
        line = raw.decode("latin-1").rstrip("\r\n")
        if not line:
            break
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.strip().split()[0])
        else:
            headers.append((name.strip(), value.strip()))

    async def stream() -> AsyncIterator[bytes]:
        assert proc.stdout is not None
        try:
            while chunk := await proc.stdout.read(65536):
                yield chunk
            await feeder
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            await proc.wait()

    return CgiResponse(status, headers, stream())
