"""The add-on servers of one data dir: each kind's way to make, drop, back up and restore the
resource behind an add-on, and what a sandbox mounts to reach it.

Servers start on first use and outlive the control plane (apps keep their databases while it
restarts); `ensure` brings back those the store still names, `sweep` drops what it no longer
names (an app or a preview deleted, a creation cut short), `stop` ends them all. Postgres
add-ons live on the embedded server, or on an operator's server when an admin URL names one:
that one shipway only asks whether it answers, and never starts or stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from shipway.addons import postgres, process, redis
from shipway.addons.postgres import ExternalPostgres, Postgres, PostgresServer
from shipway.addons.redis import RedisServer
from shipway.errors import ServiceError
from shipway.sandbox import Mount

log = logging.getLogger(__name__)

#: How often `watch` looks for servers that died.
WATCH_SECONDS = 2.0


class Kind(StrEnum):
    POSTGRES = "postgres"
    REDIS = "redis"

    @property
    def env_var(self) -> str:
        """The config var an app gets by default."""
        return "DATABASE_URL" if self is Kind.POSTGRES else "REDIS_URL"


@dataclass(frozen=True)
class Made:
    """A resource made for an add-on: its server-side name and the URL an app uses."""

    resource: str
    url: str


class Servers:
    def __init__(self, data_dir: Path, postgres_url: str | None = None) -> None:
        self.data_dir = data_dir
        #: The server of postgres add-ons: the operator's, named by its admin's POSTGRES_URL,
        #: or the embedded one.
        self.postgres: Postgres = (
            ExternalPostgres(postgres_url) if postgres_url else PostgresServer(data_dir)
        )
        self._redis: dict[str, RedisServer] = {}
        #: Resources made whose add-on is not recorded yet: never swept.
        self.pending: set[str] = set()
        #: Set by `stop`: the servers are going down on purpose.
        self.stopping = False

    def redis(self, resource: str) -> RedisServer:
        server = self._redis.get(resource)
        if server is None:
            server = self._redis[resource] = RedisServer(self.data_dir, resource)
        return server

    async def make(self, kind: Kind) -> Made:
        """A new database (postgres) or server (redis) with credentials of its own."""
        if kind is Kind.POSTGRES:
            await self.postgres.ensure()
            database = await asyncio.to_thread(self.postgres.create, self.pending.add)
            return Made(database.name, self.postgres.url(database))
        resource = "redis_" + secrets.token_hex(5)
        self.pending.add(resource)
        server = self.redis(resource)
        credentials = await asyncio.to_thread(server.create, "app")
        try:
            await server.ensure()
        except ServiceError:
            await asyncio.to_thread(self._drop_redis, resource)
            raise
        return Made(resource, server.url(credentials))

    async def drop(self, kind: Kind, resource: str) -> None:
        if kind is Kind.POSTGRES:
            await self.postgres.ensure()
            await asyncio.to_thread(self.postgres.drop, resource)
        else:
            await asyncio.to_thread(self._drop_redis, resource)

    def _drop_redis(self, resource: str) -> None:
        """Out of the watched servers first, so that its stop is not taken for a crash."""
        server = self._redis.pop(resource, None) or RedisServer(self.data_dir, resource)
        server.destroy()

    async def dump(self, kind: Kind, resource: str, into: Path) -> None:
        """Back the resource up into the file INTO (written whole, or not at all)."""
        partial = into.with_name(into.name + ".partial")
        try:
            if kind is Kind.POSTGRES:
                await self.postgres.ensure()
                await asyncio.to_thread(self.postgres.dump, resource, partial)
            else:
                await self.redis(resource).ensure()
                await self.redis(resource).dump(partial)
            partial.replace(into)
        finally:
            partial.unlink(missing_ok=True)

    async def restore(self, kind: Kind, resource: str, backup: Path) -> None:
        if kind is Kind.POSTGRES:
            await self.postgres.ensure()
            await asyncio.to_thread(self.postgres.restore, resource, backup)
        else:
            await self.redis(resource).restore(backup)

    async def copy(self, kind: Kind, source: str, target: str) -> None:
        """Give TARGET the data of SOURCE (a preview forked from production)."""
        scratch = self.data_dir / "tmp" / f"fork-{target}{suffix(kind)}"
        scratch.parent.mkdir(parents=True, exist_ok=True)
        try:
            await self.dump(kind, source, scratch)
            await self.restore(kind, target, scratch)
        finally:
            scratch.unlink(missing_ok=True)

    # -- every server at once ----------------------------------------------------------------

    async def ensure(self, wanted: list[tuple[Kind, str]]) -> None:
        """Run the servers of WANTED, (kind, resource) pairs: found running, or started. One
        that cannot start keeps none of the others from starting; ServiceError names them."""
        servers: list[Postgres | RedisServer] = [
            self.redis(resource) for kind, resource in wanted if kind is Kind.REDIS
        ]
        if any(kind is Kind.POSTGRES for kind, _ in wanted):
            servers.insert(0, self.postgres)
        failed = []
        for server in servers:
            try:
                await server.ensure()
            except ServiceError as e:
                failed.append(e.message)
        if failed:
            raise ServiceError("; ".join(failed))

    async def watch(self) -> None:
        """Until cancelled: start again any server of ours that died (a crash, the OOM killer),
        and ask an operator's server whether it answers, for `status` to say."""
        while not self.stopping:
            process.reap()
            await self.postgres.ask()
            for server in self._ours():
                if self.stopping:
                    return
                if not server.status()["up"] and not server.busy:
                    log.error("the %s add-on server is gone; starting it again", server.name)
                    with contextlib.suppress(ServiceError, OSError):
                        await server.ensure()
            await asyncio.sleep(WATCH_SECONDS)

    def _ours(self) -> list[PostgresServer | RedisServer]:
        """The servers shipway runs and that have data."""
        servers: list[PostgresServer | RedisServer] = list(self._redis.values())
        if isinstance(self.postgres, PostgresServer) and self.postgres.initialised:
            servers.append(self.postgres)
        return servers

    async def sweep(self, known: set[str]) -> list[str]:
        """Drop every resource that no add-on in KNOWN names; what was dropped."""
        dropped = []
        for name in redis.names(self.data_dir):
            if name not in known and name not in self.pending:
                await asyncio.to_thread(self._drop_redis, name)
                dropped.append(name)
        if await self.postgres.ask():
            for name in await asyncio.to_thread(self.postgres.databases):
                if name not in known and name not in self.pending:
                    await asyncio.to_thread(self.postgres.drop, name)
                    dropped.append(name)
        return dropped

    def stop(self) -> None:
        """Stop every server of this data dir (`shipway down`); `watch` starts none again."""
        self.stopping = True
        for name in redis.names(self.data_dir):
            self.redis(name).stop()
        self.postgres.stop()

    def status_of(self, kind: Kind, resource: str) -> dict[str, object]:
        """The state of the server behind one resource."""
        return (self.postgres if kind is Kind.POSTGRES else self.redis(resource)).status()

    def status(self) -> dict[str, dict[str, object]]:
        """Each server that has data, and an operator's postgres server: whether it is up,
        its pid (None when down, or not ours) and its socket or address. Costs no I/O but
        reading pid files: an operator's server says what it answered last (`watch`)."""
        found: dict[str, dict[str, object]] = {}
        if not isinstance(self.postgres, PostgresServer) or self.postgres.initialised:
            found["postgres"] = self.postgres.status()
        for name in redis.names(self.data_dir):
            found[f"redis {name}"] = self.redis(name).status()
        return found


def mount(data_dir: Path, kind: Kind, resource: str, url: str) -> Mount | None:
    """What an app's sandbox mounts to reach the resource at URL: its server's socket
    directory; nothing for a server reached over TCP. Told by the URL, since the node process,
    which asks, does not know which postgres server the control plane uses."""
    if kind is Kind.REDIS:
        return Mount(redis.socket_dir(data_dir, resource), f"{redis.MOUNT}/{resource}")
    if not postgres.through_socket(url):
        return None
    return Mount(postgres.socket_dir(data_dir), postgres.MOUNT)


def suffix(kind: Kind) -> str:
    """The file name ending of a backup of KIND."""
    return ".dump" if kind is Kind.POSTGRES else ".rdb"
