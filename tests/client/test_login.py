"""Which server and token a command talks to: SHIPWAY_URL and SHIPWAY_TOKEN, else a saved
`shipway login`, else the `shipway up` of the data dir (--data, SHIPWAY_DATA or the default)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from shipway.client.login import config_path, resolve, save_login
from shipway.datadir import DataDir
from shipway.errors import ClientError, ShipwayError


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user with nothing set: no server in the environment, no login, no data dir."""
    for key in ("SHIPWAY_URL", "SHIPWAY_TOKEN", "SHIPWAY_DATA", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def running(root: Path, url: str = "http://127.0.0.1:8080", token: str = "swt_local") -> Path:
    """A data dir whose `shipway up` runs (this process stands in for it)."""
    data = DataDir(root)
    data.create()
    data.write_state({"pid": os.getpid(), "url": url})
    data.admin_token.write_text(token + "\n")
    return root


def test_the_environment_wins_over_a_login_and_a_local_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_login("https://saved.example.com", "swt_saved")
    monkeypatch.setenv("SHIPWAY_DATA", str(running(tmp_path / "data")))
    monkeypatch.setenv("SHIPWAY_URL", "https://env.example.com/")
    monkeypatch.setenv("SHIPWAY_TOKEN", "swt_env")
    assert resolve() == ("https://env.example.com", "swt_env")
    assert resolve(tmp_path / "data") == ("https://env.example.com", "swt_env")


def test_a_saved_login_wins_over_the_default_data_dir(home: Path) -> None:
    running(home / ".local" / "share" / "shipway")
    save_login("https://saved.example.com/", "swt_saved")
    assert resolve() == ("https://saved.example.com", "swt_saved")


def test_a_data_dir_named_by_flag_or_environment_wins_over_a_saved_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_login("https://saved.example.com", "swt_saved")
    flagged = running(tmp_path / "flagged", "http://127.0.0.1:9001", "swt_flagged")
    assert resolve(flagged) == ("http://127.0.0.1:9001", "swt_flagged")
    monkeypatch.setenv("SHIPWAY_DATA", str(running(tmp_path / "env", "http://127.0.0.1:9002")))
    assert resolve() == ("http://127.0.0.1:9002", "swt_local")
    assert resolve(flagged) == ("http://127.0.0.1:9001", "swt_flagged")


def test_the_default_data_dir_follows_xdg_data_home(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    running(home / ".local" / "share" / "shipway", "http://127.0.0.1:9003")
    assert resolve() == ("http://127.0.0.1:9003", "swt_local")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    running(tmp_path / "xdg" / "shipway", "http://127.0.0.1:9004")
    assert resolve() == ("http://127.0.0.1:9004", "swt_local")


def test_half_a_pair_in_the_environment_completes_the_local_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPWAY_DATA", str(running(tmp_path / "data", "http://127.0.0.1:9005")))
    monkeypatch.setenv("SHIPWAY_URL", "http://proxy.example.com/")
    assert resolve() == ("http://proxy.example.com", "swt_local")
    monkeypatch.delenv("SHIPWAY_URL")
    monkeypatch.setenv("SHIPWAY_TOKEN", "swt_other")
    assert resolve() == ("http://127.0.0.1:9005", "swt_other")


def test_no_server_says_how_to_start_one(tmp_path: Path) -> None:
    with pytest.raises(ClientError) as raised:
        resolve(tmp_path / "empty")
    assert str(raised.value) == (
        f"no shipway is running with data dir {tmp_path / 'empty'}; start one with "
        "`shipway up`, or use `shipway login --url URL --token TOKEN` for a remote server"
    )
    assert isinstance(raised.value, ShipwayError)


def test_a_running_server_without_its_token_says_where_it_looked(tmp_path: Path) -> None:
    root = running(tmp_path / "data")
    DataDir(root).admin_token.unlink()
    with pytest.raises(ClientError, match=r"cannot read the admin token at .*admin-token"):
        resolve(root)


def test_a_broken_saved_login_says_to_log_in_again() -> None:
    config_path().parent.mkdir(parents=True)
    config_path().write_text(json.dumps({"url": "https://saved.example.com"}))
    with pytest.raises(ClientError, match=r"cannot read .*config\.json: .*shipway login` again"):
        resolve()


def test_save_login_is_private_and_honours_xdg_config_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    path = save_login("https://shipway.example.com/", "swt_secret")
    assert path == tmp_path / "config" / "shipway" / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {
        "url": "https://shipway.example.com",
        "token": "swt_secret",
    }
    assert resolve() == ("https://shipway.example.com", "swt_secret")
