"""Persistence: SQLAlchemy 2 over SQLite (WAL) or PostgreSQL, migrated by Alembic."""

from shipway.store.engine import Store, make_engine
from shipway.store.migrate import upgrade

__all__ = ["Store", "make_engine", "upgrade"]
