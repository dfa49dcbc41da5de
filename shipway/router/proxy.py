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
_NO_BODY_STATUSES = frozenset({204, 304})


class _Stale(Exception):
    """Raised when a connection closed before sending a single byte of response."""


class _ClientProtocol(asyncio.StreamReaderProtocol):
    """A client connection's streams, and GONE: done once the client has closed its end or the
    connection is lost, so that a response still on its way to it is cut short there and then,
    not at its next write (a stream's next keep-alive may be many seconds away)."""

    def __init__(self, router: Router) -> None:
        self.gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        reader = asyncio.StreamReader(limit=router.max_header_bytes)
        super().__init__(reader, lambda r, w: router.handle(_Client(r, w, self.gone)))

    def eof_received(self) -> bool | None:
        self._went()
        return super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._went()
        super().connection_lost(exc)

    def _went(self) -> None:
        if not self.gone.done():
            self.gone.set_result(None)


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
        self._watchdog = Watchdog(min(1.0, upstream_timeout / 4))

    async def serve(self, sock: socket.socket) -> asyncio.Server:
        """Start serving on an already bound, listening socket (TCP or unix)."""
        loop = asyncio.get_running_loop()
        if sock.family == socket.AF_UNIX:
            return await loop.create_unix_server(lambda: _ClientProtocol(self), sock=sock)
        return await loop.create_server(lambda: _ClientProtocol(self), sock=sock)

    def close(self) -> None:
        """Close the idle upstream connections; the server is closed by its owner."""
        self._watchdog.close()
        self.pool.close()

    async def handle(self, client: _Client) -> None:
        """Serve one client connection, request after request, until either side ends it."""
        writer = client.writer
        _no_delay(writer)
        try:
            while await self._next(client):
                pass
        except (ConnectionError, TimeoutError, SourceBroken, SinkBroken):
            pass
        except Exception:
            log.exception("router: the connection from %s failed", client.address.decode())
        finally:
            self._watchdog.unwatch(client)
            writer.close()

    async def _next(self, client: _Client) -> bool:
        """Read and answer one request; returns whether the connection stays open."""
        reader, writer = client.reader, client.writer
        self._watchdog.watch(client, KEEPALIVE_SECONDS)
        try:
            raw = await reader.readuntil(HEAD_END)
        except asyncio.IncompleteReadError:
            return False
        except asyncio.LimitOverrunError:
            return await self._refuse(writer, 431, "The request head is too large.")
        self._watchdog.unwatch(client)
        if len(raw) > self.max_header_bytes:
            return await self._refuse(writer, 431, "The request head is too large.")
        try:
            head = parse_request(raw)
        except HttpError as e:
            return await self._refuse(writer, e.status, e.message)
        request_id = head.request_id or _new_request_id()
        host = head.host_name()
        if host.endswith(self._suffix) and len(host) > len(self._suffix):
            exchange = _Exchange(head, request_id, client, host)
            return await self._app(exchange, host, client.address)
        exchange = _Exchange(head, request_id, client, None)
        return await self._forward(exchange, self.control, client.address, None)

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
        started = time.monotonic()
        try:
            return await self._route(exchange, route, host, client)
        finally:
            metrics.routed(route.app, exchange.status, time.monotonic() - started)

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
        head = exchange.head
        if keep_alive is None:
            keep_alive = head.keep_alive and not head.has_body
        exchange.status = status
        exchange.writer.write(
            pages.error(
                status,
                message,
                request_id=exchange.request_id,
                keep_alive=keep_alive,
                head_only=head.method == b"HEAD",
                as_json=exchange.app is None,
            )
        )
        await exchange.writer.drain()
        return keep_alive

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
        streamed: bool,
        limit: int | None,
    ) -> bool:
        """Send the request and relay the response; retries once on a dead pooled connection."""
        conn = self.pool.take(upstream)
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
            self._watchdog.watch(conn, self.upstream_timeout)
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
            self._watchdog.unwatch(conn)

    def _sent(self, conn: Connection, pump: asyncio.Task[None]) -> None:
        """The body has been sent in full: the upstream's time to answer starts now."""
        if conn.awaiting_head and not pump.cancelled() and pump.exception() is None:
            self._watchdog.watch(conn, self.upstream_timeout)

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
        what = exchange.app or "the control plane"
        if status == 504:
            message = f"{what} did not answer in time."
        else:
            message = f"{what} is not reachable right now."
        log.warning("router: %d for %s via %s: %s", status, what, upstream.name, reason)
        keep_alive = exchange.head.keep_alive and not exchange.head.has_body
        return await self._error(exchange, status, message, keep_alive=keep_alive)

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
