"""Fixtures for the config tests: a tenant with one app, and a key in a fresh data dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipway.accounts.roles import Principal, Role
from shipway.apps import service
from shipway.apps.secretbox import SecretBox
from shipway.store import Store
from shipway.store.tables import Organization


@pytest.fixture
def owner(store: Store) -> Principal:
    """The owner of a new organization that has one app, "web"."""
    with store.transaction() as session:
        org = Organization(name="acme")
        session.add(org)
        session.flush()
        principal = Principal(organization_id=org.id, role=Role.OWNER, actor="user:acme")
        service.create(session, principal, "web")
        return principal


@pytest.fixture
def box(tmp_path: Path) -> SecretBox:
    return SecretBox.load(tmp_path / "data")
