"""Fixtures for the config tests: a tenant with one app, and a key in a fresh data dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipway.accounts.roles import Principal
from shipway.apps.secretbox import SecretBox
from shipway.store import Store
from tests.helpers import new_owner


@pytest.fixture
def owner(store: Store) -> Principal:
    """The owner of a new organization that has one app, "web"."""
    return new_owner(store, "web")


@pytest.fixture
def box(tmp_path: Path) -> SecretBox:
    return SecretBox.load(tmp_path / "data")
