"""Indexes on chosen payload paths.

PostgreSQL answers any payload condition from one GIN index on the whole payload (migration
0007), but a value shared by many entries still has them all fetched and sorted. So the
paths searched most (SHIPWAY_AUDIT_INDEXED_PATHS, e.g. `flag.gid,app`) get an expression
index each, made at start if missing: (tenant, the value at PATH, created_at), which answers
EQ and IN on PATH newest first, a page at a time. SQLite has no GIN index; these are its
only payload indexes. A search writes its paths into its SQL as the index has them, so the
store matches the two. On PostgreSQL the index is built CONCURRENTLY: writes go on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from sqlalchemy import Engine

from shipway.audit.search import json_path


def index_name(path: Sequence[str]) -> str:
    digest = hashlib.sha256(json_path(path).encode()).hexdigest()[:12]
    return f"ix_audit_entries_payload_{digest}"


def ensure(engine: Engine, paths: Sequence[Sequence[str]]) -> list[str]:
    """Make the index of each of PATHS that is missing; their names."""
    names = [index_name(path) for path in paths]
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            for name, path in zip(names, paths, strict=True):
                connection.exec_driver_sql(
                    f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON audit_entries "
                    f"(organization_id, (payload #>> '{{{','.join(path)}}}'), created_at)"
                )
        return names
    with engine.begin() as connection:
        for name, path in zip(names, paths, strict=True):
            connection.exec_driver_sql(
                f"CREATE INDEX IF NOT EXISTS {name} ON audit_entries "
                f"(organization_id, json_extract(payload, '{json_path(path)}'), created_at)"
            )
    return names
