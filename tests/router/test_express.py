"""The router's fast path end to end: a bodiless request to a running app over a pooled
connection, answered by callbacks (`_Express`), and what it hands to the stream code.

The first request on a client connection finds the pool empty and goes the stream way; the
ones after it find the connection that request left, and go the fast way. The upstreams are
raw servers, so that each test scripts the answer it needs and notes, as each request arrives,
which way the router sent it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import socket
import struct
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import cast

import pytest
import pytest_asyncio

from shipway import metrics
from shipway.router import TcpUpstream
from shipway.router.proxy import _Express
from tests.helpers import until
from tests.router.conftest import MakeProxy, Proxy, upstream
from tests.router.servers import AppServer, RawServer, Reply, listening, read_reply

HOST = "fast.localhost"
#: Long enough for any answer on a loaded machine; a test that waits this long has failed.
WAIT = 30.0


class Recorded(TcpUpstream):
    """An upstream that keeps the router's end of each connection it opened."""

    def __init__(self, port: int) -> None:
        super().__init__("127.0.0.1", port, name="fast")
        self.opened: list[asyncio.StreamWriter] = []
        #: The size of the router's receive buffers, when a test sets it.
        self.receive_buffer: int | None = None

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await super().open()
        if self.receive_buffer is not None:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.receive_buffer)
        self.opened.append(writer)
        return reader, writer

    def express(self, port: int) -> bool:
        """Whether the router's end of the connection from PORT is in a fast exchange now."""
        for writer in self.opened:
            if writer.get_extra_info("sockname")[1] == port:
                return isinstance(writer.transport.get_protocol(), _Express)
        raise AssertionError(f"the router opened no connection from port {port}")

    def reading(self) -> bool:
        """Whether the router reads from the first connection it opened."""
        return cast(asyncio.Transport, self.opened[0].transport).is_reading()

    def dropped(self) -> bool:
        """Whether the router has closed, or is closing, the first connection it opened."""
        return self.opened[0].transport.is_closing()


@dataclass
class Request:
    """A request as a scripted upstream read it: its head, and its connection."""

    head: bytes
    #: 0 for the first request on its connection.
    turn: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    @property
    def path(self) -> str:
        return self.head.split(b" ", 2)[1].decode()

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()


#: Answers a request, and says whether to read another one from its connection.
Answer = Callable[[Request], Awaitable[bool]]


def sized(body: bytes, *headers: bytes, status: bytes = b"200 OK") -> bytes:
    """A response framed by Content-Length."""
    lines = b"".join(header + b"\r\n" for header in headers)
    return b"HTTP/1.1 %s\r\nContent-Length: %d\r\n%s\r\n%s" % (status, len(body), lines, body)


async def echo(request: Request) -> bool:
    """Answers with the method and path, and the length and SHA-256 of a sized body."""
    method, path, _ = request.head.split(b" ", 2)
    answer = method + b" " + path
    length = re.search(rb"(?i)\r\ncontent-length: *([0-9]+)", request.head)
    if length is not None:
        body = await request.reader.readexactly(int(length.group(1)))
        answer += b" %d %s" % (len(body), hashlib.sha256(body).hexdigest().encode())
    await request.send(sized(answer))
    return True


def answering(path: str, response: bytes, *, keep: bool = True) -> Answer:
    """Echoes every request but one for PATH, answered with RESPONSE; the connection is
    closed after it unless KEEP."""

    async def answer(request: Request) -> bool:
        if request.path != path:
            return await echo(request)
        await request.send(response)
        return keep

    return answer


def stalling(path: str, response: bytes, closed: asyncio.Event) -> Answer:
    """Echoes every request but one for PATH, answered with RESPONSE (maybe nothing, or part
    of a body) and then nothing more: CLOSED is set once the router closes that connection."""

    async def answer(request: Request) -> bool:
        if request.path != path:
            return await echo(request)
        request.writer.write(response)  # not drained: the router may have stopped reading
        try:
            await request.reader.read()
        finally:
            closed.set()
        return False

    return answer


