"""Health checks: an instance is healthy once GET of its health path gets any answer below 500."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

Connect = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]

#: Seconds one check may take before it counts as no answer.
CHECK_SECONDS = 2.0


async def check(connect: Connect, path: str, host: str) -> int | None:
    """The status of GET PATH, or None when nothing answers in HTTP (yet)."""
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: shipway-health-check\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    try:
        async with asyncio.timeout(CHECK_SECONDS):
            reader, writer = await connect()
            try:
                writer.write(request)
                await writer.drain()
                status_line = await reader.readline()
            finally:
                writer.close()
    except (OSError, TimeoutError, ValueError):
        return None
    parts = status_line.split(None, 2)
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit():
        return int(parts[1])
    return None


def healthy(status: int | None) -> bool:
    """Any answer but a server error: a 404 at / still means the server is up."""
    return status is not None and status < 500
