"""Small helpers the test modules share."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import psutil
import pytest
import uvloop
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, create_engine, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from shipway.accounts.roles import Principal, Role
from shipway.apps import service as apps
from shipway.store import Store, upgrade
from shipway.store.tables import Base, Organization


def on_the_nodes_loop(config: pytest.Config, item: pytest.Item) -> dict[str, Any]:
    """pytest-asyncio's loop for tests of the node's code: uvloop's, as `shipway node` runs."""
    return {"uvloop": uvloop.new_event_loop}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_token(api: TestClient, role: str, **extra: Any) -> str:
    response = api.post("/api/v1/tokens", json={"name": f"{role}-token", "role": role, **extra})
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


@contextmanager
def fresh_postgres_database(admin_url: str) -> Iterator[str]:
    """A new, empty database on the server at ADMIN_URL, dropped afterwards."""
    admin = make_url(admin_url).set(drivername="postgresql+psycopg")
    name = f"shipway_test_{uuid.uuid4().hex[:12]}"
    engine = _admin(admin)
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def migrated_store(url: str) -> Store:
    """A store on the new SQLite file at URL with the latest schema: a copy of a file migrated
    once per test process, not a run of every migration per test. tests/store runs the
    migrations themselves."""
    parsed = make_url(url)
    assert parsed.get_backend_name() == "sqlite" and parsed.database, url
    assert not Path(parsed.database).exists(), url
    shutil.copyfile(_sqlite_template(), parsed.database)
    return Store(url)


#: Databases at the latest schema that no test holds, by server.
_idle: dict[str, list[str]] = {}


@contextmanager
def migrated_postgres_database(admin_url: str) -> Iterator[str]:
    """A database with the latest schema and no rows but the migrations' own, on the server at
    ADMIN_URL. Made once from a migrated template (CREATE DATABASE takes about 0.1 s) and then
    emptied after each test and handed to the next one of this process."""
    server = make_url(admin_url).set(drivername="postgresql+psycopg", database="postgres")
    key = server.render_as_string(hide_password=False)
    template = _postgres_template(key)
    idle = _idle.setdefault(key, [])
    if idle:
        name = idle.pop()
    else:
        name = f"shipway_test_{uuid.uuid4().hex[:12]}"
        with _admin(server).connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template.name}"'))
    url = server.set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        _empty(url, template)
        idle.append(name)


def _empty(url: URL, template: _Template) -> None:
    """Back to TEMPLATE's state: connections a test left are closed, indexes it made (audit
    search makes some) dropped, every table emptied and every sequence restarted, and the
    migrations' rows written again from the SEED schema. DELETE, not TRUNCATE: on tables this
    small, TRUNCATE's new files cost 45 ms a test, DELETE and setval 7."""
    with _admin(url.set(database="postgres")).connect() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": url.database},
        )
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as conn:
        for index in set(_indexes(conn)) - template.indexes:
            conn.execute(text(f"DROP INDEX {_quoted(index)}"))
        conn.exec_driver_sql("; ".join(f"DELETE FROM {_quoted(t)}" for t in template.tables))
        conn.execute(
            text(
                "SELECT setval(s.seqrelid, s.seqstart, false) FROM pg_sequence s"
                " JOIN pg_class c ON c.oid = s.seqrelid"
                " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'"
            )
        )
        for table in template.seeded:
            conn.execute(
                text(f"INSERT INTO {_quoted(table)} SELECT * FROM {SEED}.{_quoted(table)}")
            )
    engine.dispose()


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@cache
def _admin(server: URL) -> Engine:
    """An engine for statements that cannot run in a transaction (CREATE and DROP DATABASE),
    one per server and database, its connections kept for the next test."""
    return create_engine(server, isolation_level="AUTOCOMMIT")


@cache
def _sqlite_template() -> Path:
    """A SQLite file at the latest schema, checkpointed so that the file alone holds it."""
    root = Path(tempfile.mkdtemp(prefix="shipway-schema-"))
    atexit.register(shutil.rmtree, root, True)
    path = root / "shipway.db"
    store = Store(f"sqlite:///{path}")
    upgrade(store.engine)
    with store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return path