class Scripted:
    """A raw upstream that keeps its connections open and answers each request with ANSWER;
    `express` says, per request in the order they came, whether it came the fast way."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.raw = RawServer(self._serve)
        self.express: list[bool] = []
        self.upstream: Recorded

    @property
    def connections(self) -> int:
        """How many connections the router opened to it."""
        return self.raw.connections

    @property
    def heads(self) -> list[bytes]:
        return self.raw.heads

    async def _serve(
        self, server: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        port = writer.get_extra_info("peername")[1]
        turn = 0
        while True:
            head = await server.read_head(reader)
            self.express.append(self.upstream.express(port))
            if not await self.answer(Request(head, turn, reader, writer)):
                return
            turn += 1


Serve = Callable[..., Awaitable[Scripted]]


@pytest_asyncio.fixture
async def serve(proxy: Proxy) -> AsyncIterator[Serve]:
    """Start scripted upstreams as the app at HOST of a router (PROXY by default)."""
    started: list[Scripted] = []

    async def start(answer: Answer = echo, *, on: Proxy = proxy, host: str = HOST) -> Scripted:
        scripted = Scripted(answer)
        await scripted.raw.start()
        scripted.upstream = Recorded(scripted.raw.port)
        on.add(host, scripted.upstream)
        started.append(scripted)
        return scripted

    yield start
    for scripted in started:
        scripted.raw.stop()


class Client:
    """A raw keep-alive client connection to the router."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def ask(self, raw: bytes, *, head_only: bool = False) -> Reply:
        """Send one request and read its answer."""
        self.writer.write(raw)
        return await self.reply(head_only=head_only)

    async def reply(self, *, head_only: bool = False) -> Reply:
        return await asyncio.wait_for(read_reply(self.reader, head_only=head_only), WAIT)

    async def closed(self) -> bool:
        """Whether the router closes the connection (without sending anything more)."""
        return await asyncio.wait_for(self.reader.read(), WAIT) == b""


@contextlib.asynccontextmanager
async def connected(
    proxy: Proxy, *, port: int | None = None, receive_buffer: int | None = None, limit: int = 2**20
) -> AsyncIterator[Client]:
    """A client connection to PROXY (or to another port of its router); its reader takes in
    up to twice LIMIT before it stops reading."""
    sock = socket.socket()
    if receive_buffer is not None:  # before connecting, so that the window stays small
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port or proxy.port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=limit)
    try:
        yield Client(reader, writer)
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def lagging(proxy: Proxy) -> AsyncIterator[Client]:
    """A client connection whose side of the router takes little at once: small kernel buffers
    at both ends, and a client that takes in little before it stops reading."""
    small = listening()  # the router's sockets from it get its send buffer
    small.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)
    server = await proxy.router.serve(small)
    port = small.getsockname()[1]
    try:
        async with connected(proxy, port=port, receive_buffer=4096, limit=64 * 1024) as client:
            yield client
    finally:
        server.close()


def request(path: str = "/", *headers: str, method: str = "GET", host: str = HOST) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def pooled(proxy: Proxy, path: str) -> tuple[Reply, Reply]:
    """The replies to a GET for PATH on a pooled connection (after a first GET left one) and
    to a GET after it, all on one client connection."""
    async with connected(proxy) as client:
        await client.ask(request("/"))
        reply = await client.ask(request(path))
        after = await client.ask(request("/after"))
    return reply, after


async def test_a_get_after_a_get_goes_the_fast_way_and_a_post_after_them_the_stream_way(
    proxy: Proxy, serve: Serve
) -> None:
    app = await serve()
    body = os.urandom(10_000)
    async with connected(proxy) as client:
        first = await client.ask(request("/1"))
        second = await client.ask(request("/2"))
        posted = await client.ask(
            request("/3", f"Content-Length: {len(body)}", method="POST") + body
        )
        last = await client.ask(request("/4"))
    assert first.body == b"GET /1" and second.body == b"GET /2"
    assert posted.body == b"POST /3 10000 " + hashlib.sha256(body).hexdigest().encode()
    assert last.body == b"GET /4"
    assert app.express[:3] == [False, True, False]
    assert app.connections == 1 and len(app.upstream.opened) == 1
    assert proxy.router.pool.idle(app.upstream) == 1
    assert app.upstream.active == 0


