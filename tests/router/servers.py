"""Upstreams and a raw client for the router's tests, all on real sockets.

The well-behaved upstream is uvicorn running a small ASGI app, an HTTP implementation
independent of the router's. The misbehaving ones (silent, stale, close-delimited, upgrade)
are raw asyncio servers, since misbehaving is their point.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import socket
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import uvicorn

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def listening(family: int = socket.AF_INET, path: str | None = None) -> socket.socket:
    """A bound, listening socket on a free loopback port (or at PATH for a unix socket)."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    if family == socket.AF_UNIX:
        assert path is not None
        sock.bind(path)
    else:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def dead_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EchoApp:
    """Answers with what it received, streams on /stream, and sizes bodies on /big."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.gates: dict[str, asyncio.Event] = {}

    def gate(self, key: str) -> asyncio.Event:
        """The event a /stream?gate=KEY response waits on before its last chunk."""
        return self.gates.setdefault(key, asyncio.Event())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        query = parse_qs(scope["query_string"].decode())
        if scope["path"] == "/stream":
            await self._stream(send, query["gate"][0])
            return
        if scope["path"] == "/big":
            payload = b"x" * int(query["n"][0])
            await _respond(send, 200, payload, b"application/octet-stream")
            return
        report = {
            "server": self.name,
            "method": scope["method"],
            "path": scope["path"],
            "query": scope["query_string"].decode(),
            "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
            "body_length": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "client_port": scope["client"][1] if scope.get("client") else None,
        }
        await _respond(send, 200, json.dumps(report).encode(), b"application/json")

    async def _stream(self, send: Send, key: str) -> None:
        """A chunked response whose last part waits for the test to open the gate."""
        headers = [(b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"first\n", "more_body": True})
        await self.gate(key).wait()
        await send({"type": "http.response.body", "body": b"last\n"})


async def _respond(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _QuietUvicorn(uvicorn.Server):
    """uvicorn without signal handlers, inside the test's event loop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class AppServer:
    """A running uvicorn serving an EchoApp."""

    app: EchoApp
    sock: socket.socket
    server: uvicorn.Server
    task: asyncio.Task[None]

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    async def stop(self) -> None:
        self.server.should_exit = True
        await self.task


async def start_app(name: str, sock: socket.socket | None = None) -> AppServer:
    """Start uvicorn with an EchoApp on SOCK (a fresh loopback port by default)."""
    sock = sock or listening()
    app = EchoApp(name)
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    server = _QuietUvicorn(config)
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.005)
    return AppServer(app, sock, server, task)


Handler = Callable[["RawServer", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class RawServer:
    """A hand-written upstream; records connections and the request heads it read."""

    handler: Handler
    connections: int = 0
    heads: list[bytes] = field(default_factory=list)
    server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self) -> RawServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(self, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def read_head(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        self.heads.append(head)
        return head

    def stop(self) -> None:
        assert self.server is not None
        self.server.close()


async def silent(server: RawServer, reader: asyncio.StreamReader, _: asyncio.StreamWriter) -> None:
    """Reads the request and never answers, until the router gives up and closes."""
    await server.read_head(reader)
    await reader.read()


async def until_close(
    server: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Answers with a body that ends when the connection does."""
    await server.read_head(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil ")
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.write(b"the end")


async def head_then_close(
    server: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Promises a body, then closes without sending it."""
    await server.read_head(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
    await writer.drain()


async def chunked_with_trailers(
    server: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Answers every request with a chunked body that ends in a trailer, saying close once."""
    while True:
        await server.read_head(reader)
        last = len(server.heads) % 2 == 0
        writer.write(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n"
            + (b"Connection: close\r\n" if last else b"")
            + b"\r\n5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\nX-Sum: 6\r\n\r\n"
        )
        await writer.drain()
        if last:
            return


async def refuses_early(
    server: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Answers 413 as soon as it has read the head, without reading the body."""
    await server.read_head(reader)
    writer.write(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\n\r\nbig!")
    await writer.drain()
    await asyncio.sleep(0.5)


async def one_answer_per_connection(
    server: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Keeps the connection open after one answer, then drops it on the next request.

    That is a keep-alive timeout racing a new request: the connection looked alive in the
    pool and dies as soon as it is used.
    """
    await server.read_head(reader)
    body = f"answer on connection {server.connections}".encode()
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")


async def websocket_echo(
    server: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Accepts a WebSocket handshake, greets, then echoes every byte back."""
    head = await server.read_head(reader)
    key = b""
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            key = value.strip()
    accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    writer.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\nhello"
    )
    await writer.drain()
    while data := await reader.read(4096):
        writer.write(data)
        await writer.drain()


@dataclass
class Reply:
    """A response as a raw client read it."""

    status: int
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


async def read_reply(reader: asyncio.StreamReader, *, head_only: bool = False) -> Reply:
    """Read one response: sized, chunked (decoded) or until close."""
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw[:-4].decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if head_only or status in (101, 204, 304) or 100 <= status < 200:
        return Reply(status, headers, b"")
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        body = b""
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            body += (await reader.readexactly(size + 2))[:-2]
        await reader.readuntil(b"\r\n")
    else:
        body = await reader.read()
    return Reply(status, headers, body)


async def ask(port: int, raw: bytes) -> Reply:
    """Send RAW on a new connection and read the first reply."""
    reply, _ = await ask_closed(port, raw, wait=0.0)
    return reply


async def ask_closed(port: int, raw: bytes, wait: float = 0.5) -> tuple[Reply, bool]:
    """Send RAW on a new connection; the first reply, and whether the router closed after it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        reply = await read_reply(reader)
        if not wait:
            return reply, False
        try:
            closed = await asyncio.wait_for(reader.read(1), wait) == b""
        except TimeoutError:
            closed = False
        return reply, closed
    finally:
        writer.close()
