"""The route table and the upstream pool, without a server."""

from __future__ import annotations

import asyncio
import gc

from shipway.router import Route, RouteTable, TcpUpstream
from shipway.router.pool import Connection, Pool


def test_switch_remove_and_hosts() -> None:
    table = RouteTable()
    first = Route("app", "production")
    second = Route("app", "production")
    assert table.switch("App.Localhost", first) is None
    assert table.get("app.localhost") is first
    assert table.switch("app.localhost", second) is first
    table.switch("app--x.localhost", Route("app", "preview-x"))
    assert table.hosts() == ["app--x.localhost", "app.localhost"]
    assert table.remove("app.localhost") is second
    assert table.get("app.localhost") is None
    assert table.remove("app.localhost") is None


def test_round_robin() -> None:
    ups = tuple(TcpUpstream("127.0.0.1", port) for port in (1, 2, 3))
    route = Route("app", "production", ups)
    names = [route.next_upstream().name for _ in range(5)]
    assert names == ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:1", "127.0.0.1:2"]


async def test_pool_reuses_live_connections_and_drops_closed_ones() -> None:
    async def quiet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(quiet, "127.0.0.1", 0)
    upstream = TcpUpstream("127.0.0.1", server.sockets[0].getsockname()[1])
    pool = Pool(size=2)
    conns = [Connection(*await upstream.open()) for _ in range(3)]
    for conn in conns:
        pool.put(upstream, conn)
    assert pool.idle(upstream) == 2  # the third was closed: the pool is full
    taken = pool.take(upstream)
    assert taken is conns[1] and taken.reused
    conns[0].close()
    await asyncio.sleep(0.05)
    assert pool.take(upstream) is None
    taken.close()
    server.close()


async def test_pool_forgets_upstreams_nobody_holds() -> None:
    async def quiet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(quiet, "127.0.0.1", 0)
    upstream = TcpUpstream("127.0.0.1", server.sockets[0].getsockname()[1])
    pool = Pool()
    conn = Connection(*await upstream.open())
    pool.put(upstream, conn)
    del upstream
    gc.collect()
    assert conn.writer.is_closing()
    server.close()