async def test_pipelined_gets_come_back_in_order(proxy: Proxy, serve: Serve) -> None:
    app = await serve()
    paths = [f"/{i}" for i in range(8)]
    async with connected(proxy) as client:
        client.writer.write(b"".join(request(path) for path in paths))
        replies = [await client.reply() for _ in paths]
    assert [reply.body.decode() for reply in replies] == [f"GET {path}" for path in paths]
    assert app.express == [False] + [True] * 7
    assert app.connections == 1


async def test_a_pipelined_post_after_a_fast_get_takes_its_body_along(
    proxy: Proxy, serve: Serve
) -> None:
    """The POST hands the connection to the stream code, with the bytes the fast path had
    already read past the GET: the POST's body and the GET after it."""
    app = await serve()
    body = os.urandom(3000)
    async with connected(proxy) as client:
        await client.ask(request("/"))
        client.writer.write(
            request("/a")
            + request("/b", f"Content-Length: {len(body)}", method="POST")
            + body
            + request("/c")
        )
        replies = [await client.reply() for _ in range(3)]
    assert [reply.body for reply in replies] == [
        b"GET /a",
        b"POST /b 3000 " + hashlib.sha256(body).hexdigest().encode(),
        b"GET /c",
    ]
    assert app.express[:3] == [False, True, False]
    assert app.connections == 1


async def test_pipelined_requests_past_the_head_limit_wait_for_the_one_in_flight(
    proxy: Proxy, serve: Serve
) -> None:
    """They are more bytes than a head may have, and than the router reads at once: it stops
    reading the client while it answers, and reads the rest after."""
    gate = asyncio.Event()

    async def held(request: Request) -> bool:
        if request.path == "/held":
            await gate.wait()
        return await echo(request)

    app = await serve(held)
    paths = [f"/next/{i}" for i in range(150)]
    padding = "X-Padding: " + "p" * 2000
    waiting = b"".join(request(path, padding) for path in paths)
    assert len(waiting) > 256 * 1024 > proxy.router.max_header_bytes
    async with connected(proxy) as client:
        await client.ask(request("/"))
        client.writer.write(request("/held"))
        await until(lambda: len(app.heads) == 2)
        client.writer.write(waiting)
        gate.set()
        held_reply = await client.reply()
        replies = [await client.reply() for _ in paths]
    assert held_reply.body == b"GET /held"
    assert [reply.body.decode() for reply in replies] == [f"GET {path}" for path in paths]
    assert app.express == [False] + [True] * 151
    assert app.connections == 1


async def test_a_chunked_response_is_handed_to_the_stream_code_and_the_next_get_is_fast(
    proxy: Proxy, serve: Serve
) -> None:
    """Its last chunk comes only after the client has had the first: the stream code relays
    what the fast path read and what comes after."""
    gate = asyncio.Event()

    async def chunked(request: Request) -> bool:
        if request.path != "/chunked":
            return await echo(request)
        await request.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await gate.wait()
        await request.send(b"6\r\n world\r\n0\r\n\r\n")
        return True

    app = await serve(chunked)
    async with connected(proxy) as client:
        await client.ask(request("/"))
        client.writer.write(request("/chunked"))
        head = await asyncio.wait_for(client.reader.readuntil(b"\r\n\r\n"), WAIT)
        first = await asyncio.wait_for(client.reader.readuntil(b"hello\r\n"), WAIT)
        gate.set()
        rest = await asyncio.wait_for(client.reader.readuntil(b"0\r\n\r\n"), WAIT)
        after = await client.ask(request("/after"))
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"Transfer-Encoding: chunked" in head
    assert first + rest == b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    assert after.body == b"GET /after"
    assert app.express == [False, True, True]
    assert app.connections == 1
    assert proxy.router.pool.idle(app.upstream) == 1
    assert app.upstream.active == 0


async def test_an_interim_response_on_the_fast_path_reaches_the_client_before_the_final(
    proxy: Proxy, serve: Serve
) -> None:
    early = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
    app = await serve(answering("/hinted", early + sized(b"hinted")))
    async with connected(proxy) as client:
        await client.ask(request("/"))
        interim = await client.ask(request("/hinted"))
        final = await client.reply()
        after = await client.ask(request("/after"))
    assert interim.status == 103 and interim.header("link") == "</a.css>; rel=preload"
    assert (final.status, final.body) == (200, b"hinted")
    assert after.body == b"GET /after"
    assert app.express == [False, True, True]
    assert app.connections == 1


