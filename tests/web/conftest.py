"""Fixtures for the dashboard's pages: the real API app over a real store, and browsers (HTTP
clients keeping cookies) logged in with a token of each role."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from shipway.accounts import tokens
from shipway.accounts.roles import Role
from shipway.api.app import create_app
from shipway.context import Context
from shipway.settings import Settings
from shipway.store import Store
from shipway.store.tables import Organization
from tests.api.conftest import FakeRuntime, FakeTemporal

Browser = Callable[[str | None], TestClient]


@pytest.fixture
def services(store: Store, settings: Settings, admin_token: str) -> Context:
    """The API's services, with Temporal and the runtime as the API tests' recorders: the pages
    are tested here, the deploys they start in tests/e2e/test_dashboard.py."""
    return Context(settings, store, temporal=FakeTemporal(), runtime=FakeRuntime())  # type: ignore[arg-type]


@pytest.fixture
def browser(services: Context) -> Iterator[Browser]:
    """Opens a browser (a client keeping cookies, following no redirect), logged in with the
    token it is given, or not at all with None."""
    app = create_app(services)
    opened: list[TestClient] = []

    def open_one(token: str | None) -> TestClient:
        client = TestClient(app, raise_server_exceptions=False, follow_redirects=False)
        client.__enter__()
        opened.append(client)
        if token is not None:
            answer = client.post("/login", data={"token": token, "next": "/apps"})
            assert answer.status_code == 303, answer.text
        return client

    yield open_one
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def admin(browser: Browser, admin_token: str) -> TestClient:
    """A browser logged in as the platform's owner."""
    return browser(admin_token)


def token_of(store: Store, role: Role, organization: str = "default") -> str:
    """A new token of ROLE in ORGANIZATION."""
    with store.transaction() as session:
        org = session.scalar(select(Organization).where(Organization.name == organization))
        assert org is not None
        return tokens.mint(session, org.id, name=f"test-{role}", role=role).secret


def csrf(page: str) -> str:
    """The CSRF token a page's forms carry."""
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)
