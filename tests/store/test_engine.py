"""Engines and sessions: every SQLite connection is set up alike, a transaction's objects stay
readable after it commits, and a PostgreSQL connection the server dropped is replaced unseen."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from shipway.store import Store, upgrade
from shipway.store.tables import Organization
from tests.helpers import fresh_postgres_database


def test_a_sqlite_store_makes_the_directory_its_file_lives_in(tmp_path: Path) -> None:
    path = tmp_path / "not" / "yet" / "there" / "shipway.db"
    store = Store(f"sqlite:///{path}")
    try:
        upgrade(store.engine)
        assert path.is_file()
    finally:
        store.close()


def test_every_sqlite_connection_enforces_keys_and_waits_for_a_busy_writer(
    tmp_path: Path,
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'shipway.db'}")
    try:
        with store.engine.connect() as first, store.engine.connect() as second:
            for conn in (first, second):
                pragmas = {
                    name: conn.execute(text(f"PRAGMA {name}")).scalar()
                    for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
                }
                assert pragmas == {
                    "journal_mode": "wal",
                    "foreign_keys": 1,
                    "busy_timeout": 10000,
                    "synchronous": 1,  # NORMAL
                }
    finally:
        store.close()


def test_what_a_transaction_wrote_stays_readable_after_it_commits(store: Store) -> None:
    with store.transaction() as session:
        org = Organization(name="acme")
        session.add(org)
    # Read outside the session: nothing is expired, so no lazy load of a closed session.
    assert org.id is not None and org.name == "acme" and org.created_at.tzinfo is not None
    with store.transaction() as session:
        found = session.get(Organization, org.id)
        assert found is not None and found.name == "acme"


def test_the_store_answers_a_ping_and_one_that_cannot_be_reached_raises(store: Store) -> None:
    store.ping()
    assert store.dialect in ("sqlite", "postgresql")
    gone = Store("postgresql+psycopg://shipway:x@127.0.0.1:1/shipway?connect_timeout=5")
    try:
        with pytest.raises(OperationalError):
            gone.ping()
    finally:
        gone.close()


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    with fresh_postgres_database(postgres_server) as url:
        yield url


def test_a_postgresql_connection_the_server_dropped_is_replaced_unseen(postgres_url: str) -> None:
    store = Store(postgres_url)
    killer = create_engine(postgres_url)
    try:
        with store.transaction() as session:
            dropped = session.execute(text("SELECT pg_backend_pid()")).scalar()
        with killer.connect() as conn:
            ended = conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": dropped})
            assert ended.scalar()
        with store.transaction() as session:  # the pooled connection is dead: pinged, replaced
            assert session.execute(text("SELECT pg_backend_pid()")).scalar() != dropped
    finally:
        killer.dispose()
        store.close()
