"""GET /api/v1/builds/{id}/logs: server-sent events over the real store, with and without NATS."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from shipway.api import errors
from shipway.api.app import Served
from shipway.api.routes import logs as log_routes
from shipway.context import Context
from shipway.links import NatsLink
from shipway.logs import LogWriter, lines
from shipway.logs.sse import SseEvent, iter_sse
from shipway.settings import Settings
from shipway.store import Store
from tests.helpers import auth
from tests.logs.conftest import Tenant, make_build, make_tenant, set_status


def make_app(store: Store, settings: Settings, link: NatsLink | None = None) -> Served:
    app = FastAPI()
    errors.install(app)
    api = APIRouter(prefix="/api/v1")
    api.include_router(log_routes.router)
    app.include_router(api)
    return Served(app, Context(settings=settings, store=store, nats=link))


def client_for(app: Served) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def store_lines(store: Store, build_id: int, count: int) -> None:
    with store.transaction() as session:
        lines.insert(session, "build", build_id, [(n, f"line {n}") for n in range(1, count + 1)])


def events(response: httpx.Response) -> list[SseEvent]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return list(iter_sse(response))


def seqs(found: list[SseEvent]) -> list[int]:
    return [json.loads(e.data)["seq"] for e in found if e.event == "line"]


@pytest.fixture
def acme(store: Store) -> Tenant:
    return make_tenant(store, "acme")


async def test_stored_lines_then_the_end_of_a_finished_build(
    store: Store, settings: Settings, acme: Tenant
) -> None:
    build_id = make_build(store, acme, status="failed")
    store_lines(store, build_id, 3)
    async with client_for(make_app(store, settings)) as client:
        response = await client.get(f"/api/v1/builds/{build_id}/logs", headers=auth(acme.token))
    found = events(response)
    assert found == [
        SseEvent("line", "1", '{"seq": 1, "line": "line 1"}'),
        SseEvent("line", "2", '{"seq": 2, "line": "line 2"}'),
        SseEvent("line", "3", '{"seq": 3, "line": "line 3"}'),
        SseEvent("end", "3", '{"status": "failed"}'),
    ]
    assert response.text.startswith('id: 1\nevent: line\ndata: {"seq": 1, "line": "line 1"}\n\n')
    assert response.text.endswith('event: end\ndata: {"status": "failed"}\n\n')


async def test_last_event_id_and_after_resume(
    store: Store, settings: Settings, acme: Tenant
) -> None:
    build_id = make_build(store, acme, status="succeeded")
    store_lines(store, build_id, 10)
    url = f"/api/v1/builds/{build_id}/logs"
    async with client_for(make_app(store, settings)) as client:
        by_header = await client.get(url, headers={**auth(acme.token), "Last-Event-ID": "7"})
        by_query = await client.get(url, params={"after": 8}, headers=auth(acme.token))
        past_end = await client.get(url, params={"after": 10}, headers=auth(acme.token))
    assert seqs(events(by_header)) == [8, 9, 10]
    assert seqs(events(by_query)) == [9, 10]
    assert events(past_end) == [SseEvent("end", None, '{"status": "succeeded"}')]


async def test_a_running_build_without_nats_serves_stored_lines_and_closes(
    store: Store, settings: Settings, acme: Tenant
) -> None:
    build_id = make_build(store, acme, status="building")
    store_lines(store, build_id, 2)
    async with client_for(make_app(store, settings)) as client:
        followed = await client.get(f"/api/v1/builds/{build_id}/logs", headers=auth(acme.token))
    assert [e.event for e in events(followed)] == ["line", "line"]


async def test_other_tenants_unknown_ids_and_bad_input_never_500(
    store: Store, settings: Settings, acme: Tenant
) -> None:
    globex = make_tenant(store, "globex")
    build_id = make_build(store, acme, status="succeeded")
    url = f"/api/v1/builds/{build_id}/logs"
    async with client_for(make_app(store, settings)) as client:
        other = await client.get(url, headers=auth(globex.token))
        unknown = await client.get("/api/v1/builds/2147483000/logs", headers=auth(acme.token))
        huge = await client.get(f"/api/v1/builds/{10**30}/logs", headers=auth(acme.token))
        bad_id = await client.get("/api/v1/builds/abc/logs", headers=auth(acme.token))
        bad_header = await client.get(url, headers={**auth(acme.token), "Last-Event-ID": "x"})
        negative = await client.get(url, params={"after": -1}, headers=auth(acme.token))
        bad_follow = await client.get(url, params={"follow": "perhaps"}, headers=auth(acme.token))
        anonymous = await client.get(url)
    for response in (other, unknown):
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "not_found"
    for response in (huge, bad_id, bad_header, negative, bad_follow):
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "invalid"
    assert anonymous.status_code == 401


@pytest.mark.integration
async def test_a_live_build_is_followed_until_its_end(
    store: Store, settings: Settings, acme: Tenant, link: NatsLink
) -> None:
    build_id = make_build(store, acme, status="building")
    writer = await LogWriter.open(store, link.js, "build", build_id, secrets=["s3cret-token"])
    for n in range(1, 51):
        await writer.write(f"line {n} s3cret-token")
    url = f"/api/v1/builds/{build_id}/logs"
    async with client_for(make_app(store, settings, link)) as client:
        first = asyncio.create_task(client.get(url, headers=auth(acme.token)))
        resumed = asyncio.create_task(
            client.get(url, headers={**auth(acme.token), "Last-Event-ID": "40"})
        )
        for n in range(51, 101):
            await writer.write(f"line {n} s3cret-token")
            await asyncio.sleep(0)
        await writer.close("succeeded")
        whole, tail = events(await first), events(await resumed)
    assert seqs(whole) == list(range(1, 101))
    assert json.loads(whole[0].data) == {"seq": 1, "line": "line 1 ***"}
    assert whole[-1] == SseEvent("end", "100", '{"status": "succeeded"}')
    assert seqs(tail) == list(range(41, 101)) and tail[-1].event == "end"


@pytest.mark.integration
async def test_a_finished_build_ends_even_without_an_end_in_the_stream(
    store: Store, settings: Settings, acme: Tenant, link: NatsLink
) -> None:
    build_id = make_build(store, acme, status="building")
    writer = await LogWriter.open(store, link.js, "build", build_id, flush_seconds=None)
    for n in range(1, 6):
        await writer.write(f"line {n}")
    # the builder died without storing or closing; the build was then marked failed
    set_status(store, build_id, "failed")
    url = f"/api/v1/builds/{build_id}/logs"
    async with client_for(make_app(store, settings, link)) as client:
        followed = await client.get(url, headers=auth(acme.token))
        once = await client.get(url, params={"follow": "false"}, headers=auth(acme.token))
    assert seqs(events(followed)) == [1, 2, 3, 4, 5]
    assert events(followed)[-1] == SseEvent("end", "5", '{"status": "failed"}')
    assert events(once) == [SseEvent("end", None, '{"status": "failed"}')]


@pytest.mark.integration
async def test_the_end_in_the_stream_wins_over_a_status_not_yet_updated(
    store: Store, settings: Settings, acme: Tenant, link: NatsLink
) -> None:
    build_id = make_build(store, acme, status="building")
    writer = await LogWriter.open(store, link.js, "build", build_id)
    await writer.write("done")
    await writer.close("succeeded")
    async with client_for(make_app(store, settings, link)) as client:
        response = await client.get(f"/api/v1/builds/{build_id}/logs", headers=auth(acme.token))
    assert [e.event for e in events(response)] == ["line", "end"]
    assert json.loads(events(response)[-1].data) == {"status": "succeeded"}