async def test_a_malformed_head_on_the_fast_path_is_a_502_and_its_connection_is_dropped(
    proxy: Proxy, serve: Serve
) -> None:
    app = await serve(answering("/garbage", b"NOT HTTP AT ALL\r\n\r\n"))
    bad, after = await pooled(proxy, "/garbage")
    assert bad.status == 502 and b"fast" in bad.body
    assert after.body == b"GET /after"
    assert app.express == [False, True, False]
    assert app.connections == 2


async def test_a_head_past_the_fast_path_s_limit_is_refused_as_the_stream_code_refuses_it(
    proxy: Proxy, serve: Serve
) -> None:
    """A response head over EXPRESS_HEAD (64 KiB) is the stream code's to answer, which
    refuses it: on a fresh connection or a pooled one, in one piece or several, alike."""
    app = await serve(answering("/huge", sized(b"huge", b"X-Big: " + b"b" * 70_000)))
    async with connected(proxy) as client:
        on_a_fresh_connection = await client.ask(request("/huge"))
    on_a_pooled_connection, _ = await pooled(proxy, "/huge")
    assert app.express[:3] == [False, False, True]
    assert on_a_fresh_connection.status == 502
    assert on_a_pooled_connection.status == 502


async def test_a_large_head_under_the_limit_is_relayed_by_the_fast_path(
    proxy: Proxy, serve: Serve
) -> None:
    value = b"v" * 40_000
    app = await serve(answering("/big-head", sized(b"ok", b"X-Big: " + value)))
    reply, after = await pooled(proxy, "/big-head")
    assert reply.header("x-big") == value.decode() and reply.body == b"ok"
    assert after.body == b"GET /after"
    assert app.express == [False, True, True]


async def closes_on_the_second_request(request: Request) -> bool:
    """Answers the first request on a connection; closes it as the second arrives, as an app
    whose keep-alive timeout races the router's next request does."""
    if request.turn == 0:
        return await echo(request)
    return False


async def resets_on_the_second_request(request: Request) -> bool:
    """As closes_on_the_second_request, with a reset instead of a FIN."""
    if request.turn == 0:
        return await echo(request)
    sock = request.writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return False


@pytest.mark.parametrize("answer", [closes_on_the_second_request, resets_on_the_second_request])
async def test_a_pooled_connection_closed_as_the_request_arrives_is_retried_on_a_fresh_one(
    proxy: Proxy, serve: Serve, answer: Answer
) -> None:
    app = await serve(answer)
    async with connected(proxy) as client:
        replies = [await client.ask(request(f"/{i}")) for i in range(3)]
    assert [reply.body.decode() for reply in replies] == [f"GET /{i}" for i in range(3)]
    # Each second request on a connection came the fast way, then again on a fresh one.
    assert app.express == [False, True, False, True, False]
    assert app.connections == 3
    assert app.upstream.active == 0


async def test_a_pooled_connection_the_app_closed_after_answering_is_never_a_502(
    proxy: Proxy, serve: Serve
) -> None:
    """The app closes without saying so; whether the router has seen the close by the next
    request or not, the client never sees it."""

    async def answers_once(request: Request) -> bool:
        await echo(request)
        return False

    app = await serve(answers_once)
    async with connected(proxy) as client:
        replies = [await client.ask(request(f"/{i}")) for i in range(5)]
    assert [reply.body.decode() for reply in replies] == [f"GET /{i}" for i in range(5)]
    assert app.connections == 5


async def test_a_pooled_connection_that_never_answers_is_a_504(
    make_proxy: MakeProxy, serve: Serve
) -> None:
    proxy = await make_proxy(upstream_timeout=0.5)
    closed = asyncio.Event()
    app = await serve(stalling("/silent", b"", closed), on=proxy)
    silent, after = await pooled(proxy, "/silent")
    assert silent.status == 504 and b"fast" in silent.body
    assert after.body == b"GET /after"
    assert closed.is_set()
    assert app.express == [False, True, False]
    assert app.connections == 2
    assert app.upstream.active == 0


