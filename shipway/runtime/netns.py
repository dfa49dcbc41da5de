"""Reaching an app instance's port inside its sandbox's own network namespace.

A socket belongs to the network namespace it was created in, whichever thread later connects
it. So one dedicated thread enters the instance's namespace (setns), creates a socket and
returns to shipway's; the event loop then connects that socket to 127.0.0.1:PORT, which is
the instance's own loopback. Entering a namespace needs CAP_SYS_ADMIN over it, which root has.

Not root, shipway owns the sandbox's user namespace (bubblewrap made it as shipway's user), but
a threaded process cannot join a user namespace. So a Doorway, a small single-threaded helper
process, joins the instance's user and network namespaces once, and from then on makes a
socket there whenever asked and passes it back over a unix socket (SCM_RIGHTS).
"""

from __future__ import annotations

import asyncio
import ctypes
import fcntl
import os
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

_CLONE_NEWNET = 0x40000000
_NS_GET_USERNS = 0xB701

#: The doorway's program: join the namespaces, then a socket for each byte asked.
_DOORWAY = """
import ctypes, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
userns, netns, chan = (int(a) for a in sys.argv[1:4])
for fd, kind, what in ((userns, 0x10000000, "user"), (netns, 0x40000000, "network")):
    if libc.setns(fd, kind) != 0:
        sys.exit(f"cannot join the instance's {what} namespace: {os.strerror(ctypes.get_errno())}")
    os.close(fd)
door = socket.socket(fileno=chan)
while door.recv(1):
    made = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    socket.send_fds(door, [b"s"], [made.fileno()])
    made.close()
"""
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
    sock = await asyncio.get_running_loop().run_in_executor(_executor, _socket_in, netns_fd)
    return await _open(sock, port)


async def _open(
    sock: socket.socket, port: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect SOCK, made in an instance's namespace, to its 127.0.0.1:PORT, as a stream."""
    sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    except BaseException:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock)


class Doorway:
    """A helper process inside one instance's network namespace that makes sockets there:
    how shipway reaches the instance when it is not root."""

    def __init__(self, netns_fd: int) -> None:
        userns_fd = fcntl.ioctl(netns_fd, _NS_GET_USERNS)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _DOORWAY, str(userns_fd), str(netns_fd),
                 str(theirs.fileno())],
                stdin=subprocess.DEVNULL,
                pass_fds=(userns_fd, netns_fd, theirs.fileno()),
                close_fds=True,
            )  # fmt: skip
        finally:
            os.close(userns_fd)
            theirs.close()
        self.door = ours
        self._lock = asyncio.Lock()

    def _socket(self) -> socket.socket:
        self.door.send(b"s")
        _, fds, _, _ = socket.recv_fds(self.door, 1, 1)
        if not fds:
            raise ConnectionRefusedError("the instance's doorway has closed")
        return socket.socket(fileno=fds[0])

    async def connect(self, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A stream to 127.0.0.1:PORT inside the instance's namespace."""
        async with self._lock:
            sock = await asyncio.get_running_loop().run_in_executor(_executor, self._socket)
        return await _open(sock, port)

    def close(self) -> None:
        self.door.close()  # the helper's recv returns b"": it exits
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
