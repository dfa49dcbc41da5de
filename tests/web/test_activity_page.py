"""The activity page: searching by action, subject, actor, time and payload conditions, pages
cut by the API's cursor, bad input answered on the page, and new entries followed live."""

from __future__ import annotations

import asyncio
import html
import json
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from shipway.api.app import create_app
from shipway.context import Context
from shipway.logs.sse import SseEvent, SseParser
from shipway.settings import Settings
from shipway.store import Store
from shipway.web import session
from tests.helpers import auth

ENTRIES = "/api/v1/audit/entries"


def entry(subject: str = "flag:1", **fields: Any) -> dict[str, Any]:
    return {
        "sequence": str(uuid.uuid4()),
        "actor": "service:flags",
        "action": "flag.toggled",
        "subject": subject,
        "payload": {"flag": {"gid": f"gid://plat/Flag/{subject[5:]}"}, "count": 3, "on": True},
    } | fields


def record(admin: TestClient, admin_token: str, *entries: dict[str, Any]) -> None:
    answer = admin.post(ENTRIES, json=list(entries), headers=auth(admin_token))
    assert answer.status_code == 201, answer.text


def subjects(page: str) -> list[str]:
    """The subjects of the entries a page lists, in order."""
    if 'id="activity-rows"' not in page:
        return []
    rows = page.split('id="activity-rows"')[1].split("</tbody>")[0]
    return re.findall(r'href="/activity\?subject=[^"]+">([^<]+)</a>', rows)


def test_entries_come_newest_first_with_their_text_and_filters(
    admin: TestClient, admin_token: str
) -> None:
    record(admin, admin_token, entry("flag:1"), entry("flag:2"))
    record(admin, admin_token, entry("flag:3", action="flag.removed", actor="service:other"))
    page = admin.get("/activity")
    assert page.status_code == 200
    assert subjects(page.text)[:3] == ["flag:3", "flag:2", "flag:1"]
    assert "service:flags flag.toggled flag:1" in page.text
    assert subjects(admin.get("/activity", params={"action": "flag.toggled"}).text) == [
        "flag:2",
        "flag:1",
    ]
    assert subjects(admin.get("/activity", params={"action": "flag.*"}).text) == [
        "flag:3",
        "flag:2",
        "flag:1",
    ]
    assert subjects(admin.get("/activity", params={"subject": "flag:2"}).text) == ["flag:2"]
    assert subjects(admin.get("/activity", params={"actor": "service:other"}).text) == ["flag:3"]
    assert subjects(admin.get("/activity", params={"since": "5m", "action": "flag.*"}).text)
    old = admin.get("/activity", params={"until": "2020-01-01T00:00:00Z"}).text
    assert subjects(old) == [] and "No entries match" in old
    filled = admin.get("/activity", params={"actor": "service:other"}).text
    assert 'name="actor" value="service:other"' in filled


@pytest.mark.parametrize(
    ("path", "op", "value", "found"),
    [
        ("flag.gid", "EQ", "gid://plat/Flag/2", ["flag:2"]),  # text, not JSON
        ("flag.gid", "EQ", '"gid://plat/Flag/2"', ["flag:2"]),  # JSON text
        ("flag.gid", "IN", '["gid://plat/Flag/1", "gid://plat/Flag/3"]', ["flag:3", "flag:1"]),
        ("flag.gid", "CONTAINS", "Flag/3", ["flag:3"]),
        ("count", "EQ", "3", ["flag:3", "flag:2", "flag:1"]),  # the number 3
        ("count", "EQ", '"3"', []),  # the text "3"
        ("count", "GT", "2", ["flag:3", "flag:2", "flag:1"]),
        ("count", "LT", "3", []),
        ("on", "NE", "true", []),
        ("flag", "EXISTS", "", ["flag:3", "flag:2", "flag:1"]),
        ("flag", "EXISTS", "false", []),
    ],
)
def test_payload_conditions_become_the_apis_where(
    admin: TestClient, admin_token: str, path: str, op: str, value: str, found: list[str]
) -> None:
    record(admin, admin_token, entry("flag:1"), entry("flag:2"), entry("flag:3"))
    params = {"action": "flag.*", "path": path, "op": op, "value": value}
    page = admin.get("/activity", params=params)
    assert page.status_code == 200, page.text
    assert subjects(page.text) == found
    assert f'name="path" value="{path}"' in page.text
    assert f'<option value="{op}" selected>' in page.text


