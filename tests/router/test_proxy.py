"""The router end to end: real sockets, uvicorn upstreams, raw clients where framing matters."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipway.router import Route, TcpUpstream
from tests.router.conftest import MakeProxy, Proxy, upstream
from tests.router.servers import (
    AppServer,
    RawServer,
    ask,
    ask_closed,
    chunked_with_trailers,
    dead_port,
    head_then_close,
    listening,
    one_answer_per_connection,
    read_reply,
    refuses_early,
    silent,
    until_close,
    websocket_echo,
)


def headers_of(report: dict[str, Any]) -> dict[str, list[str]]:
    """The headers an EchoApp received, by lowercase name."""
    out: dict[str, list[str]] = {}
    for name, value in report["headers"]:
        out.setdefault(name, []).append(value)
    return out


async def test_app_host_is_routed_to_its_app(proxy: Proxy, web: list[AppServer]) -> None:
    proxy.add("myapp.localhost", upstream(web[0]))
    proxy.add("myapp--feature-x.localhost", upstream(web[1]))
    async with proxy.client() as client:
        prod = await client.get("/hello?x=1", headers={"Host": f"myapp.localhost:{proxy.port}"})
        preview = await client.get("/", headers={"Host": "MyApp--Feature-X.localhost"})
    assert prod.status_code == 200
    assert prod.json()["server"] == "web.1"
    assert prod.json()["path"] == "/hello"
    assert prod.json()["query"] == "x=1"
    assert preview.json()["server"] == "web.2"


async def test_unknown_app_host_is_a_404_naming_the_host(proxy: Proxy) -> None:
    async with proxy.client() as client:
        response = await client.get("/", headers={"Host": "nope.localhost:8080"})
        hostile = await client.get("/", headers={"Host": "<b>x</b>.localhost"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "nope.localhost" in response.text
    assert hostile.status_code == 404
    assert "<b>" not in hostile.text
    assert "&lt;b&gt;x&lt;/b&gt;.localhost" in hostile.text


async def test_other_hosts_go_to_the_control_plane(proxy: Proxy) -> None:
    async with proxy.client() as client:
        for host in (f"localhost:{proxy.port}", f"127.0.0.1:{proxy.port}", "example.com"):
            response = await client.get("/api/v1/apps", headers={"Host": host})
            assert response.json()["server"] == "control", host
    reply = await ask(proxy.port, b"GET /healthz HTTP/1.0\r\n\r\n")
    assert json.loads(reply.body)["server"] == "control"


async def test_each_request_on_a_connection_is_routed_by_its_own_host(
    proxy: Proxy, web: list[AppServer]
) -> None:
    proxy.add("a.localhost", upstream(web[0]))
    proxy.add("b.localhost", upstream(web[1]))
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    seen = []
    for host in (b"a.localhost", b"localhost", b"b.localhost", b"a.localhost"):
        writer.write(b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
        reply = await read_reply(reader)
        seen.append(json.loads(reply.body)["server"])
    writer.close()
    assert seen == ["web.1", "control", "web.2", "web.1"]


async def test_forwarded_headers_and_request_id(proxy: Proxy, web: list[AppServer]) -> None:
    proxy.add("myapp.localhost", upstream(web[0]))
    async with proxy.client() as client:
        given = await client.get(
            "/",
            headers={
                "Host": "myapp.localhost:8080",
                "X-Forwarded-For": "10.1.2.3",
                "X-Forwarded-Proto": "https",
                "X-Request-Id": "abc.DEF-123_x",
            },
        )
        made = await client.get(
            "/", headers={"Host": "myapp.localhost", "X-Request-Id": "not valid!"}
        )
    seen = headers_of(given.json())
    assert seen["x-forwarded-for"] == ["10.1.2.3, 127.0.0.1"]
    assert seen["x-forwarded-proto"] == ["http"]
    assert seen["x-forwarded-host"] == ["myapp.localhost:8080"]
    assert seen["x-request-id"] == ["abc.DEF-123_x"]
    assert given.headers["x-request-id"] == "abc.DEF-123_x"
    generated = headers_of(made.json())["x-request-id"]
    assert len(generated) == 1 and re.fullmatch(r"[0-9a-f]{32}", generated[0])
    assert made.headers["x-request-id"] == generated[0]
    assert headers_of(made.json())["x-forwarded-for"] == ["127.0.0.1"]


async def test_trace_context_passes_through_untouched_when_traces_are_off(
    proxy: Proxy, web: list[AppServer]
) -> None:
    """The router makes no span of its own then: what the client sent, valid or not, is
    the app's to read."""
    proxy.add("myapp.localhost", upstream(web[0]))
    valid = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    for sent in (valid.encode(), b"00-zz-garbage;;"):
        reply = await ask(
            proxy.port,
            b"GET / HTTP/1.1\r\nHost: myapp.localhost\r\ntraceparent: " + sent + b"\r\n"
            b"tracestate: v=1\r\n\r\n",
        )
        assert reply.status == 200
        seen = headers_of(json.loads(reply.body))
        assert seen["traceparent"] == [sent.decode("latin-1")] and seen["tracestate"] == ["v=1"]


