"""One typed settings object: flags win over the environment, which wins over defaults."""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from shipway.errors import ConfigError

DEFAULT_PORT = 8080
DEFAULT_HOST = "127.0.0.1"
DEFAULT_BASE_DOMAIN = "localhost"
#: Seconds a release phase may run before it is killed and its deployment fails, by default
#: and at most (the deploy workflow waits a little longer than the most it may be set to).
DEFAULT_RELEASE_TIMEOUT = 300
MAX_RELEASE_TIMEOUT = 3600
#: Releases in each environment whose image stays in storage, by default.
DEFAULT_IMAGE_RETENTION = 10


def default_data_dir() -> Path:
    """Where shipway keeps its state when neither --data nor SHIPWAY_DATA says otherwise."""
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "shipway"


def _port(key: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{key}: must be a port number from 1 to 65535, got {raw!r}") from None
    if not 1 <= value <= 65535:
        raise ConfigError(f"{key}: must be a port number from 1 to 65535, got {value}")
    return value


def _database_url(key: str, raw: str) -> str:
    if not raw.startswith(("sqlite", "postgresql", "postgres://")):
        raise ConfigError(f"{key}: must be a sqlite:/// or postgresql:// URL, got {raw!r}")
    if raw.startswith("postgres://"):
        raw = "postgresql://" + raw.removeprefix("postgres://")
    if raw.startswith("postgresql://"):
        raw = "postgresql+psycopg://" + raw.removeprefix("postgresql://")
    return raw


def _addons_postgres_url(key: str, raw: str) -> str:
    """An operator's PostgreSQL server, by its admin's URL; shown in errors by its host alone,
    never with its password."""
    if not raw.startswith(("postgresql://", "postgres://")):
        raise ConfigError(f"{key}: must be a postgresql:// URL of the server's admin user")
    url = "postgresql://" + raw.split("://", 1)[1]
    split = urlsplit(url)
    query = parse_qs(split.query)
    # libpq lets the query name the host and user too, and its word is the last.
    host = unquote((query.get("host") or [split.hostname or ""])[-1])
    user = (query.get("user") or [split.username or ""])[-1]
    try:
        port = split.port
    except ValueError:
        port = 0
    if port == 0:
        raise ConfigError(f"{key}: its port must be a number from 1 to 65535")
    if not host or host.startswith(("/", "@")) or "," in host:
        raise ConfigError(
            f"{key}: must name one host the server listens on over TCP: "
            "postgresql://USER:PASSWORD@HOST:PORT/DB"
        )
    if not user:
        raise ConfigError(f"{key}: must name the admin user: postgresql://USER:PASSWORD@{host}")
    if _loopback(host):
        raise ConfigError(
            f"{key}: {host} is this machine's loopback, which apps' sandboxes cannot reach; "
            "give an address of the server that apps can reach"
        )
    return url


def _loopback(host: str) -> bool:
    """Whether HOST names this machine's loopback (or any address of it: 0.0.0.0, ::)."""
    if host.lower().rstrip(".") == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(host)
    except ValueError:
        try:  # the shorthands libpq takes too: 127.1, 2130706433
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def _address(key: str, raw: str) -> str:
    host, sep, port = raw.rpartition(":")
    if not sep or not host:
        raise ConfigError(f"{key}: must be HOST:PORT, got {raw!r}")
    _port(key, port)
    return raw


def _nats_url(key: str, raw: str) -> str:
    if not raw.startswith(("nats://", "tls://")):
        raise ConfigError(f"{key}: must be a nats:// or tls:// URL, got {raw!r}")
    return raw


def _flag(key: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{key}: must be true or false, got {raw!r}")


def _text(key: str, raw: str) -> str:
    if not raw.strip():
        raise ConfigError(f"{key}: must not be empty")
    return raw.strip()


_KEY = re.compile(r"[A-Za-z0-9_\-:@]{1,64}")


def _paths(key: str, raw: str) -> tuple[tuple[str, ...], ...]:
    """Comma-separated dotted paths of payload keys: `flag.gid,app`."""
    paths = []
    for dotted in raw.split(","):
        path = tuple(dotted.strip().split("."))
        if not 1 <= len(path) <= 8 or not all(_KEY.fullmatch(k) for k in path):
            raise ConfigError(
                f"{key}: must be comma-separated dotted paths of keys (flag.gid,app); "
                f"got {dotted.strip()!r}"
            )
        paths.append(path)
    return tuple(paths)


def _path(key: str, raw: str) -> Path:
    return Path(_text(key, raw)).expanduser().resolve()


def _file(key: str, raw: str) -> Path:
    path = _path(key, raw)
    if not path.is_file():
        raise ConfigError(f"{key}: no such file: {path}")
    return path


def _whole(unit: str, least: int = 1, most: int | None = None) -> Callable[[str, str], int]:
    """A parser for a whole number of UNIT from LEAST to MOST (if given)."""

    def parse(key: str, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{key}: must be a whole number of {unit}, got {raw!r}") from None
        if value < least:
            raise ConfigError(f"{key}: must be at least {least} ({unit}), got {value}")
        if most is not None and value > most:
            raise ConfigError(f"{key}: must be at most {most} ({unit}), got {value}")
        return value

    return parse


Parser = Callable[[str, str], Any]


_FLAG_NAMES = {"data_dir": "--data"}


@dataclass(frozen=True)
class Settings:
    """Everything shipway needs to know about where it runs and what it talks to."""

    data_dir: Path = field(default_factory=default_data_dir)
    port: int = DEFAULT_PORT
    host: str = DEFAULT_HOST
    base_domain: str = DEFAULT_BASE_DOMAIN
    database_url: str | None = None
    temporal_address: str | None = None
    nats_url: str | None = None
    temporal_namespace: str = "default"
    #: An external NATS's credentials: a .creds file (JWT and nkey) or an nkey seed file.
    nats_credentials: Path | None = None
    nats_nkey: Path | None = None
    #: An external Temporal's TLS: on with the system's CAs, or with a CA of its own; mTLS
    #: with a client certificate and key; or an API key (Temporal Cloud).
    temporal_tls: bool = False
    temporal_tls_ca: Path | None = None
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    temporal_api_key: str | None = None
    max_source_mb: int = 200
    build_timeout: int = 900
    #: Seconds an app's release phase (the Procfile's `release:`) may run.
    release_timeout: int = DEFAULT_RELEASE_TIMEOUT
    #: Payload paths SQLite indexes for audit search (PostgreSQL indexes every path).
    audit_indexed_paths: tuple[tuple[str, ...], ...] = ()
    #: Whole days of audit entries kept; None keeps them all.
    audit_retention_days: int | None = None
    #: Releases of each environment whose image stays in podman storage (the older ones'
    #: images are pruned; a release live or deploying keeps its image whatever its age).
    image_retention: int = DEFAULT_IMAGE_RETENTION
    #: The dispatch rules' file (shipway.fleet.dispatch); None: every build to pool default.
    fleet_rules: Path | None = None
    #: Builders `shipway up` runs on this machine for pool default: one inside the server,
    #: the others as `shipway builder` processes beside it; 0 runs none.
    builders: int = 1
    #: Let sandboxes that need network share the host's when they cannot have their own
    #: (slirp4netns missing): unsafe, and only ever the operator's explicit choice.
    unsafe_shared_network: bool = False
    #: An operator's PostgreSQL server for postgres add-ons, by its admin's URL; None: the
    #: embedded server in DATA/addons/postgres.
    addons_postgres_url: str | None = None

    @property
    def store_url(self) -> str:
        """The SQLAlchemy URL of the store: SHIPWAY_DATABASE_URL or the SQLite file in DATA."""
        return self.database_url or f"sqlite:///{self.data_dir / 'shipway.db'}"

    @property
    def max_source(self) -> int:
        """The largest source archive or push accepted, in bytes."""
        return self.max_source_mb * 1024 * 1024

    @property
    def api_url(self) -> str:
        shown = "localhost" if self.host in ("127.0.0.1", "0.0.0.0", "::") else self.host
        return f"http://{shown}:{self.port}"

    @classmethod
    def load(
        cls, flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
    ) -> Settings:
        """Read SHIPWAY_* from the environment, then apply flags given on the command line."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        parsers: dict[str, tuple[str, Parser]] = {
            "data_dir": ("SHIPWAY_DATA", _path),
            "port": ("SHIPWAY_PORT", _port),
            "host": ("SHIPWAY_HOST", _text),
            "base_domain": ("SHIPWAY_BASE_DOMAIN", _text),
            "database_url": ("SHIPWAY_DATABASE_URL", _database_url),
            "temporal_address": ("SHIPWAY_TEMPORAL_ADDRESS", _address),
            "nats_url": ("SHIPWAY_NATS_URL", _nats_url),
            "temporal_namespace": ("SHIPWAY_TEMPORAL_NAMESPACE", _text),
            "nats_credentials": ("SHIPWAY_NATS_CREDENTIALS", _file),
            "nats_nkey": ("SHIPWAY_NATS_NKEY", _file),
            "temporal_tls": ("SHIPWAY_TEMPORAL_TLS", _flag),
            "temporal_tls_ca": ("SHIPWAY_TEMPORAL_TLS_CA", _file),
            "temporal_tls_cert": ("SHIPWAY_TEMPORAL_TLS_CERT", _file),
            "temporal_tls_key": ("SHIPWAY_TEMPORAL_TLS_KEY", _file),
            "temporal_api_key": ("SHIPWAY_TEMPORAL_API_KEY", _text),
            "max_source_mb": ("SHIPWAY_MAX_SOURCE_MB", _whole("MiB")),
            "build_timeout": ("SHIPWAY_BUILD_TIMEOUT", _whole("seconds")),
            "release_timeout": (
                "SHIPWAY_RELEASE_TIMEOUT",
                _whole("seconds", most=MAX_RELEASE_TIMEOUT),
            ),
            "audit_indexed_paths": ("SHIPWAY_AUDIT_INDEXED_PATHS", _paths),
            "audit_retention_days": ("SHIPWAY_AUDIT_RETENTION_DAYS", _whole("days")),
            "image_retention": ("SHIPWAY_IMAGE_RETENTION", _whole("releases")),
            "fleet_rules": ("SHIPWAY_FLEET_RULES", _path),
            "builders": ("SHIPWAY_BUILDERS", _whole("builders", least=0)),
            "unsafe_shared_network": ("SHIPWAY_UNSAFE_SHARED_NETWORK", _flag),
            "addons_postgres_url": ("SHIPWAY_ADDONS_POSTGRES_URL", _addons_postgres_url),
        }
        for name, (key, parse) in parsers.items():
            raw = env.get(key)
            if raw is not None and raw != "":
                values[name] = parse(key, raw)
        for name, value in (flags or {}).items():
            if value is None:
                continue
            if name not in parsers:
                raise ConfigError(f"unknown setting {name!r}")
            key = _FLAG_NAMES.get(name, "--" + name.replace("_", "-"))
            values[name] = parsers[name][1](key, str(value))
        if ("temporal_tls_cert" in values) != ("temporal_tls_key" in values):
            raise ConfigError(
                "SHIPWAY_TEMPORAL_TLS_CERT and SHIPWAY_TEMPORAL_TLS_KEY: give both for mTLS"
            )
        return cls(**values)
