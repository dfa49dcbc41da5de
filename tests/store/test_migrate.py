"""Migrations: one line of revisions with one head, which a fresh store reaches, whether
given an engine or only a URL (a `%` in it too)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

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
