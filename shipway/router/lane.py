"""The fast lane: simple requests proxied by protocol callbacks, with no task and no stream.

Most requests are a head with a small body or none, answered by a head and a sized body. For
those, the client connection's bytes are parsed where they arrive, sent on a pooled upstream
connection, and the answer is written to the client as it comes in: no task, no stream reader,
no timer of its own. Everything else is the stream code's (proxy.py): a request that is bad,
streams its body, upgrades, or is for a static site, a sleeping app or a trace hands its client
connection over for the rest of the connection's life; a chunked or unsized response is relayed
there too, after which the connection comes back to the lane.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from asyncio.streams import FlowControlMixin
from typing import Protocol, cast

from shipway import metrics, tracing
from shipway.router import pages
from shipway.router.http import (
    HEAD_END,
    HttpError,
    RequestHead,
    ResponseHead,
    connection_header,
    new_request_id,
    parse_request,
    parse_response,
)
from shipway.router.pool import Connection, Pool
from shipway.router.table import RouteTable
from shipway.router.upstream import Upstream
from shipway.router.watchdog import Watchdog

log = logging.getLogger(__name__)

#: A request body up to this size is read before the upstream is contacted, so the request
#: can be sent again when a pooled connection turns out to be dead.
BUFFERED_BODY = 64 * 1024
#: The Host headers whose names are remembered, for the next request with the same.
HOST_NAMES = 4096
#: The most an upstream's response head may take.
MAX_RESPONSE_HEAD = 64 * 1024
_NO_BODY_STATUSES = frozenset({204, 304})


class Router(Protocol):
    """What the lane takes from the router (proxy.Router): its settings, table and pool, and
    the stream code for whatever the lane leaves to it."""

    table: RouteTable
    #: Host header → host_name(), for the requests with a Host seen before.
    host_names: dict[bytes | None, str]
    control: Upstream
    suffix: str
    pool: Pool
    watchdog: Watchdog
    max_header_bytes: int
    max_body_bytes: int
    upstream_timeout: float
    keepalive_seconds: float

    async def connect(self, upstream: Upstream) -> Connection:
        """A fresh connection to UPSTREAM, within the upstream timeout."""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve the rest of a client connection by streams."""

    async def relay(
        self,
        head: RequestHead,
        request_id: bytes,
        app: str | None,
        writer: asyncio.StreamWriter,
        upstream: Upstream,
        conn: Connection,
        response: ResponseHead,
    ) -> bool:
        """Relay a chunked or unsized response; returns whether the client keeps alive."""


class _Flight:
    """One request on its way through the lane, and what its answer depends on."""

    __slots__ = (
        "app",
        "conn",
        "head",
        "held",
        "inbox",
        "opening",
        "payload",
        "pending",
        "relay",
        "remaining",
        "request_id",
        "retried",
        "reusable",
        "started",
        "status",
        "upstream",
    )

    def __init__(
        self, head: RequestHead, request_id: bytes, app: str | None, upstream: Upstream
    ) -> None:
        self.head = head
        self.request_id = request_id
        self.app = app
        self.upstream = upstream
        self.payload = b""
        self.started = time.monotonic()
        self.conn: Connection | None = None
        #: Response bytes received before the whole head.
        self.inbox = b""
        #: Body bytes still to relay; -1 until the response head has come.
        self.remaining = -1
        #: The client's head, held back until the first body byte shows the upstream sends one.
        self.pending = b""
        self.reusable = False
        #: Whether reading from the upstream is paused while the client catches up.
        self.held = False
        self.retried = False
        self.status: int | None = None
        self.opening: asyncio.Task[None] | None = None
        self.relay: asyncio.Task[None] | None = None


