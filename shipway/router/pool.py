"""Idle keep-alive connections to upstreams, kept per Upstream object for reuse."""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from asyncio.streams import FlowControlMixin
from collections import deque
from typing import Protocol, cast

from shipway.router.upstream import Upstream

#: Idle connections kept per upstream; more are closed when they are handed back.
POOL_SIZE = 32
#: An idle connection older than this is closed rather than reused: app servers commonly
#: drop idle keep-alive connections after about five seconds.
IDLE_SECONDS = 4.0


class Listener(Protocol):
    """Takes an upstream connection's events directly, in place of its stream reader."""

    def upstream_data(self, data: bytes) -> None: ...

    def upstream_ended(self, exc: Exception | None) -> None: ...


class Link(FlowControlMixin):
    """The protocol of an upstream connection: it feeds the stream reader, or, while a
    `listener` is set, hands every event to it with no stream in between."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        super().__init__()
        self.reader = reader
        self.listener: Listener | None = None

    def data_received(self, data: bytes) -> None:
        listener = self.listener
        if listener is None:
            self.reader.feed_data(data)
        else:
            listener.upstream_data(data)

    def eof_received(self) -> bool:
        self.reader.feed_eof()
        listener = self.listener
        if listener is not None:
            self.listener = None
            listener.upstream_ended(None)
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is None:
            self.reader.feed_eof()
        else:
            self.reader.set_exception(exc)
        super().connection_lost(exc)
        listener = self.listener
        if listener is not None:
            self.listener = None
            listener.upstream_ended(exc)


class Connection:
    """One open connection to an upstream, read as a stream or through its `link`; `reused`
    tells a pooled one from a fresh one."""

    __slots__ = (
        "_opened",
        "awaiting_head",
        "idle_since",
        "link",
        "reader",
        "reused",
        "timed_out",
        "transport",
        "writer",
    )

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # The stream pair an Upstream opened, its transport's protocol replaced by a Link.
        transport = cast(asyncio.Transport, writer.transport)
        self.link = Link(reader)
        transport.set_protocol(self.link)
        self.transport = transport
        self.reader = reader
        self.writer = asyncio.StreamWriter(transport, self.link, reader, asyncio.get_running_loop())
        self._opened = writer  # a stream writer closes its transport when it is collected
        self.reused = False
        self.idle_since = 0.0
        self.awaiting_head = False
        self.timed_out = False

    def alive(self, not_before: float) -> bool:
        """Whether the upstream has neither closed it nor left it idle since NOT_BEFORE."""
        return (
            self.idle_since >= not_before
            and not self.writer.is_closing()  # also when the connection was lost
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


def _close_all(idle: deque[Connection]) -> None:
    """Close the idle connections of an upstream that no route holds any more."""
    while idle:
        with contextlib.suppress(RuntimeError):  # their event loop is already closed
            idle.pop().abort()


class Pool:
    """A small LIFO pool per upstream, so the hottest connection is reused first."""

    def __init__(self, size: int = POOL_SIZE, idle_seconds: float = IDLE_SECONDS) -> None:
        self.size = size
        self.idle_seconds = idle_seconds
        self._idle: weakref.WeakKeyDictionary[Upstream, deque[Connection]] = (
            weakref.WeakKeyDictionary()
        )

    def take(self, upstream: Upstream) -> Connection | None:
        """An idle connection that still looks alive, or None when a new one is needed."""
        idle: deque[Connection] | None = upstream.pooled.get(self)
        if not idle:
            return None
        not_before = time.monotonic() - self.idle_seconds
        while idle:
            conn = idle.pop()
            if conn.alive(not_before):
                conn.reused = True
                return conn
            conn.abort()
        return None

    def put(self, upstream: Upstream, conn: Connection) -> None:
        """Keep CONN for the next request, dropping the stalest ones the upstream closed."""
        idle: deque[Connection] | None = upstream.pooled.get(self)
        if idle is None:
            idle = upstream.pooled[self] = self._idle[upstream] = deque()
            weakref.finalize(upstream, _close_all, idle).atexit = False
        now = time.monotonic()
        not_before = now - self.idle_seconds
        while idle and not idle[0].alive(not_before):
            idle.popleft().abort()
        if len(idle) >= self.size:
            conn.close()
            return
        conn.idle_since = now
        idle.append(conn)

    def idle(self, upstream: Upstream) -> int:
        """How many idle connections are kept for UPSTREAM."""
        return len(upstream.pooled.get(self, ()))

    def close(self) -> None:
        """Close every idle connection, when the router stops."""
        for idle in list(self._idle.values()):
            _close_all(idle)
