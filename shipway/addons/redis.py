"""The Redis servers of redis add-ons: one `redis-server` (Debian's, or valkey-server) per add-on,
in DATA/addons/redis/NAME, reached only through its Unix socket (no TCP port).

The default user is off. The app's user may run every command but the administrative ones
(CONFIG, SHUTDOWN, DEBUG, …); shipway's own user saves and restores. Writes go to an
append-only file synced every second, so a crash loses at most the last second.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

from shipway.addons import confine, process, sockets
from shipway.datadir import pid_in, write_private
from shipway.errors import ServiceError

#: Where a sandbox sees an add-on's socket directory: MOUNT/NAME/redis.sock.
MOUNT = "/run/shipway/redis"
SOCKET = "redis.sock"
ADMIN = "shipway"
_BINARIES = ("redis-server", "valkey-server")


class RedisError(ServiceError):
    """A command the server refused or could not answer."""


def binary() -> str:
    for name in _BINARIES:
        found = shutil.which(name)
        if found:
            return found
    raise ServiceError("redis add-ons need redis-server: apt-get install redis-server")


def root(data_dir: Path) -> Path:
    """Where the redis servers of a data dir live, one directory each, named by resource."""
    return data_dir / "addons" / "redis"


def names(data_dir: Path) -> list[str]:
    """The resources of the redis servers a data dir holds."""
    folder = root(data_dir)
    return sorted(home.name for home in folder.iterdir()) if folder.is_dir() else []


def socket_dir(data_dir: Path, name: str) -> Path:
    """The directory of server NAME's socket, which its app's sandboxes mount."""
    return root(data_dir) / name / "run"


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str


class RedisServer:
    """The server of one redis add-on, named NAME (its resource name)."""

    def __init__(self, data_dir: Path, name: str) -> None:
        self.name = name
        self.home = root(data_dir) / name
        self.data = self.home / "data"
        self.socket_dir = socket_dir(data_dir, name)
        self.socket = self.socket_dir / SOCKET
        self.config = self.home / "redis.conf"
        self.pid_file = self.home / "redis.pid"
        self.log_path = data_dir / "logs" / f"redis-{name}.log"
        self._admin_file = data_dir / "addons" / f"redis-{name}-admin"
        self._lock = asyncio.Lock()

    @property
    def busy(self) -> bool:
        """Whether it is being started (or restored) right now."""
        return self._lock.locked()

    @property
    def pid(self) -> int | None:
        return pid_in(self.pid_file)

    def create(self, user: str) -> Credentials:
        """Write the server's configuration with USER's ACL and a generated password."""
        app = Credentials(user, secrets.token_urlsafe(24))
        admin = secrets.token_urlsafe(24)
        self.data.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)

        def inside(path: Path) -> Path:
            return confine.inside(self.home, path)

        text = "\n".join(
            [
                "port 0",
                f"unixsocket {sockets.check(inside(self.socket))}",
                "unixsocketperm 777",
                f"dir {inside(self.data)}",
                f"pidfile {inside(self.pid_file)}",
                "daemonize no",
                "appendonly yes",
                "appendfsync everysec",
                "protected-mode yes",
                "user default off",
                f"user {app.user} on >{app.password} ~* &* +@all -@admin",
                f"user {ADMIN} on >{admin} ~* &* +@all",
                "",
            ]
        )
        write_private(self.config, text)
        write_private(self._admin_file, admin)
        confine.prepare(self.home)
        return app

    def url(self, credentials: Credentials) -> str:
        """The REDIS_URL an app's sandbox uses: the socket under MOUNT."""
        return f"unix://{credentials.user}:{credentials.password}@{MOUNT}/{self.name}/{SOCKET}"

    async def ensure(self) -> None:
        """Start the server unless it runs and answers."""
        async with self._lock:
            await self._ensure()

    async def _ensure(self, *overrides: str) -> None:
        """OVERRIDES are extra `--key value` arguments for this start."""
        if self.pid is not None and await self._answers():
            return
        confine.prepare(self.home)
        command = [binary(), str(confine.inside(self.home, self.config)), *overrides]
        pid = process.spawn(confine.argv(self.home, command), self.log_path)
        await process.until_ready(f"redis {self.name}", pid, self._answers, self.log_path)

    async def _answers(self) -> bool:
        try:
            return await self.command("PING") == "PONG"
        except (OSError, RedisError):
            return False

    def stop(self) -> None:
        """SIGTERM: Redis saves, then exits."""
        process.stop(self.pid, signal.SIGTERM)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)
        self._admin_file.unlink(missing_ok=True)

    def status(self) -> dict[str, object]:
        """Up while its process runs."""
        pid = self.pid
        return {"up": pid is not None, "pid": pid, "socket": str(self.socket)}

    async def dump(self, into: Path) -> None:
        """Save a snapshot and copy it to INTO."""
        await self.command("SAVE")
        await asyncio.to_thread(shutil.copyfile, self.data / "dump.rdb", into)

    async def restore(self, backup: Path) -> None:
        """Replace the data with BACKUP's: the server starts once from it with the append-only
        file off, then writes a fresh append-only file from what it loaded."""
        async with self._lock:
            await asyncio.to_thread(self.stop)
            shutil.rmtree(self.data / "appendonlydir", ignore_errors=True)
            shutil.copyfile(backup, self.data / "dump.rdb")
            confine.hand_over(self.data / "dump.rdb")
            await self._ensure("--appendonly", "no")
            await self.command("CONFIG", "SET", "appendonly", "yes")
            while not _rewritten(await self.command("INFO", "persistence")):
                await asyncio.sleep(0.05)

    async def command(self, *args: str) -> str:
        """Run one command as shipway's admin user; its reply as text."""
        password = self._admin_file.read_text().strip()
        with sockets.reachable(self.socket_dir) as folder:
            reader, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(f"{folder}/{SOCKET}"), timeout=5
            )
        try:
            for command in (("AUTH", ADMIN, password), args):
                writer.write(_encode(command))
            await writer.drain()
            await asyncio.wait_for(_reply(reader), timeout=5)
            return await asyncio.wait_for(_reply(reader), timeout=600)
        finally:
            writer.close()


def _rewritten(info: str) -> bool:
    """Whether INFO persistence says the append-only file is on and fully written."""
    return "aof_enabled:1" in info and "aof_rewrite_in_progress:0" in info


def _encode(args: tuple[str, ...]) -> bytes:
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


async def _reply(reader: asyncio.StreamReader) -> str:
    """One RESP reply as text (a simple string, an error raised, a bulk string, an integer)."""
    line = (await reader.readline()).decode().rstrip("\r\n")
    if not line:
        raise RedisError("the redis server closed the connection")
    kind, rest = line[0], line[1:]
    if kind == "-":
        raise RedisError(rest)
    if kind == "$":
        size = int(rest)
        if size < 0:
            return ""
        return (await reader.readexactly(size + 2))[:-2].decode()
    return rest
