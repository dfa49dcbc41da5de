"""Fixtures for the log tests: the session's real NATS, a link to it, and tenants with builds."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest_asyncio

from shipway.accounts import tokens
from shipway.accounts.roles import Role
from shipway.links import NatsLink
from shipway.logs import ensure_streams
from shipway.store import Store
from shipway.store.tables import App, Build, Environment, Organization
from tests.servers import Servers


@pytest_asyncio.fixture
async def link(servers: Servers) -> AsyncIterator[NatsLink]:
    """A NATS link with the LOGS stream in place."""
    link = servers.link()
    await link.connect()
    await ensure_streams(link.js)
    yield link
    await link.close()


@dataclass(frozen=True)
class Tenant:
    organization_id: int
    app_id: int
    environment_id: int
    token: str


def make_tenant(store: Store, name: str) -> Tenant:
    """An organization with one app, its production environment and a viewer token."""
    with store.transaction() as session:
        org = Organization(name=name)
        session.add(org)
        session.flush()
        app = App(organization_id=org.id, name="web")
        session.add(app)
        session.flush()
        env = Environment(app_id=app.id, name="production")
        session.add(env)
        session.flush()
        minted = tokens.mint(session, org.id, name="viewer", role=Role.VIEWER)
        return Tenant(org.id, app.id, env.id, minted.secret)


def make_build(store: Store, tenant: Tenant, status: str = "building") -> int:
    """A build with a fresh random id, so its subject is new to the session's shared NATS."""
    build_id = uuid.uuid4().int % (2**31 - 2) + 1
    with store.transaction() as session:
        session.add(
            Build(
                id=build_id,
                app_id=tenant.app_id,
                environment_id=tenant.environment_id,
                status=status,
            )
        )
    return build_id


def set_status(store: Store, build_id: int, status: str) -> None:
    with store.transaction() as session:
        build = session.get(Build, build_id)
        assert build is not None
        build.status = status