class Client(FlowControlMixin):
    """One client connection: its requests go through the lane while they are simple."""

    def __init__(self, router: Router) -> None:
        super().__init__()
        self.router = router
        self.transport: asyncio.Transport
        self.address = b"unknown"
        self.buffer = b""
        self.flight: _Flight | None = None
        #: The stream the stream code reads, once the connection is handed over to it.
        self.reader: asyncio.StreamReader | None = None
        self.task: asyncio.Task[None] | None = None
        self.eof = False
        self.closed = False
        #: Whether reading is paused because requests pile up behind the one in flight.
        self.paused = False
        #: time.monotonic() when the last answer was done: the keep-alive time counts from it.
        self.idle_since = time.monotonic()
        self._writer: asyncio.StreamWriter | None = None

    # -- the client's events

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and peer:
            self.address = str(peer[0]).encode()
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # Nagle off, so a head and a body written apart never wait for a delayed ACK.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.router.watchdog.watch(self, self.router.keepalive_seconds)

    def data_received(self, data: bytes) -> None:
        if self.reader is not None:
            self.reader.feed_data(data)
            return
        self.buffer = self.buffer + data if self.buffer else data
        if self.flight is None:
            self._next()
        elif not self.paused and len(self.buffer) > self.router.max_header_bytes + BUFFERED_BODY:
            self.paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        if self.reader is not None:
            self.reader.feed_eof()
        else:
            self.eof = True
            if self.flight is None:
                self._next()
        return True  # the answer in flight may still be written

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        super().connection_lost(exc)
        self.router.watchdog.unwatch(self)
        if self.reader is not None:
            if exc is None:
                self.reader.feed_eof()
            else:
                self.reader.set_exception(exc)
        flight = self.flight
        if flight is not None and flight.relay is None:
            self._land(flight, reusable=False)

    def pause_writing(self) -> None:
        super().pause_writing()
        flight = self.flight
        if flight is not None and flight.conn is not None and flight.relay is None:
            flight.held = True
            flight.conn.transport.pause_reading()

    def resume_writing(self) -> None:
        super().resume_writing()
        flight = self.flight
        if flight is not None and flight.held and flight.conn is not None:
            flight.held = False
            flight.conn.transport.resume_reading()

    def expire(self) -> None:
        """The connection's deadline: drop it if it has been idle for the keep-alive time, else
        look again when it could have been (watched once, not once per request)."""
        keepalive = self.router.keepalive_seconds
        if self.flight is not None:
            self.router.watchdog.watch(self, keepalive)
            return
        idle = time.monotonic() - self.idle_since
        if idle >= keepalive:
            self.transport.abort()
        else:
            self.router.watchdog.watch(self, keepalive - idle)

    # -- requests

    def _next(self) -> None:
        """Take the next request from the buffer once all of it is there."""
        router = self.router
        buffer = self.buffer
        end = buffer.find(HEAD_END)
        if end < 0:
            if len(buffer) > router.max_header_bytes:
                self._to_streams()  # which answers 431
            elif self.eof:
                self.transport.close()
            return
        size = end + 4
        if size > router.max_header_bytes:
            self._to_streams()
            return
        try:
            head = parse_request(buffer[:size])
        except HttpError:
            self._to_streams()  # which answers with the error
            return
        length = head.content_length or 0
        if head.chunked or head.upgrade is not None or head.expect_continue:
            self._to_streams()
            return
        if length > BUFFERED_BODY:
            self._to_streams()
            return
        if len(buffer) < size + length:
            if self.eof:
                self._to_streams()  # which finds the body cut short
            return  # the rest of the body is on its way
        flight = self._flight(head, length)
        if flight is None:
            self._to_streams()
            return
        payload = head.for_upstream(self.address, flight.request_id)
        if length:
            payload += buffer[size : size + length]
        flight.payload = payload
        self.buffer = buffer[size + length :]
        self.flight = flight
        flight.upstream.active += 1
        conn = router.pool.take(flight.upstream)
        if conn is None:
            self._open(flight)
        else:
            self._send(flight, conn)

    def _flight(self, head: RequestHead, length: int) -> _Flight | None:
        """Where HEAD goes, if the lane can take it there: an app's upstream or the control
        plane; None for anything the stream code has to do."""
        router = self.router
        names = router.host_names
        host = names.get(head.host)
        if host is None:
            if len(names) >= HOST_NAMES:
                names.clear()
            host = names[head.host] = head.host_name()
        suffix = router.suffix
        if not (host.endswith(suffix) and len(host) > len(suffix)):
            return _Flight(head, head.request_id or new_request_id(), None, router.control)
        route = router.table.get(host)
        if (
            route is None
            or not route.upstreams
            or route.static_root is not None
            or tracing.active
            or length > router.max_body_bytes
        ):
            return None
        flight = _Flight(
            head, head.request_id or new_request_id(), route.app, route.next_upstream()
        )
        route.last_request = flight.started
        return flight

    def _open(self, flight: _Flight) -> None:
        """No idle connection to the upstream: open one, then send."""
        flight.opening = asyncio.get_running_loop().create_task(self._connect(flight))

    async def _connect(self, flight: _Flight) -> None:
        router = self.router
        try:
            conn = await router.connect(flight.upstream)
        except TimeoutError:
            if self.flight is flight:
                self._failed(flight, 504, "connect")
            return
        except Exception as e:
            if self.flight is flight:
                self._failed(flight, 502, f"connect: {e}")
            return
        if self.flight is flight:
            self._send(flight, conn)
        else:  # the client went away meanwhile; the connection serves the next one
            router.pool.put(flight.upstream, conn)

    def _send(self, flight: _Flight, conn: Connection) -> None:
        flight.conn = conn
        conn.link.listener = self
        conn.awaiting_head = True
        conn.transport.write(flight.payload)
        self.router.watchdog.watch(conn, self.router.upstream_timeout)

    # -- the upstream's events, while a flight is out

    def upstream_data(self, data: bytes) -> None:
        flight = self.flight
        if flight is None:
            return
        remaining = flight.remaining
        if remaining < 0:
            self._response(flight, data)
            return
        if flight.pending:
            data = flight.pending + data
            remaining += len(flight.pending)
            flight.pending = b""
        if len(data) < remaining:
            flight.remaining = remaining - len(data)
            self.transport.write(data)
            return
        self.transport.write(data[:remaining])
        keep = flight.head.keep_alive
        self._land(flight, reusable=flight.reusable and len(data) == remaining)
        self._resume(keep)

    def _response(self, flight: _Flight, data: bytes) -> None:
        """Bytes of the response head: once it is whole, the head and what body came with it."""
        if flight.inbox:
            data = flight.inbox + data
        end = data.find(HEAD_END)
        if end < 0:
            if len(data) > MAX_RESPONSE_HEAD:
                self._failed(flight, 502, "no valid response head")
            else:
                flight.inbox = data
            return
        flight.inbox = b""
        size = end + 4
        try:
            response = parse_response(data[:size])
        except HttpError:
            self._failed(flight, 502, "no valid response head")
            return
        head = flight.head
        status = response.status
        if status < 200:
            if status == 101:
                self._failed(flight, 502, "unasked-for 101")
                return
            if head.version == b"HTTP/1.1":  # an interim response, such as 103 Early Hints
                self.transport.write(data[:size])
            if len(data) > size:
                self._response(flight, data[size:])
            return
        conn = flight.conn
        assert conn is not None
        conn.awaiting_head = False
        self.router.watchdog.unwatch(conn)
        flight.status = status
        if head.method == b"HEAD" or status in _NO_BODY_STATUSES:
            length = 0
        elif response.content_length is None:
            self._relay(flight, response, data[size:])
            return
        else:
            length = response.content_length
        keep = head.keep_alive
        out = response.for_client(flight.request_id, connection_header(keep, head.version))
        body = len(data) - size
        if body >= length:
            self.transport.write(out + data[size : size + length] if length else out)
            self._land(flight, reusable=response.reusable and body == length)
            self._resume(keep)
            return
        flight.reusable = response.reusable
        flight.remaining = length - body
        if body:
            self.transport.write(out + data[size:])
        else:  # sent once the upstream shows it sends a body at all
            flight.pending = out

    def upstream_ended(self, exc: Exception | None) -> None:
        """The upstream closed or failed before the answer was whole."""
        flight = self.flight
        if flight is None:
            return
        conn = flight.conn
        assert conn is not None
        if flight.remaining < 0:
            if conn.reused and not conn.timed_out and not flight.retried and not flight.inbox:
                # A pooled connection the upstream had closed: once more, on a fresh one.
                flight.retried = True
                conn.awaiting_head = False
                self.router.watchdog.unwatch(conn)
                conn.abort()
                flight.conn = None
                self._open(flight)
            elif conn.timed_out:
                self._failed(flight, 504, "no response head in time")
            else:
                self._failed(flight, 502, "no valid response head")
        elif flight.pending:
            self._failed(flight, 502, "closed before the body began")
        else:  # the client has part of the body: only closing tells it the rest is missing
            self._land(flight, reusable=False)
            self.transport.close()

    # -- endings

    def _failed(self, flight: _Flight, status: int, reason: str) -> None:
        """A 502 or 504 page naming the app (or the control plane), never a traceback."""
        what = flight.app or "the control plane"
        log.warning("router: %d for %s via %s: %s", status, what, flight.upstream.name, reason)
        flight.status = status
        self._land(flight, reusable=False)
        head = flight.head
        page = pages.error(
            status,
            pages.unreachable(what, status),
            request_id=flight.request_id,
            keep_alive=head.keep_alive,
            head_only=head.method == b"HEAD",
            as_json=flight.app is None,
        )
        self.transport.write(page)
        self._resume(head.keep_alive)

    def _land(self, flight: _Flight, *, reusable: bool) -> None:
        """The flight is over: pool or close its upstream connection, count it."""
        self.flight = None
        router = self.router
        conn = flight.conn
        if conn is not None and flight.relay is None:
            conn.link.listener = None
            if conn.awaiting_head:
                conn.awaiting_head = False
                router.watchdog.unwatch(conn)
            if flight.held:
                conn.transport.resume_reading()
            if reusable:
                router.pool.put(flight.upstream, conn)
            else:
                conn.abort()
        flight.upstream.active -= 1
        self.idle_since = now = time.monotonic()
        if flight.app is not None:
            metrics.routed(flight.app, flight.status, now - flight.started)

    def _resume(self, keep: bool) -> None:
        """Go on to the next request, or close when the last answer said so."""
        if self.closed:
            return
        if not keep:
            self.transport.close()
            return
        if self.paused:
            self.paused = False
            self.transport.resume_reading()
        if self.buffer or self.eof:
            self._next()

    # -- hand-overs to the stream code

    def _relay(self, flight: _Flight, response: ResponseHead, rest: bytes) -> None:
        """A chunked or unsized body: relayed by the stream code, then back to the lane."""
        conn = flight.conn
        assert conn is not None
        conn.link.listener = None
        if rest:
            conn.reader.feed_data(rest)
        if flight.held:
            flight.held = False
            conn.transport.resume_reading()
        flight.relay = asyncio.get_running_loop().create_task(self._relayed(flight, response))

    async def _relayed(self, flight: _Flight, response: ResponseHead) -> None:
        conn = flight.conn
        assert conn is not None
        keep = False
        try:
            keep = await self.router.relay(
                flight.head,
                flight.request_id,
                flight.app,
                self._stream_writer(),
                flight.upstream,
                conn,
                response,
            )
        except Exception:
            conn.abort()
            log.exception("router: relaying to %s failed", self.address.decode())
        finally:
            self._land(flight, reusable=False)
        self._resume(keep)

    def _stream_writer(self) -> asyncio.StreamWriter:
        if self._writer is None:
            loop = asyncio.get_running_loop()
            self._writer = asyncio.StreamWriter(self.transport, self, self.reader, loop)
        return self._writer

    def _to_streams(self) -> None:
        """Hand the connection to the stream code for the rest of its life."""
        router = self.router
        router.watchdog.unwatch(self)
        reader = asyncio.StreamReader(limit=router.max_header_bytes)
        reader.set_transport(self.transport)
        if self.paused:
            self.paused = False
            self.transport.resume_reading()
        if self.buffer:
            reader.feed_data(self.buffer)
            self.buffer = b""
        if self.eof:
            reader.feed_eof()
        self.reader = reader
        self._writer = None
        self.task = asyncio.get_running_loop().create_task(
            router.handle(reader, self._stream_writer())
        )