async def test_hop_by_hop_headers_are_not_forwarded(proxy: Proxy, web: list[AppServer]) -> None:
    proxy.add("myapp.localhost", upstream(web[0]))
    reply = await ask(
        proxy.port,
        b"GET / HTTP/1.1\r\nHost: myapp.localhost\r\nConnection: keep-alive, X-Secret\r\n"
        b"X-Secret: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Connection: x\r\n"
        b"Upgrade: h2c\r\nX-Kept: yes\r\n\r\n",
    )
    seen = headers_of(json.loads(reply.body))
    for name in ("x-secret", "keep-alive", "te", "proxy-connection", "upgrade"):
        assert name not in seen, name
    assert seen["x-kept"] == ["yes"]
    assert "connection" not in seen


async def test_content_length_bodies_small_and_large(proxy: Proxy, web: list[AppServer]) -> None:
    proxy.add("myapp.localhost", upstream(web[0]))
    small = b"hello world"
    large = os.urandom(150_000)  # past the buffered size: streamed
    async with proxy.client(headers={"Host": "myapp.localhost"}) as client:
        for body in (small, large):
            response = await client.post("/upload", content=body)
            assert response.json()["body_length"] == len(body)
            assert response.json()["body_sha256"] == hashlib.sha256(body).hexdigest()
        big = await client.get("/big?n=3000000")
    assert len(big.content) == 3_000_000


async def test_chunked_request_body_is_passed_through(proxy: Proxy, web: list[AppServer]) -> None:
    proxy.add("myapp.localhost", upstream(web[0]))
    parts = [os.urandom(n) for n in (1, 70_000, 5, 100_000)]

    async def body() -> AsyncIterator[bytes]:
        for part in parts:
            yield part
            await asyncio.sleep(0.01)

    async with proxy.client(headers={"Host": "myapp.localhost"}) as client:
        response = await client.post("/upload", content=body())
    report = response.json()
    assert report["body_length"] == sum(map(len, parts))
    assert report["body_sha256"] == hashlib.sha256(b"".join(parts)).hexdigest()
    assert "chunked" in headers_of(report)["transfer-encoding"]


async def test_chunked_response_streams_before_the_upstream_finishes(
    proxy: Proxy, web: list[AppServer]
) -> None:
    up = upstream(web[0])
    route = proxy.add("myapp.localhost", up)
    gate = web[0].app.gate("streams")
    async with (
        proxy.client(headers={"Host": "myapp.localhost"}) as client,
        client.stream("GET", "/stream?gate=streams") as response,
    ):
        assert response.headers["transfer-encoding"] == "chunked"
        chunks = response.aiter_raw()
        first = await asyncio.wait_for(chunks.__anext__(), 5)
        assert first == b"first\n"
        assert not gate.is_set()
        assert up.active == 1
        assert route.last_request > 0
        gate.set()
        rest = b"".join([chunk async for chunk in chunks])
    assert rest == b"last\n"
    assert up.active == 0


