"""The fleet registry against a real NATS: reading the fleet leaves nothing behind on the
server, however often it is read; builders long gone are forgotten, and one known gone is
shown lost at once."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import pytest_asyncio
from nats.js import JetStreamContext

from shipway.fleet import registry
from shipway.fleet.registry import BuilderRecord
from tests.servers import Servers


@pytest_asyncio.fixture
async def js(servers: Servers) -> AsyncIterator[JetStreamContext]:
    link = servers.link()
    await link.connect()
    await registry.bucket(link.js)
    await link.js.purge_stream("KV_builders")
    yield link.js
    await link.close()


async def test_reading_the_fleet_often_leaves_no_consumer_behind(js: JetStreamContext) -> None:
    before = (await js.stream_info("KV_builders")).state.consumer_count
    now = time.time()
    names = [f"b-{uuid.uuid4().hex[:6]}" for _ in range(3)]
    for name in names:
        await registry.put(js, BuilderRecord(id=name, pool="p", heartbeat_at=now))
    await registry.request_drain(js, names[0])
    await registry.forget_drain(js, names[0])  # a deleted key is skipped, not an error
    for _ in range(1100):  # past the server's default limit of consumers per stream
        found = await registry.builders(js)
    assert sorted(r.id for r in found) == sorted(names)
    assert (await js.stream_info("KV_builders")).state.consumer_count == before


async def test_builders_long_gone_are_forgotten(js: JetStreamContext) -> None:
    now = time.time()
    await registry.put(js, BuilderRecord(id="old", pool="p", heartbeat_at=now))
    await registry.put(js, BuilderRecord(id="new", pool="p", heartbeat_at=now + 7200))
    later = now + registry.FORGET_AFTER + 60
    assert [r.id for r in await registry.builders(js, later)] == ["new"]
    assert [r.id for r in await registry.builders(js, later)] == ["new"]  # deleted: skipped
    assert await registry.get(js, "old") is None


async def test_a_builder_known_gone_is_lost_at_once_and_a_drained_one_stays_drained(
    js: JetStreamContext,
) -> None:
    now = time.time()
    await registry.put(js, BuilderRecord(id="crashed", pool="p", heartbeat_at=now))
    await registry.put(js, BuilderRecord(id="done", pool="p", state="drained", heartbeat_at=now))
    for name in ("crashed", "done", "unknown"):
        await registry.lost(js, name)
    states = {r.id: r.state for r in await registry.builders(js, now)}
    assert states == {"crashed": "lost", "done": "drained"}