def test_conditions_are_anded_and_an_empty_row_is_ignored(
    admin: TestClient, admin_token: str
) -> None:
    record(admin, admin_token, entry("flag:1"), entry("flag:2", payload={"count": 3}))
    query: list[tuple[str, str | int | float | bool | None]] = [
        ("path", "count"),
        ("op", "EQ"),
        ("value", "3"),
        ("path", "flag.gid"),
        ("op", "EXISTS"),
        ("value", ""),
        ("path", ""),
        ("op", "EQ"),
        ("value", ""),
    ]
    page = admin.get("/activity?" + str(httpx.QueryParams(query)))
    assert subjects(page.text) == ["flag:1"]
    assert page.text.count('class="row condition"') == 3  # two filled, one empty to add


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"path": "a", "op": "BAD", "value": "1"}, "unknown op 'BAD'"),
        ({"path": "a", "op": "IN", "value": "abc"}, "IN takes a list"),
        ({"path": "a", "op": "EQ", "value": "[1, 2]"}, "EQ takes a string, number"),
        ({"path": "a b", "op": "EQ", "value": "1"}, "path must be a list"),
        ({"path": "a..b", "op": "EQ", "value": "1"}, "path must be a list"),
        ({"path": "", "op": "EQ", "value": "1"}, "needs a path"),
        ({"path": "a", "op": "EQ", "value": "x" * 2000}, "at most 1024 characters"),
        ({"since": "yesterday-ish"}, "since must be an ISO-8601 time"),
        ({"until": "2026-13-45"}, "until must be an ISO-8601 time"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
def test_bad_input_is_answered_on_the_page_never_a_500(
    admin: TestClient, params: dict[str, str], message: str
) -> None:
    page = admin.get("/activity", params=params)
    assert page.status_code == 422, page.text
    assert 'class="flash bad" role="alert"' in page.text and message in html.unescape(page.text)
    assert "data-tail" not in page.text


def test_pages_follow_the_apis_cursor(admin: TestClient, admin_token: str) -> None:
    record(admin, admin_token, *(entry(f"flag:{n}") for n in range(1, 61)))
    first = admin.get("/activity", params={"action": "flag.toggled"}).text
    assert subjects(first) == [f"flag:{n}" for n in range(60, 10, -1)]
    older = re.search(r'href="(/activity\?[^"]+)" rel="next">Older entries', first)
    assert older is not None
    second = admin.get(html.unescape(older.group(1))).text
    assert subjects(second) == [f"flag:{n}" for n in range(10, 0, -1)]
    assert "Older entries" not in second and "Newest entries" in second
    assert "data-tail" not in second  # an older page is not followed


def test_another_organizations_entries_are_not_shown(
    browser: Any, admin: TestClient, admin_token: str
) -> None:
    record(admin, admin_token, entry("flag:secret"))
    owner = admin.post("/api/v1/orgs", json={"name": "globex"}, headers=auth(admin_token)).json()[
        "owner_token"
    ]
    assert "flag:secret" not in browser(owner).get("/activity").text


# --- the live tail --------------------------------------------------------------------------


@asynccontextmanager
async def streamed(
    app: Any, url: str, cookies: dict[str, str]
) -> AsyncIterator[asyncio.Queue[bytes]]:
    """The body of GET URL as it is sent, chunk by chunk, until the block ends (the client goes
    away then)."""
    path, _, query = url.partition("?")
    chunks: asyncio.Queue[bytes] = asyncio.Queue()
    gone = asyncio.Event()
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"cookie", cookie.encode())],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }

    async def receive() -> dict[str, Any]:
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200, message
        elif message.get("body"):
            await chunks.put(message["body"])

    task = asyncio.create_task(app(scope, receive, send))
    try:
        yield chunks
    finally:
        gone.set()
        await asyncio.wait_for(task, 10)


@asynccontextmanager
async def logged_in(app: Any, token: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of APP in this event loop (as the stream's is), logged in with TOKEN."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await client.post("/login", data={"token": token})).status_code == 303
        yield client


async def next_entry(chunks: asyncio.Queue[bytes], parser: SseParser) -> SseEvent:
    """The next `entry` event, keep-alives skipped; a wait of 10 s at most."""
    buffered = ""
    while True:
        buffered += (await asyncio.wait_for(chunks.get(), 10)).decode()
        *complete, buffered = buffered.split("\n")
        for line in complete:
            event = parser.feed(line)
            if event is not None and event.event == "entry":
                return event


async def test_new_entries_matching_the_search_are_sent_as_rows(
    store: Store, settings: Settings, admin_token: str
) -> None:
    app = create_app(Context(settings, store))
    async with logged_in(app, admin_token) as client:
        first = await client.post(ENTRIES, json=entry("flag:1"), headers=auth(admin_token))
        assert first.status_code == 201  # the page's newest, which the tail starts after
        page = await client.get(
            "/activity", params={"action": "flag.*", "path": "on", "value": "true"}
        )
        tail = re.search(r'data-tail="([^"]+)"', page.text)
        assert tail is not None
        url = html.unescape(tail.group(1))
        assert re.search(r"after=[1-9]", url) and "action=flag." in url
        cookies = {session.COOKIE: client.cookies[session.COOKIE]}
        async with streamed(app, url, cookies) as chunks:
            parser = SseParser()
            skipped = entry("flag:7", payload={"on": False})
            other = entry("app:web", action="app.touched", payload={"on": True})
            wanted = entry("flag:8", payload={"on": True, "note": "<b>bold</b>"})
            for one in (skipped, other, wanted):
                answer = await client.post(ENTRIES, json=one, headers=auth(admin_token))
                assert answer.status_code == 201
            event = await next_entry(chunks, parser)  # the first to match: neither before it
            row = json.loads(event.data)
            assert event.id == str(row["id"])
            assert row["html"].startswith(f'<tr id="entry-{row["id"]}">')
            assert "flag:8" in row["html"] and "service:flags flag.toggled flag:8" in row["html"]
            assert "<b>bold" not in row["html"] and "&lt;b&gt;bold" in row["html"]


async def test_a_stream_with_a_bad_search_is_refused_with_a_page(
    store: Store, settings: Settings, admin_token: str
) -> None:
    app = create_app(Context(settings, store))
    async with logged_in(app, admin_token) as client:
        bad = await client.get("/activity/stream", params={"path": "a", "op": "NOPE", "value": "1"})
        assert bad.status_code == 422 and "unknown op" in bad.text and "<html" in bad.text
        assert (await client.get("/activity/stream", params={"after": "-1"})).status_code == 422
        anonymous = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x")
        async with anonymous:
            assert (await anonymous.get("/activity/stream")).status_code == 303
