"""Upstreams: the places a proxied request can be sent.

The proxy relies on `open()` alone, so a new kind of upstream (a socket made inside another
network namespace, say) only has to return a connected stream pair. Upstreams compare by
identity: the connection pool keys idle connections by the object's id.
"""

from __future__ import annotations

import asyncio
import socket
from abc import ABC, abstractmethod


class Upstream(ABC):
    """Somewhere a request can be sent; `active` counts the requests in flight through it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.active = 0

    @abstractmethod
    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A new connection; the pool calls this only when it has no idle one to reuse."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} active={self.active}>"


class TcpUpstream(Upstream):
    """An HTTP server on a TCP port, such as an app instance on 127.0.0.1."""

    def __init__(self, host: str, port: int, name: str | None = None) -> None:
        super().__init__(name or f"{host}:{port}")
        self.host = host
        self.port = port

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect with Nagle off, so small requests leave at once."""
        reader, writer = await asyncio.open_connection(self.host, self.port)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return reader, writer


class UnixUpstream(Upstream):
    """An HTTP server on a unix socket, such as the control plane's uvicorn."""

    def __init__(self, path: str, name: str | None = None) -> None:
        super().__init__(name or path)
        self.path = path

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect to the socket, a file or an abstract name (a NUL first); nothing there
        raises an OSError. Connected here, since uvloop's own connect refuses abstract names."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, self.path)
        except BaseException:
            sock.close()
            raise
        return await asyncio.open_unix_connection(sock=sock)
