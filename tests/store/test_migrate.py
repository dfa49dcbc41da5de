"""Migrations: one line of revisions with one head, which a fresh store reaches, whether
given an engine or only a URL (a `%` in it too)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from shipway.store import Store, upgrade
from shipway.store.migrate import MIGRATIONS, alembic_config, current


def head() -> str:
    found = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert found is not None
    return found


def test_the_migrations_are_one_line_with_one_head() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert len(script.get_heads()) == 1
    line = [revision.revision for revision in script.walk_revisions()]
    files = sorted((MIGRATIONS / "versions").glob("[0-9]*.py"))
    assert len(line) == len(files), "every migration file is on the line to the head"
    assert line[-1] == "0001" and line[0] == head()


def test_a_fresh_store_has_no_revision_until_it_is_upgraded_to_the_head(
    database_url: str,
) -> None:
    store = Store(database_url)
    try:
        assert current(store.engine) is None
        assert inspect(store.engine).get_table_names() == []
        upgrade(store.engine)
        assert current(store.engine) == head()
    finally:
        store.close()


def test_migrating_by_url_alone_reaches_the_head_even_with_a_percent_in_it(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / '100%-shipway.db'}"
    config = alembic_config(url=url)
    assert config.get_main_option("sqlalchemy.url") == url
    command.upgrade(config, "head")
    engine = create_engine(url)
    try:
        assert current(engine) == head()
    finally:
        engine.dispose()


def test_deployments_gain_their_commit_and_actor_with_rows_kept(tmp_path: Path) -> None:
    """0012 on SQLite: a deployment made before it keeps its row, ids still never reused, and
    has no author, commit time or actor; the index the delivery metrics read by is there."""
    store = Store(f"sqlite:///{tmp_path / 'shipway.db'}")
    try:
        upgrade(store.engine, "0011")
        with store.engine.begin() as conn:
            for statement in (
                "INSERT INTO organizations (name, plan, is_admin, created_at) "
                "VALUES ('acme', 'free', false, CURRENT_TIMESTAMP)",
                "INSERT INTO apps (organization_id, name, plan, region, formation, health_path, "
                "health_timeout, created_at) "
                "SELECT id, 'web', 'free', 'local', '{}', '/', 30, CURRENT_TIMESTAMP "
                "FROM organizations",
                "INSERT INTO environments (app_id, name, kind, created_at) "
                "SELECT id, 'production', 'production', CURRENT_TIMESTAMP FROM apps",
                "INSERT INTO deployments (app_id, environment_id, status, source, created_at, "
                "updated_at) SELECT app_id, id, 'live', 'git', CURRENT_TIMESTAMP, "
                "CURRENT_TIMESTAMP FROM environments",
            ):
                conn.execute(text(statement))
        upgrade(store.engine)
        assert current(store.engine) == head()
        with store.engine.connect() as conn:
            row = conn.execute(
                text("SELECT status, author, committed_at, actor FROM deployments")
            ).one()
            made = conn.execute(
                text("SELECT sql FROM sqlite_master WHERE name = 'deployments'")
            ).scalar_one()
        assert tuple(row) == ("live", None, None, None)
        assert "AUTOINCREMENT" in made
        indexes = {
            i["name"]: i["column_names"] for i in inspect(store.engine).get_indexes("deployments")
        }
        assert indexes["ix_deployments_environment_finished"] == ["environment_id", "finished_at"]
    finally:
        store.close()
