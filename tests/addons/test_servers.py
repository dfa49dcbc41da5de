"""The add-on servers, for real: what an app's credentials reach and what they do not, and
backups that bring the data back."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import psycopg
import pytest

from shipway.addons import confine, postgres
from shipway.addons.redis import RedisError
from shipway.addons.servers import Kind, Servers
from shipway.embedded import ports
from shipway.errors import ServiceError
from tests.addons.conftest import run


def connect(servers: Servers, url: str, **overrides: str) -> psycopg.Connection:
    """Connect with an add-on URL's credentials through the real socket (the sandbox's path,
    MOUNT, is the host's socket dir here)."""
    conninfo = psycopg.conninfo.conninfo_to_dict(url)
    conninfo.update(host=str(servers.postgres.socket_dir), **overrides)
    return psycopg.connect(**conninfo, autocommit=True, connect_timeout=5)  # type: ignore[arg-type]


def test_a_postgres_add_on_reaches_its_own_database_and_nothing_else(servers: Servers) -> None:
    one, two = run(servers.make(Kind.POSTGRES)), run(servers.make(Kind.POSTGRES))
    assert one.url.startswith(f"postgresql://{one.resource}:")
    assert "@%2Frun%2Fshipway%2Fpostgres:5432/" in one.url
    with connect(servers, one.url) as conn:
        conn.execute("CREATE TABLE notes (text text)")
        conn.execute("INSERT INTO notes VALUES ('mine')")
        assert conn.execute("SELECT current_user").fetchone() == (one.resource,)
    for dbname in (two.resource, "postgres", "template1"):
        with pytest.raises(psycopg.OperationalError, match="permission denied"):
            connect(servers, one.url, dbname=dbname)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(servers, one.url, password="guessed")
    with pytest.raises(psycopg.OperationalError, match="no password supplied"):
        connect(servers, one.url, password="", passfile="/dev/null")  # anonymous
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(servers, one.url, user=postgres.ADMIN, password="guessed")
    with connect(servers, one.url) as conn:
        row = conn.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert row == (False, False, False)


def test_the_postgres_server_has_no_tcp_port_and_is_no_root(servers: Servers) -> None:
    run(servers.postgres.ensure())
    pid = servers.postgres.pid
    assert pid is not None
    assert os.stat(f"/proc/{pid}").st_uid == (
        confine.SERVER_UID if os.geteuid() == 0 else os.geteuid()
    )
    assert ports.tcp_sockets(pid) == [], "postgres listens on no TCP port"
    assert (servers.postgres.socket_dir / ".s.PGSQL.5432").is_socket()


