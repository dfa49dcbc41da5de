"""The store on SQLite and on a real PostgreSQL: the same suite passes on both."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select, text

from shipway.accounts import tokens
from shipway.accounts.organizations import ADMIN_ORG, bootstrap
from shipway.accounts.roles import Principal, Role
from shipway.apps import service as apps
from shipway.errors import Conflict, NotFound
from shipway.store import Store, upgrade
from shipway.store.migrate import current
from shipway.store.tables import ApiToken, App, AuditEntry, Environment, Organization


def test_migrations_create_every_table(store: Store) -> None:
    assert current(store.engine) == "0012"
    tables = set(inspect(store.engine).get_table_names())
    assert {
        "organizations",
        "users",
        "api_tokens",
        "apps",
        "environments",
        "builds",
        "releases",
        "deployments",
        "audit_entries",
        "config_vars",
        "functions",
        "function_versions",
        "function_triggers",
        "function_runs",
        "id_blocks",
        "repo_connections",
        "hook_deliveries",
        "addons",
    } <= tables


def test_migrating_twice_changes_nothing(store: Store) -> None:
    upgrade(store.engine)
    assert current(store.engine) == "0012"


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'wal.db'}")
    upgrade(store.engine)
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def _principal(store: Store, org_name: str) -> Principal:
    with store.transaction() as session:
        org = Organization(name=org_name)
        session.add(org)
        session.flush()
        return Principal(organization_id=org.id, role=Role.OWNER, actor=f"user:{org_name}")


def test_bootstrap_is_idempotent(store: Store) -> None:
    with store.transaction() as session:
        secret = bootstrap(session, None)
    assert secret is not None
    with store.transaction() as session:
        assert bootstrap(session, secret) is None
        assert session.scalar(select(func.count()).select_from(Organization)) == 1
        org = session.scalar(select(Organization))
        assert org is not None and org.name == ADMIN_ORG and org.is_admin


def test_tokens_are_stored_as_hashes(store: Store) -> None:
    with store.transaction() as session:
        secret = bootstrap(session, None)
    assert secret is not None
    with store.transaction() as session:
        row = session.scalar(select(ApiToken))
        assert row is not None
        assert secret not in (row.token_hash, row.prefix)
        assert row.token_hash == tokens.hash_token(secret)


def test_an_app_and_its_audit_entry_commit_together(store: Store) -> None:
    owner = _principal(store, "acme")
    with store.transaction() as session:
        apps.create(session, owner, "web")
    with store.transaction() as session:
        entries = session.scalars(select(AuditEntry)).all()
        assert [(e.action, e.subject, e.actor) for e in entries] == [
            ("app.create", "app:web", "user:acme")
        ]
        assert entries[0].payload == {"plan": "free", "region": "local"}
        assert entries[0].created_at.tzinfo is not None


def test_a_rolled_back_change_leaves_no_audit_entry(store: Store) -> None:
    owner = _principal(store, "acme")

    class Boom(Exception):
        pass

    with pytest.raises(Boom), store.transaction() as session:
        apps.create(session, owner, "web")
        raise Boom
    with store.transaction() as session:
        assert session.scalar(select(func.count()).select_from(App)) == 0
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == 0


def test_app_names_are_unique_per_tenant_only(store: Store) -> None:
    acme, globex = _principal(store, "acme"), _principal(store, "globex")
    with store.transaction() as session:
        apps.create(session, acme, "web")
        apps.create(session, globex, "web")
    with pytest.raises(Conflict), store.transaction() as session:
        apps.create(session, acme, "web")


def test_one_tenant_never_sees_another_tenants_apps(store: Store) -> None:
    acme, globex = _principal(store, "acme"), _principal(store, "globex")
    with store.transaction() as session:
        apps.create(session, acme, "secret-app")
    with store.transaction() as session:
        assert apps.list_apps(session, globex) == []
        with pytest.raises(NotFound):
            apps.get(session, globex, "secret-app")
        with pytest.raises(NotFound):
            apps.delete(session, globex, "secret-app")
    with store.transaction() as session:
        assert [a.name for a in apps.list_apps(session, acme)] == ["secret-app"]


def test_deleting_an_app_removes_its_environments_and_keeps_its_audit(store: Store) -> None:
    owner = _principal(store, "acme")
    with store.transaction() as session:
        apps.create(session, owner, "web")
    with store.transaction() as session:
        apps.delete(session, owner, "web")
    with store.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Environment)) == 0
        actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
        assert actions == ["app.create", "app.delete"]


def test_foreign_keys_are_enforced(store: Store) -> None:
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), store.transaction() as session:
        session.add(Environment(app_id=999_999, name="production", kind="production"))
        session.flush()


def test_upgrading_keeps_existing_rows(database_url: str) -> None:
    store = Store(database_url)
    try:
        upgrade(store.engine, "0001")
        with store.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO organizations (name, plan, is_admin, created_at) "
                    "VALUES ('acme', 'free', false, CURRENT_TIMESTAMP)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO apps (organization_id, name, plan, region, created_at) "
                    "SELECT id, 'old', 'free', 'local', CURRENT_TIMESTAMP FROM organizations"
                )
            )
        upgrade(store.engine)
        with store.transaction() as session:
            app = session.scalar(select(App).where(App.name == "old"))
            assert app is not None and app.build_network is True
    finally:
        store.close()


#: Indexes only PostgreSQL gets (GIN on JSONB, migration 0007); the models do not name them.
POSTGRESQL_ONLY = {"ix_audit_entries_payload", "ix_audit_entries_tags"}


def test_the_migrations_make_the_tables_the_models_describe(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from shipway.store.tables import Base

    with store.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [
        d for d in differences if not (d[0] == "remove_index" and d[1].name in POSTGRESQL_ONLY)
    ] == []