async def test_a_client_leaving_a_stream_closes_its_upstream_connection_at_once(
    proxy: Proxy,
) -> None:
    """The upstream writes nothing after its first chunk: only the router can end the stream,
    and it does when the client leaves, not at the stream's next write."""
    upstream_closed = asyncio.Event()

    async def streams_without_end(
        server: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await server.read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await writer.drain()
        await reader.read()
        upstream_closed.set()

    server = await RawServer(streams_without_end).start()
    proxy.add("feed.localhost", TcpUpstream("127.0.0.1", server.port))
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: feed.localhost\r\n\r\n")
    await asyncio.wait_for(reader.readuntil(b"first\r\n"), 10)
    writer.close()
    await asyncio.wait_for(upstream_closed.wait(), 30)
    server.stop()


async def test_head_request_has_no_body(proxy: Proxy, web: list[AppServer]) -> None:
    proxy.add("myapp.localhost", upstream(web[0]))
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"HEAD /big?n=100 HTTP/1.1\r\nHost: myapp.localhost\r\n\r\n")
    head = await read_reply(reader, head_only=True)
    writer.write(b"GET /big?n=10 HTTP/1.1\r\nHost: myapp.localhost\r\n\r\n")
    after = await read_reply(reader)
    writer.close()
    assert head.header("content-length") == "100"
    assert after.body == b"x" * 10


async def test_http_1_0_keep_alive_and_close(proxy: Proxy, web: list[AppServer]) -> None:
    proxy.add("myapp.localhost", upstream(web[0]))
    plain, closed = await ask_closed(proxy.port, b"GET / HTTP/1.0\r\nHost: myapp.localhost\r\n\r\n")
    assert plain.status == 200 and closed
    kept, closed = await ask_closed(
        proxy.port, b"GET / HTTP/1.0\r\nHost: myapp.localhost\r\nConnection: keep-alive\r\n\r\n"
    )
    assert kept.status == 200 and not closed
    assert kept.header("connection") == "keep-alive"


async def test_upstream_connections_are_reused(proxy: Proxy, web: list[AppServer]) -> None:
    up = upstream(web[0])
    proxy.add("myapp.localhost", up)
    async with proxy.client(headers={"Host": "myapp.localhost"}) as client:
        ports = {(await client.get("/")).json()["client_port"] for _ in range(5)}
    assert len(ports) == 1
    assert proxy.router.pool.idle(up) == 1


async def test_round_robin_over_three_upstreams(proxy: Proxy, web: list[AppServer]) -> None:
    proxy.add("myapp.localhost", *(upstream(server) for server in web))
    async with proxy.client(headers={"Host": "myapp.localhost"}) as client:
        seen = [(await client.get("/")).json()["server"] for _ in range(6)]
    assert seen == ["web.1", "web.2", "web.3", "web.1", "web.2", "web.3"]


async def test_switch_takes_effect_on_the_next_request(proxy: Proxy, web: list[AppServer]) -> None:
    proxy.add("myapp.localhost", upstream(web[0]))
    async with proxy.client(headers={"Host": "myapp.localhost"}) as client:
        before = (await client.get("/")).json()["server"]
        old = proxy.table.switch(
            "myapp.localhost", Route("myapp", "production", (upstream(web[2]),))
        )
        after = (await client.get("/")).json()["server"]
    assert (before, after) == ("web.1", "web.3")
    assert old is not None and old.upstreams[0].name == "web.1"


async def test_request_head_too_large_is_431(proxy: Proxy) -> None:
    raw = b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n"
    reply, closed = await ask_closed(proxy.port, raw)
    assert reply.status == 431 and closed


