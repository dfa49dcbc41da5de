"""Idle keep-alive connections to upstreams, kept per Upstream object for reuse."""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections import deque
from typing import cast

from shipway.router.upstream import Upstream

#: Idle connections kept per upstream; more are closed when they are handed back.
POOL_SIZE = 32
#: An idle connection older than this is closed rather than reused: app servers commonly
#: drop idle keep-alive connections after about five seconds.
IDLE_SECONDS = 4.0


class Connection:
    """One open stream pair to an upstream; `reused` tells a pooled one from a fresh one.

    PROTOCOL is the one of its streams; while the connection waits in the pool, its transport
    has another (`_Waiting`), which spoils it when the upstream sends or closes anything:
    with no request in flight, such bytes could only ever answer the wrong one."""

    __slots__ = (
        "awaiting_head",
        "idle_since",
        "protocol",
        "reader",
        "reused",
        "spoiled",
        "timed_out",
        "transport",
        "waiting",
        "writer",
    )

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.transport = cast(asyncio.Transport, writer.transport)
        self.protocol = self.transport.get_protocol()
        self.waiting = _Waiting(self)
        self.reused = False
        self.spoiled = False
        self.idle_since = 0.0
        self.awaiting_head = False
        self.timed_out = False

    def alive(self, not_before: float) -> bool:
        """Whether the upstream has neither closed it, nor sent on it, nor left it idle since
        NOT_BEFORE."""
        return (
            self.idle_since >= not_before
            and not self.spoiled
            and not self.transport.is_closing()  # also when the connection was lost
            and not self.reader.at_eof()
        )

    def close(self) -> None:
        """Close after flushing what was written."""
        self.writer.close()

    def abort(self) -> None:
        """Close at once, dropping unsent data: for broken or abandoned exchanges."""
        self.transport.abort()

    def expire(self) -> None:
        """The upstream took too long to answer: give up on it, remembering why."""
        self.timed_out = True
        self.abort()


class _Waiting(asyncio.Protocol):
    """The protocol of a connection in the pool: whatever comes spoils it."""

    __slots__ = ("conn",)

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def data_received(self, data: bytes) -> None:
        self.conn.spoiled = True
        self.conn.abort()

    def eof_received(self) -> bool | None:
        self.conn.spoiled = True
        return False  # closes the connection

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.spoiled = True


def _close_all(idle: deque[Connection]) -> None:
    """Close the idle connections of an upstream, when no route holds it any more."""
    while idle:
        with contextlib.suppress(RuntimeError):  # their event loop is already closed
            idle.pop().abort()


def _drop(idle: dict[int, deque[Connection]], key: int) -> None:
    """Forget a dead upstream's idle connections, closing them."""
    _close_all(idle.pop(key, deque()))


class Pool:
    """A small LIFO pool per upstream, so the hottest connection is reused first.

    Kept by the upstream's id, and dropped when the upstream object dies: a plain dict is
    looked up at every request, a WeakKeyDictionary costs a Python call."""

    def __init__(self, size: int = POOL_SIZE, idle_seconds: float = IDLE_SECONDS) -> None:
        self.size = size
        self.idle_seconds = idle_seconds
        self._idle: dict[int, deque[Connection]] = {}

    def take(self, upstream: Upstream) -> Connection | None:
        """An idle connection that still looks alive, or None when a new one is needed."""
        idle = self._idle.get(id(upstream))
        if not idle:
            return None
        not_before = time.monotonic() - self.idle_seconds
        while idle:
            conn = idle.pop()
            if conn.alive(not_before):
                conn.reused = True
                conn.transport.set_protocol(conn.protocol)
                return conn
            conn.abort()
        return None

    def put(self, upstream: Upstream, conn: Connection) -> None:
        """Keep CONN for the next request, dropping the stalest ones the upstream closed."""
        key = id(upstream)
        idle = self._idle.get(key)
        if idle is None:
            idle = self._idle[key] = deque()
            weakref.finalize(upstream, _drop, self._idle, key).atexit = False
        now = time.monotonic()
        not_before = now - self.idle_seconds
        while idle and not idle[0].alive(not_before):
            idle.popleft().abort()
        if len(idle) >= self.size:
            conn.close()
            return
        conn.idle_since = now
        conn.transport.set_protocol(conn.waiting)
        idle.append(conn)

    def idle(self, upstream: Upstream) -> int:
        """How many idle connections are kept for UPSTREAM."""
        return len(self._idle.get(id(upstream), ()))

    def close(self) -> None:
        """Close every idle connection, when the router stops."""
        for idle in list(self._idle.values()):
            _close_all(idle)