async def test_a_client_leaving_mid_body_closes_the_upstream_connection(
    proxy: Proxy, serve: Serve
) -> None:
    """The app sends part of its body and then waits: only the router can end the exchange,
    and it does when the client leaves."""
    closed = asyncio.Event()
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % 2**20
    app = await serve(stalling("/slow", head + b"a" * 1000, closed))
    async with connected(proxy) as client:
        await client.ask(request("/"))
        client.writer.write(request("/slow"))
        await asyncio.wait_for(client.reader.readuntil(b"\r\n\r\n"), WAIT)
        await asyncio.wait_for(client.reader.readexactly(1000), WAIT)
    await asyncio.wait_for(closed.wait(), WAIT)
    assert app.express == [False, True]
    await until(lambda: app.upstream.active == 0)


async def test_a_client_leaving_before_the_head_closes_the_upstream_connection(
    make_proxy: MakeProxy, serve: Serve
) -> None:
    """The upstream would be given minutes: the client's leaving ends the exchange first, as
    an exchange with no answer."""
    proxy = await make_proxy(upstream_timeout=600.0)
    closed = asyncio.Event()
    app_name = f"fast-{uuid.uuid4().hex[:8]}"
    host = f"{app_name}.localhost"
    app = await serve(stalling("/silent", b"", closed), on=proxy, host=host)
    async with connected(proxy) as client:
        await client.ask(request("/", host=host))
        client.writer.write(request("/silent", host=host))
        await until(lambda: len(app.heads) == 2)
    await asyncio.wait_for(closed.wait(), WAIT)
    assert app.express == [False, True]
    await until(lambda: app.upstream.active == 0)
    unanswered = {"app": app_name, "status_class": "none"}
    assert metrics.DATA_PLANE.get_sample_value("shipway_router_requests_total", unanswered) == 1


async def test_a_large_body_to_a_client_reading_late_arrives_whole(
    proxy: Proxy, serve: Serve
) -> None:
    """The client reads nothing until the router has stopped reading the app: the body then
    waits in the app's buffers, not the router's, and arrives byte for byte."""
    body = os.urandom(8 * 2**20)
    app = await serve(answering("/large", sized(body)))
    async with connected(proxy) as client:
        await client.ask(request("/"))
        client.writer.write(request("/large"))
        await until(lambda: len(app.heads) == 2 and not app.upstream.reading())
        reply = await client.reply()
        after = await client.ask(request("/after"))
    assert len(reply.body) == len(body)
    assert hashlib.sha256(reply.body).digest() == hashlib.sha256(body).digest()
    assert after.body == b"GET /after"
    assert app.express == [False, True, True]
    assert app.connections == 1


async def test_a_request_waiting_behind_a_relay_that_waits_for_the_client_goes_through(
    proxy: Proxy, serve: Serve
) -> None:
    """The next request is taken while the client still reads the last body: its answer waits
    for the client too, and neither is lost."""
    body = os.urandom(8 * 2**20)
    app = await serve(answering("/large", sized(body)))
    async with connected(proxy) as client:
        await client.ask(request("/"))
        client.writer.write(request("/large") + request("/after") + request("/large"))
        await until(lambda: len(app.heads) == 2 and not app.upstream.reading())
        replies = [await client.reply() for _ in range(3)]
    assert [hashlib.sha256(reply.body).digest() for reply in replies] == [
        hashlib.sha256(body).digest(),
        hashlib.sha256(b"GET /after").digest(),
        hashlib.sha256(body).digest(),
    ]
    assert app.express == [False, True, True, True]
    assert app.connections == 1


async def test_a_relay_that_ends_as_the_client_falls_behind_leaves_its_connection_readable(
    proxy: Proxy, serve: Serve
) -> None:
    """The whole body comes in one read, more than the client's side takes at once: the router
    stops reading the app as it writes the body, and pools the connection. The next request on
    it must be read again (or the client waits for a 504)."""
    body = os.urandom(240 * 1024)
    app = await serve(answering("/body", sized(body)))
    app.upstream.receive_buffer = 2**20  # the body in one read
    async with lagging(proxy) as client:
        await client.ask(request("/"))
        reply = await client.ask(request("/body"))
        after = await client.ask(request("/after"))
    assert hashlib.sha256(reply.body).digest() == hashlib.sha256(body).digest()
    assert (after.status, after.body) == (200, b"GET /after")
    assert app.express == [False, True, True]


