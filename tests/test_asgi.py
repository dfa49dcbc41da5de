"""Serving an ASGI app with shipway's uvicorn: it never ticks, yet each answer is dated."""

from __future__ import annotations

import asyncio
import socket
import time
from contextlib import AsyncExitStack
from email.utils import parsedate_to_datetime

from shipway import asgi


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-a", b"b")]})
    await send({"type": "http.response.body", "body": b"ok"})


async def get(address: str) -> dict[str, str]:
    """The headers of one GET over the unix socket at ADDRESS."""
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.setblocking(False)
        await loop.sock_connect(sock, address)
        await loop.sock_sendall(sock, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        raw = b""
        while chunk := await loop.sock_recv(sock, 65536):
            raw += chunk
    head = raw.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")
    return {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:])}


async def test_each_answer_has_the_date_of_its_second_without_a_tick() -> None:
    address = f"\0shipway-test-asgi-{time.monotonic_ns()}"
    async with AsyncExitStack() as stack:
        await asgi.serve(stack, app, address, name="test")
        first = await get(address)
        assert first["x-a"] == "b"
        assert abs(parsedate_to_datetime(first["date"]).timestamp() - time.time()) < 2
        second = int(time.time())
        while int(time.time()) == second:  # into the next second, with no request meanwhile
            await asyncio.sleep(0.05)
        later = await get(address)
        assert parsedate_to_datetime(later["date"]) > parsedate_to_datetime(first["date"])
