"""The fleet page: the platform's owners only; pools, builders and their drain buttons from a
real NATS registry; the build queue's charts from the builds; refusals shown as pages."""

from __future__ import annotations

import re
import time
import uuid
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient

from shipway.accounts.roles import Role
from shipway.api.app import create_app
from shipway.context import Context
from shipway.fleet import registry
from shipway.fleet.registry import BuilderRecord
from shipway.links import NatsLink
from shipway.settings import Settings
from shipway.store import Store
from shipway.store.tables import Build
from shipway.store.types import utcnow
from tests.api.conftest import app_id, environment
from tests.helpers import auth
from tests.web.conftest import Browser, csrf, token_of


def make_app(admin: TestClient, admin_token: str) -> None:
    made = admin.post("/api/v1/apps", json={"name": "web"}, headers=auth(admin_token))
    assert made.status_code == 201, made.text


def test_the_queue_charts_are_drawn_from_the_builds_without_nats(
    admin: TestClient, admin_token: str, store: Store
) -> None:
    make_app(admin, admin_token)
    # Everything happens within the last whole hour, so that no hour's end falls between a
    # build's creation and its start, whatever the minute the test runs at.
    now = utcnow().replace(minute=0, second=0, microsecond=0)
    with store.transaction() as session:
        env = environment(store, "production")
        for minutes in (50, 40):
            session.add(
                Build(
                    app_id=app_id(store),
                    environment_id=env,
                    status="queued",
                    created_at=now - timedelta(minutes=minutes),
                )
            )
        session.add(
            Build(
                app_id=app_id(store),
                environment_id=env,
                status="succeeded",
                created_at=now - timedelta(minutes=30),
                started_at=now - timedelta(minutes=28),
                finished_at=now - timedelta(minutes=20),
            )
        )
    page = admin.get("/fleet")
    assert page.status_code == 200, page.text
    assert "NATS is not reachable" in page.text and 'role="alert"' in page.text
    assert page.text.count('<svg class="chart"') == 2
    assert "Builds waiting for a builder, at each hour&#39;s end: highest 2, latest 2" in page.text
    assert "1 builds started in the last 24 hours; the longest waited 2 min" in page.text
    assert page.text.count('<th scope="row">') >= 2 * 24  # each chart's hours as a table
    week = admin.get("/fleet", params={"hours": "168"})
    assert week.status_code == 200 and '<option value="168" selected>' in week.text


@pytest.mark.parametrize("hours", ["0", "169", "x", "1e3"])
def test_a_bad_span_gets_a_422_page(admin: TestClient, hours: str) -> None:
    answer = admin.get("/fleet", params={"hours": hours})
    assert answer.status_code == 422 and "<html" in answer.text and "hours" in answer.text


@pytest.mark.parametrize("role", [Role.VIEWER, Role.DEPLOYER])
def test_only_the_platforms_owners_see_the_fleet(
    browser: Browser, store: Store, admin: TestClient, admin_token: str, role: Role
) -> None:
    other = admin.post("/api/v1/orgs", json={"name": "globex"}, headers=auth(admin_token))
    tenant_owner = browser(other.json()["owner_token"])
    member = browser(token_of(store, role))  # of the platform's own organization
    for who in (tenant_owner, member):
        page = who.get("/fleet")
        assert page.status_code == 403 and "<html" in page.text
        assert 'href="/fleet"' not in page.text  # nor in the navigation
        token = csrf(who.get("/apps").text)
        refused = who.post("/fleet/builders/b-1/drain", data={"csrf": token})
        assert refused.status_code == 303
        shown = who.get(refused.headers["location"]).text
        assert shown.count('class="flash bad"') == 1
    assert 'href="/fleet"' in admin.get("/apps").text


def test_draining_without_nats_or_csrf_is_refused(admin: TestClient) -> None:
    token = csrf(admin.get("/fleet").text)
    answer = admin.post("/fleet/builders/b-1/drain", data={"csrf": token})
    assert answer.status_code == 303
    assert "NATS is not reachable" in admin.get(answer.headers["location"]).text
    assert admin.post("/fleet/builders/b-1/drain", data={}).status_code == 403


@pytest.mark.integration
async def test_builders_are_listed_with_a_drain_button_that_drains(
    store: Store, settings: Settings, admin_token: str, link: NatsLink
) -> None:
    busy, idle, draining = (f"b-{uuid.uuid4().hex[:10]}" for _ in range(3))
    now = time.time()
    for id, state, load in ((busy, "active", 2), (idle, "active", 0), (draining, "draining", 1)):
        record = BuilderRecord(
            id=id,
            pool="fast",
            labels={"arch": "amd64"},
            slots=3,
            busy=load,
            version="1.0",
            state=state,
            started_at=now - 60,
            heartbeat_at=now - 2,
        )
        await registry.put(link.js, record)
    app = create_app(Context(settings, store, nats=link))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await client.post("/login", data={"token": admin_token})).status_code == 303
        page = (await client.get("/fleet")).text
        assert "cannot be read" not in page
        rows = {
            m[0]: m[1]
            for m in re.findall(r'<th scope="row" class="mono">([^<]+)</th>(.*?)</tr>', page, re.S)
        }
        assert "2 of 3" in rows[busy] and "arch=amd64" in rows[busy]
        assert 's-active">active' in rows[idle] and f'aria-label="Drain {idle}"' in rows[idle]
        assert 's-draining">draining' in rows[draining] and "Drain" not in rows[draining]
        assert re.search(r'<th scope="row">fast</th>', page)

        drained = await client.post(f"/fleet/builders/{idle}/drain", data={"csrf": csrf(page)})
        assert drained.status_code == 303
        shown = (await client.get(drained.headers["location"])).text
        assert f"Draining {idle}" in shown and "flash ok" in shown
        assert await registry.drain_requested(link.js, idle)
        assert not await registry.drain_requested(link.js, busy)

        unknown = await client.post("/fleet/builders/nope-1/drain", data={"csrf": csrf(page)})
        assert "no builder" in (await client.get(unknown.headers["location"])).text