async def test_a_request_taken_while_the_client_falls_behind_is_not_read_ahead_of_it(
    proxy: Proxy, serve: Serve
) -> None:
    """The last body left the client behind; the next answer, on the same connection, must
    wait for the client from its first byte: the router does not read it meanwhile."""
    body, large = os.urandom(240 * 1024), os.urandom(8 * 2**20)

    async def two_sizes(request: Request) -> bool:
        if request.path == "/large":
            await request.send(sized(large))
            return True
        return await answering("/body", sized(body))(request)

    app = await serve(two_sizes)
    app.upstream.receive_buffer = 2**20  # the first body in one read
    async with lagging(proxy) as client:
        await client.ask(request("/"))
        client.writer.write(request("/body") + request("/large"))
        await until(lambda: len(app.heads) == 3 and not app.upstream.reading())
        replies = [await client.reply() for _ in range(2)]
    assert [hashlib.sha256(reply.body).digest() for reply in replies] == [
        hashlib.sha256(body).digest(),
        hashlib.sha256(large).digest(),
    ]
    assert app.express == [False, True, True]


async def test_a_client_leaving_while_the_relay_waits_for_it_closes_the_upstream_connection(
    proxy: Proxy, serve: Serve
) -> None:
    closed = asyncio.Event()
    app = await serve(stalling("/large", sized(b"z" * 8 * 2**20), closed))
    async with connected(proxy) as client:
        await client.ask(request("/"))
        client.writer.write(request("/large"))
        await until(lambda: len(app.heads) == 2 and not app.upstream.reading())
    await asyncio.wait_for(closed.wait(), WAIT)
    assert app.express == [False, True]
    await until(lambda: app.upstream.active == 0)


async def test_head_204_and_304_have_no_body_and_the_connection_goes_on(
    proxy: Proxy, serve: Serve
) -> None:
    """Each of them says a Content-Length its body does not have: a router waiting for that
    body would never answer the next request."""

    async def bodiless(request: Request) -> bool:
        if request.head.startswith(b"HEAD "):
            await request.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")
        elif request.path == "/nothing":
            await request.send(b"HTTP/1.1 204 No Content\r\nContent-Length: 99\r\n\r\n")
        elif request.path == "/cached":
            await request.send(
                b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 1234\r\n\r\n'
            )
        else:
            return await echo(request)
        return True

    app = await serve(bodiless)
    async with connected(proxy) as client:
        await client.ask(request("/"))
        head = await client.ask(request("/page", method="HEAD"), head_only=True)
        nothing = await client.ask(request("/nothing"))
        cached = await client.ask(request("/cached", 'If-None-Match: "v1"'))
        after = await client.ask(request("/after"))
    assert (head.status, head.header("content-length")) == (200, "1234")
    assert nothing.status == 204
    assert (cached.status, cached.header("etag")) == (304, '"v1"')
    assert (after.status, after.body) == (200, b"GET /after")
    assert app.express == [False, True, True, True, True]
    assert app.connections == 1
    assert proxy.router.pool.idle(app.upstream) == 1


async def test_a_client_s_connection_close_on_the_fast_path_is_honoured(
    proxy: Proxy, serve: Serve
) -> None:
    app = await serve()
    async with connected(proxy) as client:
        await client.ask(request("/"))
        last = await client.ask(request("/last", "Connection: close"))
        assert await client.closed()
    assert last.body == b"GET /last" and last.header("connection") == "close"
    assert app.express == [False, True]
    assert proxy.router.pool.idle(app.upstream) == 1  # the upstream's connection is kept


async def test_http_1_0_keep_alive_on_the_fast_path(proxy: Proxy, serve: Serve) -> None:
    app = await serve()
    raw = b"GET /old HTTP/1.0\r\nHost: fast.localhost\r\nConnection: keep-alive\r\n\r\n"
    async with connected(proxy) as client:
        replies = [await client.ask(raw) for _ in range(3)]
    assert [reply.body for reply in replies] == [b"GET /old"] * 3
    assert all(reply.header("connection") == "keep-alive" for reply in replies)
    assert app.express == [False, True, True]
    assert all(b"\r\nConnection: keep-alive\r\n" in head for head in app.heads)


