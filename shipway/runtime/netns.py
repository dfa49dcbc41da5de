"""Reaching an app instance's port inside its sandbox's own network namespace.

A socket belongs to the network namespace it was created in, whichever thread later connects
it. So one dedicated thread enters the instance's namespace (setns), creates a socket and
returns to shipway's; the event loop then connects that socket to 127.0.0.1:PORT, which is
the instance's own loopback. Entering a namespace needs CAP_SYS_ADMIN over it: shipway must be
root (the runtime shares the host's network with instances otherwise, see Runtime).
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
from concurrent.futures import ThreadPoolExecutor

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="netns")
_home: int | None = None


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def _socket_in(netns_fd: int) -> socket.socket:
    """A TCP socket of the namespace NETNS_FD; runs on the one netns thread only."""
    global _home
    if _home is None:
        _home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    _setns(netns_fd)
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    finally:
        _setns(_home)
    sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def can_enter() -> bool:
    """Whether this process may enter other network namespaces (it is root)."""
    return os.geteuid() == 0


async def connect(
    netns_fd: int | None, port: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a stream to 127.0.0.1:PORT of the namespace NETNS_FD (None: the host's own)."""
    if netns_fd is None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return reader, writer
    loop = asyncio.get_running_loop()
    sock = await loop.run_in_executor(_executor, _socket_in, netns_fd)
    try:
        await loop.sock_connect(sock, ("127.0.0.1", port))
    except BaseException:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock)
