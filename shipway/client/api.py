"""Find the server and token, call the API, and turn its errors into one clear line."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from shipway.datadir import DataDir, write_private
from shipway.settings import default_data_dir


class CliError(Exception):
    """Raised when a command fails; main() prints the message as one line and exits non-zero."""


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
        raise CliError(
            f"no shipway is running with data dir {data.root}; start one with `shipway up`, "
            "or use `shipway login --url URL --token TOKEN` for a remote server"
        )
    token = data.read_admin_token()
    if token is None:
        raise CliError(f"cannot read the admin token at {data.admin_token}")
    return str(state["url"]), token


def resolve(data_flag: Path | None = None) -> tuple[str, str]:
    """The server URL and token: SHIPWAY_URL/SHIPWAY_TOKEN, a local server, or the saved login."""
    url, token = os.environ.get("SHIPWAY_URL"), os.environ.get("SHIPWAY_TOKEN")
    if url and token:
        return url.rstrip("/"), token
    if data_flag is None and not os.environ.get("SHIPWAY_DATA") and config_path().exists():
        try:
            saved = json.loads(config_path().read_text())
            return str(saved["url"]), str(saved["token"])
        except (OSError, ValueError, KeyError) as e:
            raise CliError(f"cannot read {config_path()}: {e}; run `shipway login` again") from e
    local_url, local_token = _local(data_dir_from(data_flag))
    return (url or local_url).rstrip("/"), token or local_token


@dataclass
class Api:
    """A thin client of /api/v1 that raises CliError with the server's own message."""

    url: str
    token: str
    timeout: float = 30.0

    @classmethod
    def find(cls, data_flag: Path | None = None) -> Api:
        return cls(*resolve(data_flag))

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = httpx.request(
                method,
                f"{self.url}/api/v1{path}",
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=self.timeout,
                **kwargs,
            )
        except httpx.HTTPError as e:
            raise CliError(f"cannot reach shipway at {self.url}: {e}") from e
        if response.status_code >= 400:
            raise CliError(describe_error(response))
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, json=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)


def describe_error(response: httpx.Response) -> str:
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text.strip()[:200] or response.reason_phrase
    return f"{message} (HTTP {response.status_code})"