@pytest.mark.parametrize(
    "raw",
    [
        b"NONSENSE\r\n\r\n",
        b"GET / HTTP/2.0\r\nHost: localhost\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost localhost\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost : localhost\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\nX-Smuggled: 1\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
    ],
)
async def test_unparsable_requests_are_400(proxy: Proxy, raw: bytes) -> None:
    reply, closed = await ask_closed(proxy.port, raw)
    assert reply.status == 400 and closed


class CountingUpstream(TcpUpstream):
    """Counts how often the router connected."""

    opened = 0

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        self.opened += 1
        return await super().open()


async def test_content_length_over_the_limit_is_413_without_the_upstream(
    proxy: Proxy, web: list[AppServer]
) -> None:
    up = CountingUpstream("127.0.0.1", web[0].port)
    proxy.add("myapp.localhost", up)
    raw = b"POST / HTTP/1.1\r\nHost: myapp.localhost\r\nContent-Length: 200001\r\n\r\nabc"
    reply, closed = await ask_closed(proxy.port, raw)
    assert reply.status == 413 and closed
    assert up.opened == 0


async def test_chunked_body_growing_past_the_limit_is_413(
    proxy: Proxy, web: list[AppServer]
) -> None:
    proxy.add("myapp.localhost", upstream(web[0]))
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"POST / HTTP/1.1\r\nHost: myapp.localhost\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (50_000, b"z" * 50_000)
    for _ in range(5):
        writer.write(chunk)
        await writer.drain()
    reply = await read_reply(reader)
    assert reply.status == 413
    assert await reader.read() == b""
    writer.close()


async def test_control_plane_has_no_body_limit(proxy: Proxy) -> None:
    body = os.urandom(300_000)
    async with proxy.client() as client:
        response = await client.post("/git/app.git", content=body)
    assert response.json()["body_length"] == len(body)


async def test_dead_upstream_is_a_502_naming_the_app(proxy: Proxy) -> None:
    proxy.add("myapp.localhost", TcpUpstream("127.0.0.1", dead_port()))
    async with proxy.client() as client:
        response = await client.get("/", headers={"Host": "myapp.localhost"})
        after = await client.get("/", headers={"Host": "localhost"})
    assert response.status_code == 502
    assert "myapp" in response.text
    assert "Traceback" not in response.text
    assert after.json()["server"] == "control"


async def test_dead_control_plane_is_a_json_502(make_proxy: MakeProxy) -> None:
    proxy = await make_proxy()
    proxy.router.control = TcpUpstream("127.0.0.1", dead_port())
    async with proxy.client() as client:
        response = await client.get("/api/v1/apps")
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "bad_gateway"


async def test_silent_upstream_is_a_504(make_proxy: MakeProxy) -> None:
    proxy = await make_proxy(upstream_timeout=0.3)
    server = await RawServer(silent).start()
    proxy.add("slow.localhost", TcpUpstream("127.0.0.1", server.port))
    async with proxy.client() as client:
        response = await client.get("/", headers={"Host": "slow.localhost"})
    server.stop()
    assert response.status_code == 504
    assert "slow" in response.text


async def test_body_until_close_closes_the_client_connection(proxy: Proxy) -> None:
    server = await RawServer(until_close).start()
    proxy.add("old.localhost", TcpUpstream("127.0.0.1", server.port))
    reply, closed = await ask_closed(proxy.port, b"GET / HTTP/1.1\r\nHost: old.localhost\r\n\r\n")
    server.stop()
    assert reply.body == b"until the end"
    assert reply.header("connection") == "close" and closed


async def test_stale_pooled_connection_is_retried_on_a_fresh_one(proxy: Proxy) -> None:
    server = await RawServer(one_answer_per_connection).start()
    proxy.add("flaky.localhost", TcpUpstream("127.0.0.1", server.port))
    async with proxy.client(headers={"Host": "flaky.localhost"}) as client:
        first = await client.get("/")
        second = await client.post("/", content=b"small body")
    server.stop()
    assert first.text == "answer on connection 1"
    assert second.status_code == 200
    assert second.text == "answer on connection 2"
    assert server.connections == 2