#: Where a template keeps a copy of the rows its migrations wrote (the id blocks' first one).
SEED = "shipway_test_seed"


def _indexes(conn: Connection) -> list[str]:
    return list(conn.scalars(text("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")))


@dataclass(frozen=True)
class _Template:
    name: str
    indexes: frozenset[str]
    #: Every table but alembic_version, those referring to others before those they refer to.
    tables: tuple[str, ...]
    #: The tables the migrations wrote rows to, kept in the SEED schema.
    seeded: tuple[str, ...]


@cache
def _postgres_template(server_url: str) -> _Template:
    """A database at the latest schema on the server at SERVER_URL, dropped when this process
    ends; nothing stays connected to it, as a template must be."""
    server = make_url(server_url)
    name = f"shipway_schema_{uuid.uuid4().hex[:12]}"
    with _admin(server).connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    store = Store(server.set(database=name).render_as_string(hide_password=False))
    upgrade(store.engine)
    with store.engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {SEED}"))
        names = [table for table in inspect(conn).get_table_names() if table != "alembic_version"]
        seeded = tuple(
            table
            for table in names
            if conn.execute(text(f"SELECT EXISTS (SELECT FROM {_quoted(table)})")).scalar()
        )
        for table in seeded:
            conn.execute(text(f"CREATE TABLE {SEED}.{_quoted(table)} AS TABLE {_quoted(table)}"))
        indexes = frozenset(_indexes(conn))
    store.close()
    ordered = [table.name for table in reversed(Base.metadata.sorted_tables)]
    tables = (*(t for t in names if t not in ordered), *(t for t in ordered if t in names))

    def drop() -> None:
        # A throwaway server may be gone already, and its databases with it.
        with contextlib.suppress(OperationalError), _admin(server).connect() as conn:
            for database in [name, *_idle.get(server_url, [])]:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))

    atexit.register(drop)
    return _Template(name, indexes, tables, seeded)


async def until(check: Any, timeout: float = 20.0, every: float = 0.05) -> Any:
    """Poll CHECK (sync or async) until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"gave up waiting after {timeout} s")
        await asyncio.sleep(every)


#: A git that ignores the machine's own configuration and never prompts.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV},
        timeout=300,
        check=check,
    )


def commit(repo: Path, files: Mapping[str, str | bytes], message: str = "change") -> str:
    """Write FILES into REPO, commit them all, return the new commit's sha."""
    for name, content in files.items():
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD").stdout.strip()


def sandboxed(*argv: str, under: int | None = None) -> list[int]:
    """The pids of processes running ARGV inside a sandbox, that is in a PID namespace other
    than this test's: a `sleep 300` of someone's shell on the same machine is not a build's.
    With UNDER, only those descending from that pid (one shipway's, not another test's)."""
    ours = os.readlink("/proc/self/ns/pid")
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if (proc.info["cmdline"] or [])[: len(argv)] != list(argv):
            continue
        try:
            if os.readlink(f"/proc/{proc.pid}/ns/pid") == ours:
                continue
            if under is None or under in {parent.pid for parent in proc.parents()}:
                found.append(proc.pid)
        except (OSError, psutil.Error):  # gone meanwhile
            pass
    return found


@cache
def hidden_path(*commands: str) -> str:
    """A PATH with every command of this one but COMMANDS: a host that lacks them."""
    shadow = Path(tempfile.mkdtemp(prefix="shipway-path-"))
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for entry in os.scandir(directory):
            link = shadow / entry.name
            if entry.name in commands or link.exists() or link.is_symlink():
                continue
            link.symlink_to(entry.path)
    return str(shadow)


def new_owner(store: Store, *app_names: str, organization: str = "acme") -> Principal:
    """The owner of a new ORGANIZATION with these apps."""
    with store.transaction() as session:
        org = Organization(name=organization)
        session.add(org)
        session.flush()
        owner = Principal(org.id, Role.OWNER, f"user:{organization}")
        for name in app_names:
            apps.create(session, owner, name)
        return owner


def every_route(routes: list[Any]) -> Iterator[Any]:
    """Every route of an app's ROUTES, those of included routers too."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        yield from every_route(inner.routes) if inner is not None else [route]
