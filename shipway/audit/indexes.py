"""Indexes on chosen payload paths, for SQLite.

PostgreSQL answers payload conditions from one GIN index on the whole payload (migration
0007). SQLite has no such index, so the paths searched most (SHIPWAY_AUDIT_INDEXED_PATHS,
e.g. `flag.gid,app`) get an expression index each, made at start if missing:
(tenant, json_extract(payload, PATH), created_at), which answers EQ and IN on PATH newest
first. A search writes its paths into its SQL the same way, so SQLite matches the two.
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
    """Make the index of each of PATHS that is missing (SQLite only); their names."""
    if engine.dialect.name != "sqlite":
        return []
    names = []
    with engine.begin() as connection:
        for path in paths:
            name = index_name(path)
            connection.exec_driver_sql(
                f"CREATE INDEX IF NOT EXISTS {name} ON audit_entries "
                f"(organization_id, json_extract(payload, '{json_path(path)}'), created_at)"
            )
            names.append(name)
    return names