async def test_stale_pooled_connection_with_a_streamed_body_is_not_retried(
    proxy: Proxy,
) -> None:
    server = await RawServer(one_answer_per_connection).start()
    proxy.add("flaky.localhost", TcpUpstream("127.0.0.1", server.port))

    async def body() -> AsyncIterator[bytes]:
        yield b"streamed"

    async with proxy.client(headers={"Host": "flaky.localhost"}) as client:
        await client.get("/")
        second = await client.post("/", content=body())
    server.stop()
    assert second.status_code == 502


async def test_upgrade_is_spliced_after_a_101(proxy: Proxy) -> None:
    server = await RawServer(websocket_echo).start()
    up = TcpUpstream("127.0.0.1", server.port)
    proxy.add("ws.localhost", up)
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(
        b"GET /socket HTTP/1.1\r\nHost: ws.localhost\r\nConnection: keep-alive, Upgrade\r\n"
        b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    reply = await read_reply(reader)
    assert reply.status == 101
    assert reply.header("upgrade") == "websocket"
    assert reply.header("connection") == "Upgrade"
    assert reply.header("sec-websocket-accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert await reader.readexactly(5) == b"hello"
    for message in (b"\x81\x02hi", b"more bytes"):
        writer.write(message)
        assert await reader.readexactly(len(message)) == message
    assert up.active == 1
    sent = server.heads[0]
    assert b"Connection: Upgrade\r\n" in sent and b"Upgrade: websocket\r\n" in sent
    writer.close()
    for _ in range(100):
        if up.active == 0:
            break
        await asyncio.sleep(0.01)
    server.stop()
    assert up.active == 0


async def test_waker_starts_the_app_once_and_the_held_requests_go_through(
    proxy: Proxy, web: list[AppServer]
) -> None:
    calls = 0

    async def wake() -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.1)
        proxy.table.switch("sleepy.localhost", Route("sleepy", "production", (upstream(web[1]),)))

    proxy.table.switch("sleepy.localhost", Route("sleepy", "production", waker=wake))
    async with proxy.client(headers={"Host": "sleepy.localhost"}) as client:
        responses = await asyncio.gather(*(client.get("/") for _ in range(3)))
    assert [r.json()["server"] for r in responses] == ["web.2"] * 3
    assert calls == 1


async def test_failing_waker_is_a_503(proxy: Proxy) -> None:
    async def wake() -> None:
        raise RuntimeError("no capacity")

    proxy.table.switch("sleepy.localhost", Route("sleepy", "production", waker=wake))
    proxy.table.switch("empty.localhost", Route("empty", "production"))
    async with proxy.client() as client:
        failed = await client.get("/", headers={"Host": "sleepy.localhost"})
        empty = await client.get("/", headers={"Host": "empty.localhost"})
    assert failed.status_code == 503 and "sleepy" in failed.text
    assert empty.status_code == 503


async def test_expect_100_continue_is_passed_through(proxy: Proxy, web: list[AppServer]) -> None:
    proxy.add("myapp.localhost", upstream(web[0]))
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(
        b"POST / HTTP/1.1\r\nHost: myapp.localhost\r\nContent-Length: 5\r\n"
        b"Expect: 100-continue\r\n\r\n"
    )
    interim = await read_reply(reader)
    assert interim.status == 100
    writer.write(b"hello")
    reply = await read_reply(reader)
    writer.close()
    assert json.loads(reply.body)["body_length"] == 5


async def test_a_broken_handler_does_not_stop_the_server(
    proxy: Proxy, web: list[AppServer], caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(TcpUpstream):
        async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            raise RuntimeError("boom")

    proxy.add("broken.localhost", Broken("127.0.0.1", 1, name="broken"))
    proxy.add("myapp.localhost", upstream(web[0]))
    async with proxy.client() as client:
        broken = await client.get("/", headers={"Host": "broken.localhost"})
        fine = await client.get("/", headers={"Host": "myapp.localhost"})
    assert broken.status_code == 502
    assert fine.status_code == 200


async def test_upstream_closing_before_the_body_is_a_502(proxy: Proxy) -> None:
    server = await RawServer(head_then_close).start()
    up = TcpUpstream("127.0.0.1", server.port)
    proxy.add("cut.localhost", up)
    reply = await ask(proxy.port, b"GET / HTTP/1.1\r\nHost: cut.localhost\r\n\r\n")
    server.stop()
    assert reply.status == 502
    assert up.active == 0


async def test_chunk_extensions_and_trailers_pass_through(proxy: Proxy) -> None:
    server = await RawServer(chunked_with_trailers).start()
    up = TcpUpstream("127.0.0.1", server.port)
    proxy.add("chunks.localhost", up)
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: chunks.localhost\r\n\r\n")
    head = await reader.readuntil(b"\r\n\r\n")
    body = await reader.readuntil(b"0\r\nX-Sum: 6\r\n\r\n")
    assert body == b"5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\nX-Sum: 6\r\n\r\n"
    assert b"Trailer" not in head  # hop-by-hop
    assert proxy.router.pool.idle(up) == 1
    writer.write(b"GET / HTTP/1.1\r\nHost: chunks.localhost\r\n\r\n")
    second = await read_reply(reader)
    writer.close()
    server.stop()
    assert second.body == b"hello!"
    assert proxy.router.pool.idle(up) == 0  # the upstream said close
    assert server.connections == 1


async def test_pipelined_requests_are_answered_in_order(proxy: Proxy, web: list[AppServer]) -> None:
    proxy.add("a.localhost", upstream(web[0]))
    proxy.add("b.localhost", upstream(web[1]))
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(
        b"GET /1 HTTP/1.1\r\nHost: b.localhost\r\n\r\n"
        b"POST /2 HTTP/1.1\r\nHost: a.localhost\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /3 HTTP/1.1\r\nHost: b.localhost\r\n\r\n"
    )
    replies = [json.loads((await read_reply(reader)).body) for _ in range(3)]
    writer.close()
    assert [(r["server"], r["path"]) for r in replies] == [
        ("web.2", "/1"),
        ("web.1", "/2"),
        ("web.2", "/3"),
    ]
    assert replies[1]["body_length"] == 3


async def test_idle_client_connections_are_closed(
    make_proxy: MakeProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("shipway.router.proxy.KEEPALIVE_SECONDS", 0.2)
    proxy = await make_proxy(upstream_timeout=0.4)
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert (await read_reply(reader)).status == 200
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()


async def test_early_answer_to_a_streamed_upload_closes_the_connection(proxy: Proxy) -> None:
    server = await RawServer(refuses_early).start()
    up = TcpUpstream("127.0.0.1", server.port)
    proxy.add("early.localhost", up)
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"POST / HTTP/1.1\r\nHost: early.localhost\r\nContent-Length: 150000\r\n\r\n")
    writer.write(b"x" * 1000)
    reply = await read_reply(reader)
    assert reply.status == 413 and reply.body == b"big!"
    assert reply.header("connection") == "close"
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()
    server.stop()
    assert up.active == 0


async def test_serving_on_a_unix_socket(
    make_proxy: MakeProxy, socket_dir: Path, web: list[AppServer]
) -> None:
    proxy = await make_proxy()
    path = str(socket_dir / f"router-{os.getpid()}.sock")
    server = await proxy.router.serve(listening(socket.AF_UNIX, path))
    proxy.add("myapp.localhost", upstream(web[0]))
    transport = httpx.AsyncHTTPTransport(uds=path)
    async with httpx.AsyncClient(transport=transport, base_url="http://myapp.localhost") as client:
        response = await client.get("/over-unix")
    server.close()
    os.unlink(path)
    assert response.json()["path"] == "/over-unix"
    assert headers_of(response.json())["x-forwarded-for"] == ["unknown"]
