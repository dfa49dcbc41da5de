"""GET /api/v1/apps/{app}/logs: a running app's log as server-sent events that never end."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from shipway.accounts import tokens
from shipway.accounts.roles import Role
from shipway.api.app import create_app
from shipway.api.routes import logs as log_routes
from shipway.context import Context
from shipway.links import NatsLink
from shipway.logs import LogWriter, bus, lines
from shipway.logs import stream as log_stream
from shipway.logs.sse import SseEvent, iter_sse
from shipway.settings import Settings
from shipway.store import Store
from shipway.store.tables import App, Environment, Organization
from tests.helpers import auth
from tests.logs.conftest import link  # noqa: F401

URL = "/api/v1/apps/web/logs"


def make_app_of(store: Store, organization: str) -> tuple[int, str]:
    """An app "web" of a new organization, with an id no other test uses (NATS is shared), and
    a viewer token of that organization."""
    app_id = uuid.uuid4().int % (2**31 - 2) + 1
    with store.transaction() as session:
        org = Organization(name=organization)
        session.add(org)
        session.flush()
        session.add(App(id=app_id, organization_id=org.id, name="web"))
        session.flush()
        session.add(Environment(app_id=app_id, name="production"))
        minted = tokens.mint(session, org.id, name="viewer", role=Role.VIEWER)
        return app_id, minted.secret


def store_lines(store: Store, app_id: int, count: int) -> None:
    with store.transaction() as session:
        lines.insert(session, "app", app_id, [(n, f"line {n}") for n in range(1, count + 1)])


def client_for(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def events(response: httpx.Response) -> list[SseEvent]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return list(iter_sse(response))


def seqs(found: list[SseEvent]) -> list[int]:
    assert all(e.event == "line" for e in found), found
    return [json.loads(e.data)["seq"] for e in found]


async def test_the_stored_tail_without_an_end(store: Store, settings: Settings) -> None:
    app_id, token = make_app_of(store, "acme")
    store_lines(store, app_id, 150)
    async with client_for(create_app(Context(settings, store))) as client:
        default = await client.get(URL, headers=auth(token))
        two = await client.get(URL, params={"tail": 2, "follow": "false"}, headers=auth(token))
        none = await client.get(URL, params={"tail": 0}, headers=auth(token))
        resumed = await client.get(
            URL, params={"tail": 2}, headers={**auth(token), "Last-Event-ID": "140"}
        )
    assert seqs(events(default)) == list(range(51, 151))
    assert events(two) == [
        SseEvent("line", "149", '{"seq": 149, "line": "line 149"}'),
        SseEvent("line", "150", '{"seq": 150, "line": "line 150"}'),
    ]
    assert events(none) == []
    assert seqs(events(resumed)) == list(range(141, 151))


async def test_bad_input_and_other_tenants_never_500(store: Store, settings: Settings) -> None:
    _, token = make_app_of(store, "acme")
    _, other = make_app_of(store, "globex")
    async with client_for(create_app(Context(settings, store))) as client:
        bad = [
            await client.get(URL, params={"tail": -1}, headers=auth(token)),
            await client.get(URL, params={"tail": 10_001}, headers=auth(token)),
            await client.get(URL, params={"tail": "x"}, headers=auth(token)),
            await client.get(URL, params={"follow": "perhaps"}, headers=auth(token)),
            await client.get(URL, headers={**auth(token), "Last-Event-ID": "x"}),
            await client.get(URL, headers={**auth(token), "Last-Event-ID": str(2**31)}),
        ]
        missing = [
            await client.get("/api/v1/apps/nope/logs", headers=auth(token)),
            await client.get("/api/v1/apps/a%00b/logs", headers=auth(token)),
        ]
        mine = await client.get(URL, params={"follow": "false"}, headers=auth(other))
        anonymous = await client.get(URL)
    for response in bad:
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "invalid"
    for response in missing:
        assert response.status_code == 404, response.text
    assert events(mine) == []  # globex's own "web", which has no lines
    assert anonymous.status_code == 401


async def _lines(stream: AsyncIterator[str], count: int) -> list[int]:
    """The seqs of the next COUNT line events of STREAM (keep-alives skipped)."""
    found: list[int] = []
    while len(found) < count:
        chunk = await asyncio.wait_for(anext(stream), 10)
        if chunk.startswith("id: "):
            found.append(json.loads(chunk.split("data: ", 1)[1])["seq"])
    return found


@pytest.mark.integration
async def test_the_live_tail_follows_with_no_gap_no_duplicate_and_no_end(
    store: Store,
    link: NatsLink,  # noqa: F811
) -> None:
    app_id, _ = make_app_of(store, "acme")
    writer = await LogWriter.open(store, link.js, "app", app_id, flush_seconds=None)
    for n in range(1, 11):
        await writer.write(f"line {n}")
    await writer.flush()
    for n in range(11, 16):  # published, not stored yet
        await writer.write(f"line {n}")
    stream = log_stream.events(
        store, link.js, "app", app_id, 7, finished=None, over=None, lookback=log_routes.APP_LOOKBACK
    )
    try:
        assert await _lines(stream, 8) == list(range(8, 16))
        for n in range(16, 21):
            await writer.write(f"line {n}")
        assert await _lines(stream, 5) == list(range(16, 21))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(stream), 0.5)  # an app's log does not end
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
        await writer.flush()


@pytest.mark.integration
async def test_a_tail_since_a_time_skips_older_messages(
    store: Store,
    link: NatsLink,  # noqa: F811
) -> None:
    app_id, _ = make_app_of(store, "acme")
    writer = await LogWriter.open(store, link.js, "app", app_id, flush_seconds=None)
    for n in range(1, 4):
        await writer.write(f"old {n}")
    await asyncio.sleep(0.05)
    tail = await bus.Tail.open(link.js, "app", app_id, since=datetime.now(UTC))
    try:
        await writer.write("new 4")
        got = await tail.next(timeout=5)
        assert got is not None and (got.seq, got.line) == (4, "new 4")
    finally:
        await tail.close()
        await writer.flush()