def test_a_postgres_backup_brings_the_data_back(servers: Servers, tmp_path: Path) -> None:
    made = run(servers.make(Kind.POSTGRES))
    with connect(servers, made.url) as conn:
        conn.execute("CREATE TABLE notes (text text)")
        conn.execute("INSERT INTO notes VALUES ('before')")
    backup = tmp_path / "one.dump"
    run(servers.dump(Kind.POSTGRES, made.resource, backup))
    assert backup.stat().st_size > 0
    with connect(servers, made.url) as conn:
        conn.execute("INSERT INTO notes VALUES ('after')")
        conn.execute("CREATE TABLE extra (n int)")
    run(servers.restore(Kind.POSTGRES, made.resource, backup))
    with connect(servers, made.url) as conn:
        assert conn.execute("SELECT text FROM notes").fetchall() == [("before",)]
        tables = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        assert [row[0] for row in tables] == ["notes"], "what came after the backup is gone"
        # Restored objects belong to the add-on's role, which can still change them.
        conn.execute("INSERT INTO notes VALUES ('again')")
    broken = tmp_path / "broken.dump"
    broken.write_bytes(backup.read_bytes()[: backup.stat().st_size // 2])
    with pytest.raises(ServiceError, match="pg_restore failed"):
        run(servers.restore(Kind.POSTGRES, made.resource, broken))
    with connect(servers, made.url) as conn:
        assert conn.execute("SELECT count(*) FROM notes").fetchone() == (2,), "nothing lost"
    copy = run(servers.make(Kind.POSTGRES))
    run(servers.copy(Kind.POSTGRES, made.resource, copy.resource))
    with connect(servers, copy.url) as conn:
        assert conn.execute("SELECT count(*) FROM notes").fetchone() == (2,)


def test_dropped_and_unknown_postgres_databases_are_gone(servers: Servers) -> None:
    kept, gone = run(servers.make(Kind.POSTGRES)), run(servers.make(Kind.POSTGRES))
    run(servers.drop(Kind.POSTGRES, gone.resource))
    with pytest.raises(psycopg.OperationalError):
        connect(servers, gone.url)
    orphan = run(servers.make(Kind.POSTGRES))
    servers.pending.clear()
    dropped = run(servers.sweep({kept.resource}))
    assert orphan.resource in dropped and kept.resource not in dropped
    connect(servers, kept.url).close()


def redis_call(socket_path: Path, *lines: bytes) -> bytes:
    """Send raw commands to a redis socket, as an app's client would; the replies."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(str(socket_path))
        sock.sendall(b"".join(lines))
        replies = b""
        while replies.count(b"\r\n") < len(lines):
            chunk = sock.recv(65536)
            if not chunk:
                break
            replies += chunk
        return replies


def inline(*words: str) -> bytes:
    return (" ".join(words) + "\r\n").encode()


def test_a_redis_add_on_is_its_own_server_with_its_own_user(servers: Servers) -> None:
    made = run(servers.make(Kind.REDIS))
    user, password = made.url.removeprefix("unix://").split("@")[0].split(":")
    assert made.url.endswith(f"@/run/shipway/redis/{made.resource}/redis.sock")
    sock = servers.redis(made.resource).socket
    anonymous = redis_call(sock, inline("GET", "k"))
    assert anonymous.startswith(b"-NOAUTH"), "the default user is off"
    replies = redis_call(
        sock,
        inline("AUTH", user, password),
        inline("SET", "k", "v"),
        inline("CONFIG", "GET", "dir"),
        inline("SHUTDOWN"),
    )
    assert replies.startswith(b"+OK\r\n+OK\r\n-NOPERM")
    assert b"-NOPERM" in replies.split(b"\r\n", 3)[3], "SHUTDOWN is refused too"
    wrong = redis_call(sock, inline("AUTH", user, "guessed"))
    assert wrong.startswith(b"-WRONGPASS")
    other = run(servers.make(Kind.REDIS))
    assert servers.redis(other.resource).socket != sock
    assert redis_call(
        servers.redis(other.resource).socket, inline("AUTH", user, password)
    ).startswith(b"-WRONGPASS"), "one add-on's credentials open no other"
    pid = servers.redis(made.resource).pid
    assert pid is not None
    assert os.stat(f"/proc/{pid}").st_uid == (
        confine.SERVER_UID if os.geteuid() == 0 else os.geteuid()
    )


def test_redis_data_survives_a_restart_and_comes_back_from_a_backup(
    servers: Servers, tmp_path: Path
) -> None:
    made = run(servers.make(Kind.REDIS))
    server = servers.redis(made.resource)
    run(server.command("SET", "k", "before"))
    backup = tmp_path / "one.rdb"
    run(servers.dump(Kind.REDIS, made.resource, backup))
    run(server.command("SET", "k", "after"))
    pid = server.pid
    os.kill(pid, 9)  # a crash: the append-only file has every write but the last second's
    run(server.ensure())
    assert run(server.command("GET", "k")) in ("after", "before")
    run(servers.restore(Kind.REDIS, made.resource, backup))
    assert run(server.command("GET", "k")) == "before"
    server.stop()
    run(server.ensure())
    assert run(server.command("GET", "k")) == "before", "the restored data is the lasting one"
    run(servers.drop(Kind.REDIS, made.resource))
    assert not server.home.exists()
    with pytest.raises((OSError, RedisError)):
        run(server.command("PING"))


def test_a_data_dir_deep_in_a_tree_still_reaches_its_servers(tmp_path: Path) -> None:
    """A socket's address holds 107 bytes; these sockets' host paths are longer."""
    deep = tmp_path / ("d" * 60) / ("e" * 40)
    servers = Servers(deep)
    try:
        if not confine.confined():
            with pytest.raises(ServiceError, match="longer than 107 bytes"):
                run(servers.make(Kind.REDIS))
            return
        made = run(servers.make(Kind.REDIS))
        assert len(str(servers.redis(made.resource).socket)) > 107
        assert run(servers.redis(made.resource).command("PING")) == "PONG"
        database = run(servers.make(Kind.POSTGRES))
        run(servers.dump(Kind.POSTGRES, database.resource, tmp_path / "deep.dump"))
        assert (tmp_path / "deep.dump").stat().st_size > 0
    finally:
        servers.stop()
