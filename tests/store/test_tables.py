"""What the code relies on the tables for: deleting an app or a preview leaves nothing of
theirs behind but the audit trail and the releases; no id is handed out twice; a log line is
stored once; blocks of ids never overlap."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from shipway.accounts.roles import Principal
from shipway.apps import config
from shipway.apps import service as apps
from shipway.apps.secretbox import SecretBox
from shipway.deploys import service
from shipway.logs import lines
from shipway.store import Store, ids, upgrade
from shipway.store.tables import (
    AuditEntry,
    Base,
    Build,
    ConfigVar,
    Deployment,
    Environment,
    HookDelivery,
    Release,
    RepoConnection,
)
from tests.helpers import new_owner


@pytest.fixture
def owner(store: Store) -> Principal:
    return new_owner(store)


def fill(store: Store, owner: Principal, app: str, tmp_path: Path) -> int:
    """APP with a production and a preview deployment, each with a release, a config var, a
    repo connection and a webhook delivery."""
    with store.transaction() as session:
        made = apps.create(session, owner, app)
        config.change(
            session, owner, app, values={"K": "v"}, secret=True, box=SecretBox.load(tmp_path)
        )
        for branch in ("main", "feature"):
            pushed = service.request(
                session, owner, app, ref=f"refs/heads/{branch}", sha=None, source="git"
            )
            version = service.next_release_version(session, made.id)
            release = Release(
                app_id=made.id,
                build_id=pushed.build.id,
                version=version,
                digest=f"sha256:{version:064x}",
            )
            session.add(release)
            session.flush()
            pushed.deployment.release_id = release.id
        session.add(
            RepoConnection(
                app_id=made.id, provider="github", repo="o/r", api_url="https://x", secret="s"
            )
        )
        session.add(
            HookDelivery(
                app_id=made.id, provider="github", delivery_id="d-1", event="push", status="ok"
            )
        )
        return made.id


def counts(store: Store, app_id: int) -> dict[str, int]:
    """How many rows of each kind the app APP_ID owns."""
    tables = (Environment, Build, Deployment, Release, ConfigVar, RepoConnection, HookDelivery)
    with store.transaction() as session:
        return {
            table.__tablename__: session.scalar(
                select(func.count()).select_from(table).where(table.app_id == app_id)
            )
            or 0
            for table in tables
        }


def test_deleting_an_app_leaves_nothing_of_it_but_its_audit_trail(
    store: Store, owner: Principal, tmp_path: Path
) -> None:
    web, api = fill(store, owner, "web", tmp_path), fill(store, owner, "api", tmp_path)
    before = counts(store, api)
    assert all(before.values()) and counts(store, web) == before
    with store.transaction() as session:
        apps.delete(session, owner, "web")
    assert set(counts(store, web).values()) == {0}
    assert counts(store, api) == before
    with store.transaction() as session:
        trail = session.scalars(select(AuditEntry.action).where(AuditEntry.subject == "app:web"))
        assert {"app.create", "push", "app.delete"} <= set(trail)


def test_deleting_a_preview_keeps_the_releases_its_builds_made(
    store: Store, owner: Principal, tmp_path: Path
) -> None:
    fill(store, owner, "web", tmp_path)
    with store.transaction() as session:
        preview = session.scalar(select(Environment).where(Environment.name == "feature"))
        assert preview is not None
        apps.delete_environment(session, owner, preview)
    with store.transaction() as session:
        assert session.scalars(select(Environment.name)).all() == ["production"]
        kept = session.execute(select(Release.version, Release.build_id).order_by(Release.id))
        production_build = session.scalar(
            select(Build.id).join(Environment).where(Environment.name == "production")
        )
        assert [tuple(row) for row in kept] == [(1, production_build), (2, None)]
        assert session.scalar(select(func.count()).select_from(Deployment)) == 1


def test_the_ids_of_deleted_rows_are_never_handed_out_again(store: Store, owner: Principal) -> None:
    with store.transaction() as session:
        apps.create(session, owner, "first")
        last = apps.create(session, owner, "last")
        last_build = service.request(
            session, owner, "last", ref=None, sha=None, source="git"
        ).build.id
    with store.transaction() as session:
        apps.delete(session, owner, "last")
    with store.transaction() as session:
        again = apps.create(session, owner, "again")
        assert again.id > last.id
        build = service.request(session, owner, "again", ref=None, sha=None, source="git").build
        assert build.id > last_build


def test_every_table_that_never_reuses_ids_is_made_so_on_sqlite(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'shipway.db'}")
    try:
        upgrade(store.engine)
        with store.engine.connect() as conn:
            query = text("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
            made = {name: sql for name, sql in conn.execute(query)}
    finally:
        store.close()
    never_reused = sorted(
        name
        for name, table in Base.metadata.tables.items()
        if table.dialect_options["sqlite"].get("autoincrement")
    )
    assert "builds" in never_reused and "function_runs" in never_reused
    assert [name for name in never_reused if "AUTOINCREMENT" not in made[name]] == []


def test_a_log_line_is_stored_once_per_log_and_number(store: Store) -> None:
    with store.transaction() as session:
        lines.insert(session, "build", 7, [(1, "one"), (2, "two")])
        lines.insert(session, "build", 8, [(1, "other log")])
    with pytest.raises(IntegrityError), store.transaction() as session:
        session.execute(
            text(
                "INSERT INTO log_lines (kind, owner_id, seq, line, created_at) "
                "VALUES ('build', 7, 2, 'twice', CURRENT_TIMESTAMP)"
            )
        )
    with store.transaction() as session:
        assert lines.read(session, "build", 7) == [(1, "one"), (2, "two")]


def test_blocks_of_ids_never_overlap_and_an_unknown_block_is_an_error(store: Store) -> None:
    with store.transaction() as session:
        first = ids.reserve(session, "function_runs", 100)
    with store.transaction() as session:
        second = ids.reserve(session, "function_runs", 5)
    assert first == range(1, 101) and second == range(101, 106)
    with pytest.raises(LookupError), store.transaction() as session:
        ids.reserve(session, "nothing_of_that_name", 1)
