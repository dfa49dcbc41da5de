"""Where the server and token come from: the environment, a saved `shipway login`, or the
local `shipway up` whose data dir this is. One order for every command, so a user who sets
SHIPWAY_URL and SHIPWAY_TOKEN always talks to that server."""

from __future__ import annotations

import json
import os
from pathlib import Path

from shipway.datadir import DataDir, write_private
from shipway.errors import ClientError
from shipway.settings import default_data_dir


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME")
    return (Path(base) if base else Path.home() / ".config") / "shipway" / "config.json"


def save_login(url: str, token: str) -> Path:
    path = config_path()
    write_private(path, json.dumps({"url": url.rstrip("/"), "token": token}, indent=2))
    return path


def data_dir_from(flag: Path | None) -> DataDir:
    if flag is not None:
        return DataDir(flag.expanduser().resolve())
    env = os.environ.get("SHIPWAY_DATA")
    return DataDir(Path(env).expanduser().resolve() if env else default_data_dir())


def _local(data: DataDir) -> tuple[str, str]:
    state = data.read_state()
    if state is None:
        raise ClientError(
            f"no shipway is running with data dir {data.root}; start one with `shipway up`, "
            "or use `shipway login --url URL --token TOKEN` for a remote server"
        )
    token = data.read_admin_token()
    if token is None:
        raise ClientError(f"cannot read the admin token at {data.admin_token}")
    return str(state["url"]), token


def _saved() -> tuple[str, str] | None:
    """The server and token `shipway login` saved, if it did."""
    if not config_path().exists():
        return None
    try:
        saved = json.loads(config_path().read_text())
        return str(saved["url"]), str(saved["token"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ClientError(f"cannot read {config_path()}: {e}; run `shipway login` again") from e


def resolve(data_flag: Path | None = None) -> tuple[str, str]:
    """The server URL and token: SHIPWAY_URL/SHIPWAY_TOKEN, a local server, or the saved login."""
    url, token = os.environ.get("SHIPWAY_URL"), os.environ.get("SHIPWAY_TOKEN")
    if url and token:
        return url.rstrip("/"), token
    if data_flag is None and not os.environ.get("SHIPWAY_DATA"):
        saved = _saved()
        if saved is not None:
            return saved
    local_url, local_token = _local(data_dir_from(data_flag))
    return (url or local_url).rstrip("/"), token or local_token


def known(data_flag: Path | None = None) -> list[tuple[str, str]]:
    """Every server and token this user reaches, in resolve's order, without failing: git's
    credential helper answers for whichever of them git asks about."""
    found: list[tuple[str, str]] = []
    url, token = os.environ.get("SHIPWAY_URL"), os.environ.get("SHIPWAY_TOKEN")
    if url and token:
        found.append((url.rstrip("/"), token))
    local_first = data_flag is not None or bool(os.environ.get("SHIPWAY_DATA"))
    sources = (_local_of, _saved_quietly) if local_first else (_saved_quietly, _local_of)
    for source in sources:
        server = source(data_flag)
        if server is not None:
            found.append((server[0].rstrip("/"), server[1]))
    return found


def _saved_quietly(_: Path | None) -> tuple[str, str] | None:
    try:
        return _saved()
    except ClientError:
        return None


def _local_of(data_flag: Path | None) -> tuple[str, str] | None:
    try:
        return _local(data_dir_from(data_flag))
    except (ClientError, OSError, ValueError, KeyError):
        return None