async def test_an_upstream_connection_that_cannot_carry_another_response_is_not_reused(
    proxy: Proxy, serve: Serve
) -> None:
    """Bytes after the body, a Connection: close, an HTTP/1.0 response: each leaves the
    connection unfit; the client gets the body alone, and its connection goes on."""
    answers = {
        "/extra": sized(b"hello") + b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEXTRA",
        "/close": sized(b"hello", b"Connection: close"),
        "/old": b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    }

    async def unfit(request: Request) -> bool:
        if request.path not in answers:
            return await echo(request)
        await request.send(answers[request.path])
        return True

    app = await serve(unfit)
    async with connected(proxy) as client:
        for path in answers:
            await client.ask(request("/"))
            reply = await client.ask(request(path))
            assert reply.body == b"hello", path
            assert reply.header("connection") is None, path
        last = await client.ask(request("/after"))
    assert last.body == b"GET /after"
    # Per path: a fresh connection for "/", then the fast way on it.
    assert app.express == [False, True] * 3 + [False]
    assert app.connections == 4


async def test_an_idle_connection_the_app_said_something_on_and_closed_is_not_reused(
    proxy: Proxy, serve: Serve
) -> None:
    """Some servers say why before they close an idle keep-alive connection (a 408). The
    router has had those bytes and the close before the next request: the connection is
    dead, and the next request must go on a fresh one, at once."""
    goodbye = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    idle = asyncio.Event()

    said: list[bool] = []

    async def says_goodbye(request: Request) -> bool:
        await echo(request)
        if said:
            return True
        said.append(True)
        await idle.wait()
        await request.send(goodbye)
        return False

    app = await serve(says_goodbye)
    async with connected(proxy) as client:
        await client.ask(request("/1"))
        idle.set()
        await until(app.upstream.dropped)
        second = await client.ask(request("/2"))
    assert (second.status, second.body) == (200, b"GET /2")
    assert app.connections == 2


async def test_bytes_an_app_sends_on_an_idle_connection_never_answer_a_later_request(
    proxy: Proxy, serve: Serve
) -> None:
    """A response nobody asked for, come after the connection went back to the pool: the fast
    path reads past it, but the stream code, taking the connection next, must not give it to
    the request it sends (here: a POST)."""
    stray = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nSTALE"
    pooled_again = asyncio.Event()

    async def strays(request: Request) -> bool:
        await echo(request)
        if request.path == "/stray":
            await pooled_again.wait()
            await request.send(stray)
        return True

    app = await serve(strays)
    async with connected(proxy) as client:
        await client.ask(request("/"))
        await client.ask(request("/stray"))
        pooled_again.set()
        await until(app.upstream.dropped)
        after = await client.ask(request("/after"))
        posted = await client.ask(request("/post", "Content-Length: 2", method="POST") + b"hi")
    assert after.body == b"GET /after"
    assert posted.body == b"POST /post 2 " + hashlib.sha256(b"hi").hexdigest().encode()


async def test_an_upstream_closing_before_the_body_is_a_502_on_the_fast_path(
    proxy: Proxy, serve: Serve
) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
    app = await serve(answering("/cut", head, keep=False))
    cut, after = await pooled(proxy, "/cut")
    assert cut.status == 502
    assert after.body == b"GET /after"
    assert app.express == [False, True, False]
    assert app.upstream.active == 0


async def test_an_upstream_closing_mid_body_closes_the_client_connection(
    proxy: Proxy, serve: Serve
) -> None:
    """The client has had the head and part of the body: the only way left to tell it the
    body is short is to close."""
    short = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789"
    app = await serve(answering("/short", short, keep=False))
    async with connected(proxy) as client:
        await client.ask(request("/"))
        client.writer.write(request("/short"))
        head = await asyncio.wait_for(client.reader.readuntil(b"\r\n\r\n"), WAIT)
        body = await asyncio.wait_for(client.reader.read(), WAIT)  # until it is closed
    assert b"Content-Length: 100\r\n" in head
    assert body == b"0123456789"
    assert app.express == [False, True]
    assert app.upstream.active == 0


