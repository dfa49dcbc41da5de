"""Who may connect to shipway's NATS, and what each kind of client may do there.

The embedded server accepts no anonymous client. Each kind of client (a role) has an nkey of
its own: the server's configuration holds only the public keys, each with the subjects that
role may publish to and subscribe to, and the client proves it holds the seed by signing the
server's nonce. Seeds are made at first start and kept in DATA/nats/keys/ROLE.nk (mode 0600).

A `shipway builder` process, on this machine or another, may keep its fleet record and nothing
else: its build logs go through the control plane's API, which publishes them, so its key
reads and writes no log, the `functions` bucket, audit entries or any stream's configuration.
A node may write app logs. Replies to a role come to an inbox prefix of its own, so no role
can read another's answers.

An external NATS cluster is configured by the operator instead: SHIPWAY_NATS_CREDENTIALS (a
.creds file) or SHIPWAY_NATS_NKEY (a seed file), or a user and password in SHIPWAY_NATS_URL.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import nkeys

from shipway.datadir import write_private
from shipway.errors import ConfigError
from shipway.settings import Settings


class Role(StrEnum):
    """A kind of NATS client."""

    #: The control plane: the API, its workers, the builder and node inside `shipway up`.
    CONTROL = "control"
    #: A `shipway builder` process, on this machine or another.
    BUILDER = "builder"
    #: A node (the data plane): app instances and their logs.
    NODE = "node"


#: Each role's replies come here, and only its own.
INBOX = {role: f"_INBOX.{role.value}" for role in Role}

_JS = "$JS.API"

#: What each role may publish to (requests to JetStream's API included) and subscribe to.
PERMISSIONS: dict[Role, dict[str, list[str]]] = {
    Role.CONTROL: {"publish": [">"], "subscribe": [">"]},
    # A builder's log goes through the control plane's API, which publishes it.
    Role.BUILDER: {
        "publish": [
            # The fleet's record of builders: heartbeats and drain requests.
            "$KV.builders.>",
            f"{_JS}.STREAM.INFO.KV_builders",
            f"{_JS}.DIRECT.GET.KV_builders.>",
            f"{_JS}.STREAM.MSG.GET.KV_builders",
        ],
        "subscribe": [INBOX[Role.BUILDER] + ".>"],
    },
    Role.NODE: {
        "publish": [
            # App logs: its instances' output, and resuming where an earlier node left off.
            "logs.app.*",
            f"{_JS}.STREAM.INFO.LOGS",
            f"{_JS}.DIRECT.GET.LOGS.logs.app.*",
            f"{_JS}.CONSUMER.CREATE.LOGS",
            f"{_JS}.CONSUMER.CREATE.LOGS.*.logs.app.*",
            f"{_JS}.CONSUMER.DELETE.LOGS.*",
            f"{_JS}.CONSUMER.INFO.LOGS.*",
        ],
        "subscribe": [
            INBOX[Role.NODE] + ".>",
            # A deployment's changes: its release recorded, so that the node starts it.
            "events.deployment.>",
        ],
    },
}


@dataclass(frozen=True)
class Access:
    """How one client authenticates to NATS: the options nats-py's connect takes."""

    role: Role | None = None
    nkey_seed_file: Path | None = None
    credentials_file: Path | None = None

    def options(self) -> dict[str, Any]:
        """Keyword arguments for nats.aio.client.Client.connect."""
        options: dict[str, Any] = {}
        if self.role is not None:
            options["inbox_prefix"] = INBOX[self.role]
        if self.nkey_seed_file is not None:
            options["nkeys_seed"] = str(self.nkey_seed_file)
        if self.credentials_file is not None:
            options["user_credentials"] = str(self.credentials_file)
        return options


def keys_dir(data_dir: Path) -> Path:
    return data_dir / "nats" / "keys"


def seed_file(data_dir: Path, role: Role) -> Path:
    return keys_dir(data_dir) / f"{role.value}.nk"


def ensure_keys(data_dir: Path) -> dict[Role, str]:
    """Each role's public key, making its seed on first start."""
    keys_dir(data_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
    public = {}
    for role in Role:
        path = seed_file(data_dir, role)
        if not path.exists():
            raw = secrets.token_bytes(32)
            seed = nkeys.encode_seed(raw, nkeys.PREFIX_BYTE_USER).decode()
            write_private(path, seed + "\n")
        public[role] = _public_key(path)
    return public


def _public_key(path: Path) -> str:
    try:
        seed = path.read_bytes().strip()
        key: str = nkeys.from_seed(bytearray(seed)).public_key.decode()
    except Exception as e:  # a damaged seed file: say which, never start without auth
        raise ConfigError(f"{path} does not hold a NATS nkey seed: {e}") from e
    return key


def from_data_dir(data_dir: Path, role: Role) -> Access:
    """ROLE's access with its seed kept in DATA_DIR: the embedded server's own keys."""
    path = seed_file(data_dir, role)
    if not path.exists():
        raise ConfigError(f"no NATS key for {role.value} in {path.parent}; is shipway up there?")
    return Access(role=role, nkey_seed_file=path)


def external(role: Role, credentials: Path | None, nkey: Path | None) -> Access:
    """ROLE's access to an external NATS, as the operator configured it (with neither file,
    the URL carries a user and password)."""
    for path in (credentials, nkey):
        if path is not None and not os.access(path, os.R_OK):
            raise ConfigError(f"cannot read the NATS credentials in {path}")
    return Access(role=role, credentials_file=credentials, nkey_seed_file=nkey)


def server_config(public: dict[Role, str]) -> str:
    """The `authorization` block of the embedded server's configuration."""
    users = []
    for role, key in public.items():
        allowed = PERMISSIONS[role]
        users.append(
            "    {\n"
            f"      nkey: {key}\n"
            "      permissions: {\n"
            f"        publish: {{ allow: {_list(allowed['publish'])} }}\n"
            f"        subscribe: {{ allow: {_list(allowed['subscribe'])} }}\n"
            "      }\n"
            "    }"
        )
    return "authorization {\n  users: [\n" + "\n".join(users) + "\n  ]\n}\n"


def own(settings: Settings, role: Role) -> Access:
    """ROLE's access for a process of this machine's shipway: the operator's credentials for an
    external NATS, else the role's key to the embedded one."""
    if settings.nats_url:
        return external(role, settings.nats_credentials, settings.nats_nkey)
    return from_data_dir(settings.data_dir, role)


def builder_access(data_dir: Path, given: dict[str, Any], settings_files: Access) -> Access:
    """A `shipway builder`'s access: the operator's files where given; else, on another
    machine, the builder's seed the control plane handed over (GIVEN); else, beside the
    control plane, the builder key in the data dir they share."""
    if settings_files.credentials_file or settings_files.nkey_seed_file:
        return settings_files
    seed = given.get("nats_nkey_seed")
    if seed:
        write_private(seed_file(data_dir, Role.BUILDER), seed.strip() + "\n")
    if seed_file(data_dir, Role.BUILDER).exists():
        return from_data_dir(data_dir, Role.BUILDER)
    return Access(role=Role.BUILDER)


def _list(subjects: list[str]) -> str:
    return "[" + ", ".join(f'"{s}"' for s in subjects) + "]"
