"""The router: one listening port, each request sent by its Host to an app or the control plane.

Hosts of the form `LABEL.BASE_DOMAIN` are apps, looked up in the route table; every other
host (`localhost:8080`, an IP address, none at all) is the control plane. Bodies stream both
ways; upstream connections are pooled; errors become small pages, never a dead server.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import socket
import time
from collections.abc import Awaitable
from typing import cast

from shipway import metrics, tracing
from shipway.router import pages, spans, static
from shipway.router.body import (
    SinkBroken,
    SourceBroken,
    relay_chunked,
    relay_length,
    relay_to_eof,
    splice,
    write,
)
from shipway.router.http import (
    HEAD_END,
    HttpError,
    RequestHead,
    ResponseHead,
    parse_request,
    parse_response,
)
from shipway.router.pool import Connection, Pool
from shipway.router.table import Route, RouteTable
from shipway.router.upstream import Upstream
from shipway.router.watchdog import Watchdog

log = logging.getLogger(__name__)

#: A request body up to this size is read before the upstream is contacted, so the request
#: can be sent again when a pooled connection turns out to be dead.
BUFFERED_BODY = 64 * 1024
#: How long a client connection may sit between requests.
KEEPALIVE_SECONDS = 75.0
#: A response head longer than this is left to the stream code (which refuses one over its
#: reader's limit, 64 KiB).
EXPRESS_HEAD = 64 * 1024
_NO_BODY_STATUSES = frozenset({204, 304})


class _Stale(Exception):
    """Raised when a connection closed before sending a single byte of response."""


class _ClientProtocol(asyncio.StreamReaderProtocol):
    """A client connection. Requests are taken from its bytes as they arrive and answered one
    at a time: a bodiless one to a running app over a pooled connection by callbacks alone
    (`_Express`), any other bodiless one by the stream code in a task. The first request with a
    body or an upgrade hands the connection to the stream code for good, which reads it from
    then on.

    GONE is done once the client has closed its end or the connection is lost, so that a
    response still on its way to it is cut short there and then, not at its next write (a
    stream's next keep-alive may be many seconds away)."""

    def __init__(self, router: Router) -> None:
        loop = asyncio.get_running_loop()
        self.router = router
        self.gone: asyncio.Future[None] = loop.create_future()
        self.reader = asyncio.StreamReader(limit=router.max_header_bytes, loop=loop)
        super().__init__(self.reader)
        self.transport: asyncio.Transport
        self.client: _Client
        #: Bytes of the requests not yet taken, while the stream code does not read them.
        self.pending = b""
        #: Whether a request is being answered; the next one waits in PENDING meanwhile.
        self.busy = False
        #: Whether the stream code reads the connection (for good).
        self.streaming = False
        #: Whether the client's side of the connection has more unsent bytes than it should.
        self.writing_paused = False
        #: Whether reading the client waits until the request in flight is answered.
        self.reading_paused = False
        self.express: _Express | None = None
        #: The task answering the request in flight, when the stream code answers it.
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.transport = cast(asyncio.Transport, transport)
        loop = asyncio.get_running_loop()
        writer = asyncio.StreamWriter(self.transport, self, self.reader, loop)
        _no_delay(writer)
        self.client = _Client(self.reader, writer, self.gone)
        self.router._idle(self)

    def data_received(self, data: bytes) -> None:
        if self.streaming:
            super().data_received(data)
            return
        self.pending = self.pending + data if self.pending else data
        if not self.busy:
            self.router._take(self)
        elif len(self.pending) > self.router.max_header_bytes and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()

    def answered(self, keep_alive: bool) -> None:
        """The request in flight has had its answer: take the next one, or close."""
        self.express = None
        self.task = None
        if not keep_alive or self.gone.done():
            self.transport.close()
            return
        self.busy = False
        if self.reading_paused:
            self.reading_paused = False
            self.transport.resume_reading()
        self.router._idle(self)

    def stream(self) -> None:
        """Hand the connection to the stream code, from the request waiting in PENDING on."""
        self.streaming = self.busy = True
        self.reader.feed_data(self.pending)
        self.pending = b""
        self.task = asyncio.get_running_loop().create_task(self.router.handle(self.client))

    def pause_writing(self) -> None:
        super().pause_writing()
        self.writing_paused = True
        if self.express is not None:
            self.express.pause()

    def resume_writing(self) -> None:
        super().resume_writing()
        self.writing_paused = False
        if self.express is not None:
            self.express.resume()

    def eof_received(self) -> bool | None:
        self._went()
        if self.streaming:
            return super().eof_received()
        return False  # closes the connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._went()
        self.router.watchdog.unwatch(self.client)
        super().connection_lost(exc)

    def _went(self) -> None:
        if not self.gone.done():
            self.gone.set_result(None)
        if self.express is not None:
            self.express.cut()


class _Express(asyncio.Protocol):
    """A bodiless request to an app over a pooled connection, answered by callbacks alone: the
    protocol of the upstream connection for the time of one exchange.

    A response framed by Content-Length, or with no body, is relayed here. Anything else (an
    interim or malformed head, a chunked or close-delimited body, a connection lost before the
    head) is handed with the bytes read so far to the stream code, which answers it as it
    answers every other request, a retry on a fresh connection included."""

    __slots__ = (
        "app",
        "buffer",
        "conn",
        "head",
        "head_out",
        "over",
        "paused",
        "payload",
        "proto",
        "remaining",
        "request_id",
        "reusable",
        "router",
        "started",
        "status",
        "stream",
        "transport",
        "upstream",
    )

    def __init__(
        self,
        router: Router,
        proto: _ClientProtocol,
        head: RequestHead,
        request_id: bytes,
        app: str,
        upstream: Upstream,
        conn: Connection,
    ) -> None:
        self.router = router
        self.proto = proto
        self.head = head
        self.request_id = request_id
        self.app = app
        self.upstream = upstream
        self.conn = conn
        self.started = time.monotonic()
        self.payload = head.for_upstream(proto.client.address, request_id)
        self.buffer = b""
        #: The head for the client, held back until the body's first bytes have come.
        self.head_out: bytes | None = None
        #: Body bytes still to relay, once the response head has come.
        self.remaining: int | None = None
        self.status: int | None = None
        self.reusable = False
        self.over = False
        self.paused = False
        #: The upstream connection's transport, with its own protocol in STREAM meanwhile.
        self.transport = conn.transport
        self.stream = conn.protocol

    def send(self) -> None:
        """Send the request upstream; the rest happens as the response arrives."""
        router, transport = self.router, self.transport
        transport.set_protocol(self)
        self.upstream.active += 1
        self.proto.express = self
        transport.write(self.payload)
        router.watchdog.watch(self.conn, router.upstream_timeout)
        if self.proto.writing_paused:
            self.pause()

    def data_received(self, data: bytes) -> None:
        if self.remaining is not None:
            self._relay(data)
            return
        buffer = self.buffer + data if self.buffer else data
        end = buffer.find(HEAD_END)
        if end < 0 or end + 4 > EXPRESS_HEAD:
            self.buffer = buffer
            if len(buffer) > EXPRESS_HEAD:
                self._hand_over()
            return
        try:
            response: ResponseHead | None = parse_response(
                buffer if end + 4 == len(buffer) else buffer[: end + 4]
            )
        except HttpError:
            response = None
        head = self.head
        bodyless = head.method == b"HEAD" or (
            response is not None and response.status in _NO_BODY_STATUSES
        )
        if (
            response is None
            or response.status < 200
            or not (bodyless or response.content_length is not None)
        ):
            self.buffer = buffer
            self._hand_over()
            return
        self.router.watchdog.unwatch(self.conn)
        self.status = response.status
        self.reusable = response.reusable
        self.head_out = response.for_client(
            self.request_id, _connection(head.keep_alive, head.version)
        )
        self.remaining = 0 if bodyless else response.content_length
        self.buffer = b""
        rest = buffer[end + 4 :]
        if rest or not self.remaining:
            self._relay(rest)

    def _relay(self, data: bytes) -> None:
        """Pass body bytes on, the held-back head first; the exchange ends with the body."""
        remaining = self.remaining
        assert remaining is not None
        extra = len(data) > remaining
        if extra:
            data = data[:remaining]
        remaining = self.remaining = remaining - len(data)
        if self.head_out is not None:
            data = self.head_out + data
            self.head_out = None
        self.proto.transport.write(data)
        if not remaining:
            self._end(self.reusable and not extra)

    def _end(self, reusable: bool) -> None:
        """The response has been relayed in full: pool the connection, take the next request."""
        self.over = True
        conn, transport = self.conn, self.transport
        if self.paused:
            transport.resume_reading()
        if reusable:
            self.router.pool.put(self.upstream, conn)  # which gives it its waiting protocol
        else:
            transport.set_protocol(self.stream)
            conn.abort()
        self._settle()
        self.proto.answered(self.head.keep_alive)

    def eof_received(self) -> bool | None:
        return False  # closes the connection, which connection_lost then sees

    def connection_lost(self, exc: Exception | None) -> None:
        if self.over:
            return
        if self.remaining is None:
            self._hand_over(lost=True, exc=exc)
            return
        self.over = True
        if self.head_out is None:  # the body was cut short: so is the client's connection
            keep_alive = False
        else:  # as the stream code does: a 502, since the client has had nothing yet
            exchange = self._exchange()
            reason = "closed before the body began"
            page, keep_alive = self.router._failure(exchange, self.upstream, 502, reason)
            self.status = exchange.status
            self.proto.transport.write(page)
        self._settle()
        self.proto.answered(keep_alive)

    def cut(self) -> None:
        """The client has gone: so does the upstream connection, mid-response."""
        if self.over:
            return
        self.over = True
        self.proto.express = None
        self.router.watchdog.unwatch(self.conn)
        self.conn.abort()
        self._settle()

    def pause(self) -> None:
        """The client reads slower than the upstream sends: stop reading the upstream."""
        if not self.over and not self.paused:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.paused and not self.over:
            self.paused = False
            self.transport.resume_reading()

    def _exchange(self) -> _Exchange:
        """The exchange as the stream code knows it."""
        return _Exchange(self.head, self.request_id, self.proto.client, self.app)

    def _hand_over(self, *, lost: bool = False, exc: Exception | None = None) -> None:
        """Give the exchange to the stream code, with what the upstream has sent so far."""
        self.over = True
        self.proto.express = None
        conn, transport = self.conn, self.transport
        transport.set_protocol(self.stream)
        if self.paused and not lost:
            transport.resume_reading()
        if self.buffer:
            conn.reader.feed_data(self.buffer)
        if lost:
            self.stream.connection_lost(exc)
        loop = asyncio.get_running_loop()
        self.proto.task = loop.create_task(self.router._answer(self.proto, self._rest()))

    async def _rest(self) -> bool:
        exchange = self._exchange()
        try:
            return await self.router._exchange(
                exchange, self.upstream, self.payload, sent=self.conn
            )
        finally:
            self.status = exchange.status
            self._settle()

    def _settle(self) -> None:
        self.upstream.active -= 1
        metrics.routed(self.app, self.status, time.monotonic() - self.started)


class _Client:
    """A client connection: its streams, whether it is gone, and its address for
    X-Forwarded-For."""

    __slots__ = ("address", "gone", "reader", "writer")

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, gone: asyncio.Future[None]
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.gone = gone
        self.address = _peer(writer)

    def expire(self) -> None:
        """Idle too long between requests: drop the connection."""
        self.writer.transport.abort()


class _Exchange:
    """One request on its way through: what the answer to it depends on."""

    __slots__ = ("app", "gone", "head", "reader", "request_id", "status", "trace", "writer")

    def __init__(
        self, head: RequestHead, request_id: bytes, client: _Client, app: str | None
    ) -> None:
        self.head = head
        self.request_id = request_id
        self.reader = client.reader
        self.writer = client.writer
        self.gone = client.gone
        self.app = app
        #: The status the client got, once it got one.
        self.status: int | None = None
        #: The router's own trace context header lines for the app, when it traces.
        self.trace: bytes | None = None


def _peer(writer: asyncio.StreamWriter) -> bytes:
    """The client's address for X-Forwarded-For."""
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and peer:
        return str(peer[0]).encode()
    return b"unknown"


def _new_request_id() -> bytes:
    """A fresh request id: 128 random bits in hex; ids need to be unique, not secret."""
    return b"%032x" % random.getrandbits(128)


def _no_delay(writer: asyncio.StreamWriter) -> None:
    """Turn Nagle off, so a head and a body written apart never wait for a delayed ACK."""
    # asyncio does this itself only for sockets made with proto=IPPROTO_TCP.
    sock = writer.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _connection(keep_alive: bool, version: bytes) -> bytes | None:
    """The Connection header a client needs: HTTP/1.1 keeps alive unless told otherwise."""
    if not keep_alive:
        return b"close"
    return b"keep-alive" if version == b"HTTP/1.0" else None


def _settle(task: asyncio.Task[None] | None) -> BaseException | None:
    """The outcome of a finished body pump (cancelling an unfinished one): its exception."""
    if task is None:
        return None
    if not task.done():
        task.cancel()
        return None
    if task.cancelled():
        return None
    return task.exception()


class Router:
    """Owns the public port: routes by Host, proxies, serves static sites, wakes sleeping apps."""

    def __init__(
        self,
        table: RouteTable,
        control: Upstream,
        base_domain: str,
        *,
        max_header_bytes: int = 32 * 1024,
        max_body_bytes: int = 100 * 2**20,
        upstream_timeout: float = 60.0,
    ) -> None:
        self.table = table
        self.control = control
        self.base_domain = base_domain.lower().strip(".")
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        self.upstream_timeout = upstream_timeout
        self.pool = Pool()
        self._suffix = "." + self.base_domain
        self._waking: dict[str, asyncio.Future[None]] = {}
        #: Deadlines of idle clients and of upstreams yet to answer.
        self.watchdog = Watchdog(min(1.0, upstream_timeout / 4))

    async def serve(self, sock: socket.socket) -> asyncio.Server:
        """Start serving on an already bound, listening socket (TCP or unix)."""
        loop = asyncio.get_running_loop()
        if sock.family == socket.AF_UNIX:
            return await loop.create_unix_server(lambda: _ClientProtocol(self), sock=sock)
        return await loop.create_server(lambda: _ClientProtocol(self), sock=sock)

    def close(self) -> None:
        """Close the idle upstream connections; the server is closed by its owner."""
        self.watchdog.close()
        self.pool.close()

    async def handle(self, client: _Client) -> None:
        """Serve one client connection, request after request, until either side ends it."""
        writer = client.writer
        try:
            while await self._next(client):
                pass
        except (ConnectionError, TimeoutError, SourceBroken, SinkBroken):
            pass
        except Exception:
            log.exception("router: the connection from %s failed", client.address.decode())
        finally:
            self.watchdog.unwatch(client)
            writer.close()

    async def _next(self, client: _Client) -> bool:
        """Read and answer one request; returns whether the connection stays open."""
        reader, writer = client.reader, client.writer
        self.watchdog.watch(client, KEEPALIVE_SECONDS)
        try:
            raw = await reader.readuntil(HEAD_END)
        except asyncio.IncompleteReadError:
            return False
        except asyncio.LimitOverrunError:
            return await self._refuse(writer, 431, "The request head is too large.")
        self.watchdog.unwatch(client)
        if len(raw) > self.max_header_bytes:
            return await self._refuse(writer, 431, "The request head is too large.")
        try:
            head = parse_request(raw)
        except HttpError as e:
            return await self._refuse(writer, e.status, e.message)
        return await self._dispatch(head, client)

    def _dispatch(self, head: RequestHead, client: _Client) -> Awaitable[bool]:
        """Answer a request by its Host: an app's, or else the control plane's."""
        request_id = head.request_id or _new_request_id()
        host = head.host_name()
        if host.endswith(self._suffix) and len(host) > len(self._suffix):
            exchange = _Exchange(head, request_id, client, host)
            return self._app(exchange, host, client.address)
        exchange = _Exchange(head, request_id, client, None)
        return self._forward(exchange, self.control, client.address, None)

    def _idle(self, proto: _ClientProtocol) -> None:
        """Wait for PROTO's next request, for a while, taking it at once if it has come."""
        self.watchdog.watch(proto.client, KEEPALIVE_SECONDS)
        if proto.pending:
            self._take(proto)

    def _take(self, proto: _ClientProtocol) -> None:
        """Answer the request waiting in PROTO's pending bytes, once its head is whole."""
        pending = proto.pending
        end = pending.find(HEAD_END)
        if end < 0 and len(pending) <= self.max_header_bytes:
            return
        self.watchdog.unwatch(proto.client)
        if end < 0 or end + 4 > self.max_header_bytes:
            self._refuse_now(proto, 431, "The request head is too large.")
            return
        try:
            head = parse_request(pending if end + 4 == len(pending) else pending[: end + 4])
        except HttpError as e:
            self._refuse_now(proto, e.status, e.message)
            return
        if head.has_body or head.upgrade is not None:
            proto.stream()
            return
        proto.pending = b"" if end + 4 == len(pending) else pending[end + 4 :]
        proto.busy = True
        route = self._running(head)
        if route is None:
            answering = self._dispatch(head, proto.client)
        else:
            route.last_request = time.monotonic()
            request_id = head.request_id or _new_request_id()
            upstream = route.next_upstream()
            conn = self.pool.take(upstream)
            if conn is not None:
                _Express(self, proto, head, request_id, route.app, upstream, conn).send()
                return
            exchange = _Exchange(head, request_id, proto.client, route.app)
            forwarding = self._forward(exchange, upstream, proto.client.address, None)
            answering = self._counted(route.app, exchange, forwarding)
        proto.task = asyncio.get_running_loop().create_task(self._answer(proto, answering))

    def _running(self, head: RequestHead) -> Route | None:
        """The route of HEAD's host when it is an app's with running instances, and nothing
        (a span of the router's own, a static site, a wake-up) comes before forwarding."""
        host = head.host_name()
        if tracing.active or not host.endswith(self._suffix) or len(host) == len(self._suffix):
            return None
        route = self.table.get(host)
        if route is None or not route.upstreams or route.static_root is not None:
            return None
        return route

    async def _answer(self, proto: _ClientProtocol, answering: Awaitable[bool]) -> None:
        """Answer a bodiless request with the stream code, then take the next one."""
        try:
            keep_alive = await answering
        except (ConnectionError, TimeoutError, SourceBroken, SinkBroken):
            keep_alive = False
        except Exception:
            log.exception("router: the connection from %s failed", proto.client.address.decode())
            keep_alive = False
        proto.answered(keep_alive)

    def _refuse_now(self, proto: _ClientProtocol, status: int, message: str) -> None:
        """Answer a request that could not be read, then close: the stream is out of step."""
        proto.busy = True
        proto.transport.write(pages.error(status, message, request_id=_new_request_id()))
        proto.transport.close()

    async def _refuse(self, writer: asyncio.StreamWriter, status: int, message: str) -> bool:
        """Answer a request that could not be read, then close: the stream is out of step."""
        writer.write(pages.error(status, message, request_id=_new_request_id()))
        await writer.drain()
        return False

    async def _app(self, exchange: _Exchange, host: str, client: bytes) -> bool:
        """Serve a request for an app host, counted in the app's series (a host no app has is
        no app's: left out)."""
        route = self.table.get(host)
        if route is None:
            return await self._error(exchange, 404, f"No app is served at {host}.")
        return await self._counted(route.app, exchange, self._route(exchange, route, host, client))

    @staticmethod
    async def _counted(app: str, exchange: _Exchange, answering: Awaitable[bool]) -> bool:
        """ANSWERING, counted in APP's series."""
        started = time.monotonic()
        try:
            return await answering
        finally:
            metrics.routed(app, exchange.status, time.monotonic() - started)

    async def _route(self, exchange: _Exchange, route: Route, host: str, client: bytes) -> bool:
        """Serve a request by its app's route: static files, an upstream, or an error page."""
        route.last_request = time.monotonic()
        if not route.upstreams and route.static_root is None:
            if route.waker is None:
                return await self._error(exchange, 503, f"{route.app} has no running instance.")
            woken = await self._wake(host, route)
            if woken is None:
                return await self._error(exchange, 503, f"{route.app} could not be started.")
            route = woken
        head = exchange.head
        if route.static_root is not None:
            keep = head.keep_alive and not head.has_body
            exchange.status, keep = await static.serve(
                route.static_root,
                head,
                exchange.writer,
                request_id=exchange.request_id,
                keep_alive=keep,
            )
            return keep
        exchange.app = route.app
        if head.content_length is not None and head.content_length > self.max_body_bytes:
            limit = self.max_body_bytes
            return await self._error(exchange, 413, f"The request body exceeds {limit} bytes.")
        if tracing.active:
            return await self._traced(exchange, host, route, client)
        return await self._forward(exchange, route.next_upstream(), client, self.max_body_bytes)

    async def _traced(self, exchange: _Exchange, host: str, route: Route, client: bytes) -> bool:
        """Forward to the app in a span of the router's own, which the app's spans join."""
        with spans.proxied(exchange.head, host, route, client) as span:
            exchange.trace = spans.header_lines()
            keep = await self._forward(exchange, route.next_upstream(), client, self.max_body_bytes)
            spans.answered(span, exchange.status)
            return keep

    async def _wake(self, host: str, route: Route) -> Route | None:
        """Start a scaled-to-zero app once for all the requests waiting on it."""
        assert route.waker is not None
        waking = self._waking.get(host)
        if waking is None:
            waking = asyncio.ensure_future(route.waker())
            self._waking[host] = waking
            waking.add_done_callback(lambda done: self._forget_wake(host, done))
        try:
            await asyncio.shield(waking)
        except Exception:
            log.warning("router: waking %s failed", route.app, exc_info=True)
            return None
        woken = self.table.get(host)
        if woken is None or not (woken.upstreams or woken.static_root is not None):
            return None
        woken.last_request = time.monotonic()
        return woken

    def _forget_wake(self, host: str, done: asyncio.Future[None]) -> None:
        if self._waking.get(host) is done:
            del self._waking[host]

    async def _error(
        self, exchange: _Exchange, status: int, message: str, *, keep_alive: bool | None = None
    ) -> bool:
        """Answer with an error page (JSON for the control plane); returns keep-alive."""
        page, keep_alive = self._page(exchange, status, message, keep_alive)
        exchange.writer.write(page)
        await exchange.writer.drain()
        return keep_alive

    @staticmethod
    def _page(
        exchange: _Exchange, status: int, message: str, keep_alive: bool | None = None
    ) -> tuple[bytes, bool]:
        """An error page (JSON for the control plane), and whether the connection stays."""
        head = exchange.head
        if keep_alive is None:
            keep_alive = head.keep_alive and not head.has_body
        exchange.status = status
        page = pages.error(
            status,
            message,
            request_id=exchange.request_id,
            keep_alive=keep_alive,
            head_only=head.method == b"HEAD",
            as_json=exchange.app is None,
        )
        return page, keep_alive

    async def _forward(
        self, exchange: _Exchange, upstream: Upstream, client: bytes, limit: int | None
    ) -> bool:
        """Proxy one request to UPSTREAM, counting it as in flight there meanwhile."""
        head = exchange.head
        payload = head.for_upstream(client, exchange.request_id, exchange.trace)
        length = head.content_length
        streamed = head.chunked or (
            length is not None and (length > BUFFERED_BODY or head.expect_continue)
        )
        # Counted from the moment it is chosen: a drain must wait for a body still arriving.
        upstream.active += 1
        try:
            if length and not streamed:
                try:
                    payload += await exchange.reader.readexactly(length)
                except asyncio.IncompleteReadError:
                    return False
            return await self._exchange(exchange, upstream, payload, streamed, limit)
        finally:
            upstream.active -= 1

    async def _connect(self, upstream: Upstream) -> Connection:
        """A fresh connection, within the upstream timeout."""
        async with asyncio.timeout(self.upstream_timeout):
            reader, writer = await upstream.open()
        return Connection(reader, writer)

    async def _exchange(
        self,
        exchange: _Exchange,
        upstream: Upstream,
        payload: bytes,
        streamed: bool = False,
        limit: int | None = None,
        *,
        sent: Connection | None = None,
    ) -> bool:
        """Send the request and relay the response; retries once on a dead pooled connection.
        SENT is a connection the request has already been sent on."""
        conn = sent or self.pool.take(upstream)
        retry = conn is not None and not streamed
        while True:
            if conn is None:
                try:
                    conn = await self._connect(upstream)
                except TimeoutError:
                    return await self._upstream_failed(exchange, upstream, 504, None, "connect")
                except Exception as e:
                    reason = f"connect: {e}"
                    return await self._upstream_failed(exchange, upstream, 502, None, reason)
            if conn is not sent:
                conn.writer.write(payload)
            pump = None
            if streamed:
                pump = asyncio.ensure_future(self._pump(exchange, conn, limit))
            try:
                response = await self._await_head(exchange, conn, pump)
            except _Stale:
                if retry and not conn.timed_out:
                    retry = False
                    conn = None
                    continue
                return await self._head_failed(exchange, upstream, pump, conn)
            except (HttpError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                return await self._head_failed(exchange, upstream, pump, conn)
            return await self._respond(exchange, upstream, conn, response, pump)

    async def _await_head(
        self, exchange: _Exchange, conn: Connection, pump: asyncio.Task[None] | None
    ) -> ResponseHead:
        """The final response head, in time; interim ones (100 Continue) go to the client."""
        conn.awaiting_head = True
        if pump is None:
            self.watchdog.watch(conn, self.upstream_timeout)
        else:  # the upstream's time to answer starts when the body has been sent
            pump.add_done_callback(functools.partial(self._sent, conn))
        interim = False
        try:
            while True:
                try:
                    raw = await conn.reader.readuntil(HEAD_END)
                except (asyncio.IncompleteReadError, ConnectionError) as e:
                    silent = not isinstance(e, asyncio.IncompleteReadError) or not e.partial
                    if conn.reused and not interim and silent:
                        raise _Stale from e
                    raise
                response = parse_response(raw)
                if response.status >= 200 or response.status == 101:
                    return response
                interim = True
                if exchange.head.version == b"HTTP/1.1":
                    await write(exchange.writer, raw)
        except BaseException:
            conn.abort()
            raise
        finally:
            conn.awaiting_head = False
            self.watchdog.unwatch(conn)

    def _sent(self, conn: Connection, pump: asyncio.Task[None]) -> None:
        """The body has been sent in full: the upstream's time to answer starts now."""
        if conn.awaiting_head and not pump.cancelled() and pump.exception() is None:
            self.watchdog.watch(conn, self.upstream_timeout)

    async def _pump(self, exchange: _Exchange, conn: Connection, limit: int | None) -> None:
        """Stream the request body upstream while the response is awaited."""
        head = exchange.head
        try:
            if head.chunked:
                await relay_chunked(exchange.reader, conn.writer, limit)
            elif head.content_length:
                await relay_length(exchange.reader, conn.writer, head.content_length)
        except (SourceBroken, HttpError):
            conn.abort()  # wakes the response reader, which reports what went wrong
            raise

    async def _head_failed(
        self,
        exchange: _Exchange,
        upstream: Upstream,
        pump: asyncio.Task[None] | None,
        conn: Connection,
    ) -> bool:
        """Say why no response came: the client's body was bad or gone, or the upstream failed."""
        problem = _settle(pump)
        if isinstance(problem, HttpError):
            return await self._error(exchange, problem.status, problem.message, keep_alive=False)
        if isinstance(problem, SourceBroken):
            return False
        status = 504 if conn.timed_out else 502
        reason = "no response head in time" if conn.timed_out else "no valid response head"
        return await self._upstream_failed(exchange, upstream, status, pump, reason)

    async def _upstream_failed(
        self,
        exchange: _Exchange,
        upstream: Upstream,
        status: int,
        pump: asyncio.Task[None] | None,
        reason: str,
    ) -> bool:
        """A 502 or 504 page naming the app (or the control plane), never a traceback."""
        _settle(pump)
        page, keep_alive = self._failure(exchange, upstream, status, reason)
        exchange.writer.write(page)
        await exchange.writer.drain()
        return keep_alive

    def _failure(
        self, exchange: _Exchange, upstream: Upstream, status: int, reason: str
    ) -> tuple[bytes, bool]:
        """The 502 or 504 page for a failed upstream, and whether the connection stays."""
        what = exchange.app or "the control plane"
        if status == 504:
            message = f"{what} did not answer in time."
        else:
            message = f"{what} is not reachable right now."
        log.warning("router: %d for %s via %s: %s", status, what, upstream.name, reason)
        return self._page(exchange, status, message)

    async def _respond(
        self,
        exchange: _Exchange,
        upstream: Upstream,
        conn: Connection,
        response: ResponseHead,
        pump: asyncio.Task[None] | None,
    ) -> bool:
        """Relay the response; pool the upstream connection when it can carry another."""
        head = exchange.head
        if response.status == 101:
            return await self._upgrade(exchange, upstream, conn, response, pump)
        bodyless = head.method == b"HEAD" or response.status in _NO_BODY_STATUSES
        until_close = not bodyless and not response.chunked and response.content_length is None
        keep = head.keep_alive and not until_close and (pump is None or pump.done())
        exchange.status = response.status
        out = response.for_client(exchange.request_id, _connection(keep, head.version))
        client = exchange.writer

        def cut(_: asyncio.Future[None]) -> None:
            conn.abort()  # the client has gone: the relay stops at its next read

        exchange.gone.add_done_callback(cut)
        try:
            if bodyless:
                await write(client, out)
            elif response.content_length is not None:
                if not await self._relay_length(conn, client, out, response.content_length):
                    reason = "closed before the body began"
                    return await self._upstream_failed(exchange, upstream, 502, pump, reason)
            elif response.chunked:
                await write(client, out)
                await relay_chunked(conn.reader, client)
            else:
                await write(client, out)
                await relay_to_eof(conn.reader, client)
        except (SourceBroken, SinkBroken, HttpError):
            conn.abort()
            _settle(pump)
            return False
        finally:
            exchange.gone.remove_done_callback(cut)
        problem = _settle(pump) if pump is not None else None
        sent = pump is None or (pump.done() and not pump.cancelled() and problem is None)
        if response.reusable and not until_close and sent:
            self.pool.put(upstream, conn)
        else:
            conn.abort()
        return keep and sent

    async def _relay_length(
        self, conn: Connection, client: asyncio.StreamWriter, out: bytes, length: int
    ) -> bool:
        """Relay a sized body, its first piece with the head; False if the upstream sent none."""
        if length == 0:
            await write(client, out)
            return True
        try:
            first = await conn.reader.read(min(length, 64 * 1024))
        except ConnectionError:
            first = b""
        if not first:
            conn.abort()
            return False
        await write(client, out + first)
        if length > len(first):
            await relay_length(conn.reader, client, length - len(first))
        return True

    async def _upgrade(
        self,
        exchange: _Exchange,
        upstream: Upstream,
        conn: Connection,
        response: ResponseHead,
        pump: asyncio.Task[None] | None,
    ) -> bool:
        """Relay a 101 and then splice both connections until either closes."""
        _settle(pump)
        if exchange.head.upgrade is None:
            conn.abort()
            return await self._upstream_failed(exchange, upstream, 502, None, "unasked-for 101")
        try:
            await write(exchange.writer, response.for_client(exchange.request_id, b"Upgrade"))
            await splice((exchange.reader, exchange.writer), (conn.reader, conn.writer))
        finally:
            conn.abort()
        return False