async def test_request_id_and_forwarding_headers_on_the_fast_path(
    proxy: Proxy, serve: Serve
) -> None:
    async def claims_an_id(request: Request) -> bool:
        await request.send(sized(b"ok", b"X-Request-Id: the-app-s-own"))
        return True

    app = await serve(claims_an_id)
    anonymous = request("/anonymous", "X-Forwarded-For: 10.9.8.7")
    async with connected(proxy) as client:
        await client.ask(request("/"))
        given = await client.ask(
            request("/given", "X-Request-Id: trace-me.2", "X-Forwarded-For: 10.1.2.3")
        )
        made = [await client.ask(anonymous) for _ in range(2)]
    assert app.express == [False, True, True, True]
    sent = app.heads[1]
    assert sent.count(b"X-Request-Id:") == 1 and b"\r\nX-Request-Id: trace-me.2\r\n" in sent
    assert sent.count(b"X-Forwarded-For:") == 1
    assert b"\r\nX-Forwarded-For: 10.1.2.3, 127.0.0.1\r\n" in sent
    assert given.header("x-request-id") == "trace-me.2"
    # The same request twice (one parsed head): a fresh id each time, the app's id never.
    ids = [reply.header("x-request-id") or "" for reply in made]
    for sent_id, head in zip(ids, app.heads[2:], strict=True):
        assert f"\r\nX-Request-Id: {sent_id}\r\n".encode() in head
    assert ids[0] != ids[1] and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert all(b"\r\nX-Forwarded-For: 10.9.8.7, 127.0.0.1\r\n" in h for h in app.heads[2:])


async def test_requests_on_the_fast_path_are_counted_once_each(
    proxy: Proxy, web: list[AppServer]
) -> None:
    """Through uvicorn, an HTTP server independent of the router's: N requests on a client
    connection take one upstream connection, and count N."""
    app = f"fast-{uuid.uuid4().hex[:8]}"
    up = upstream(web[0])
    proxy.add(f"{app}.localhost", up)
    ok = {"app": app, "status_class": "2xx"}

    def sample(name: str, labels: dict[str, str]) -> float:
        return metrics.DATA_PLANE.get_sample_value(name, labels) or 0.0

    before = sample("shipway_router_requests_total", ok)
    seconds_before = sample("shipway_router_request_duration_seconds_count", {"app": app})
    async with connected(proxy) as client:
        reports = [
            json.loads((await client.ask(request(f"/{i}", host=f"{app}.localhost"))).body)
            for i in range(10)
        ]
    assert [report["path"] for report in reports] == [f"/{i}" for i in range(10)]
    assert len({report["client_port"] for report in reports}) == 1
    assert proxy.router.pool.idle(up) == 1
    assert sample("shipway_router_requests_total", ok) == before + 10
    assert sample("shipway_router_request_duration_seconds_count", {"app": app}) == (
        seconds_before + 10
    )
    assert sample("shipway_router_requests_total", {"app": app, "status_class": "none"}) == 0


async def test_a_handed_over_request_is_counted_once_with_its_status(
    proxy: Proxy, serve: Serve
) -> None:
    app_name = f"fast-{uuid.uuid4().hex[:8]}"
    host = f"{app_name}.localhost"

    async def mixed(request: Request) -> bool:
        if request.path == "/chunked":
            await request.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        elif request.path == "/missing":
            await request.send(sized(b"no", status=b"404 Not Found"))
        else:
            return await echo(request)
        return True

    app = await serve(mixed, host=host)
    async with connected(proxy) as client:
        for path in ("/", "/", "/chunked", "/missing", "/missing"):
            await client.ask(request(path, host=host))
    assert app.express == [False, True, True, True, True]

    def requests(status_class: str) -> float | None:
        labels = {"app": app_name, "status_class": status_class}
        return metrics.DATA_PLANE.get_sample_value("shipway_router_requests_total", labels)

    assert (requests("2xx"), requests("4xx"), requests("none")) == (3, 2, None)
    seconds = metrics.DATA_PLANE.get_sample_value(
        "shipway_router_request_duration_seconds_count", {"app": app_name}
    )
    assert seconds == 5
