from pathlib import Path

import pytest

from shipway.errors import ConfigError
from shipway.settings import Settings


def test_defaults_use_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    settings = Settings.load({"data_dir": tmp_path}, env={})
    assert settings.port == 8080
    assert settings.store_url == f"sqlite:///{tmp_path / 'shipway.db'}"
    assert settings.temporal_address is None and settings.nats_url is None


def test_flags_win_over_the_environment(tmp_path: Path) -> None:
    env = {"SHIPWAY_PORT": "9000", "SHIPWAY_DATA": str(tmp_path / "env")}
    settings = Settings.load({"port": 9100}, env=env)
    assert settings.port == 9100
    assert settings.data_dir == tmp_path / "env"


def test_postgres_urls_get_the_psycopg_driver() -> None:
    settings = Settings.load(env={"SHIPWAY_DATABASE_URL": "postgres://u:p@db/shipway"})
    assert settings.store_url == "postgresql+psycopg://u:p@db/shipway"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("SHIPWAY_PORT", "eighty"),
        ("SHIPWAY_PORT", "70000"),
        ("SHIPWAY_DATABASE_URL", "mysql://x"),
        ("SHIPWAY_TEMPORAL_ADDRESS", "no-port"),
        ("SHIPWAY_NATS_URL", "http://localhost:4222"),
        ("SHIPWAY_AUDIT_INDEXED_PATHS", "flag.gid,a'b"),
        ("SHIPWAY_AUDIT_INDEXED_PATHS", "flag..gid"),
        ("SHIPWAY_UNSAFE_SHARED_NETWORK", "maybe"),
        ("SHIPWAY_NATS_NKEY", "/no/such/seed.nk"),
        ("SHIPWAY_NATS_CREDENTIALS", "/no/such/user.creds"),
        ("SHIPWAY_TEMPORAL_TLS", "sometimes"),
        ("SHIPWAY_TEMPORAL_TLS_CA", "/no/such/ca.pem"),
    ],
)
def test_a_bad_value_names_its_key(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=key):
        Settings.load(env={key: value})


def test_a_bad_flag_names_the_flag() -> None:
    with pytest.raises(ConfigError, match="--port"):
        Settings.load({"port": 0}, env={})


@pytest.mark.parametrize(
    ("key", "value"), [("SHIPWAY_MAX_SOURCE_MB", "0"), ("SHIPWAY_BUILD_TIMEOUT", "soon")]
)
def test_limits_must_be_positive_whole_numbers(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=key):
        Settings.load(env={key: value})


def test_audit_indexed_paths_are_dotted_key_lists() -> None:
    settings = Settings.load(env={"SHIPWAY_AUDIT_INDEXED_PATHS": "flag.gid, app"})
    assert settings.audit_indexed_paths == (("flag", "gid"), ("app",))


def test_the_shared_network_is_off_unless_asked(tmp_path: Path) -> None:
    assert Settings.load({"data_dir": tmp_path}, env={}).unsafe_shared_network is False
    asked = Settings.load(env={"SHIPWAY_UNSAFE_SHARED_NETWORK": "true"})
    assert asked.unsafe_shared_network is True
    assert Settings.load({"unsafe_shared_network": True}, env={}).unsafe_shared_network


def test_mtls_needs_both_the_certificate_and_its_key(tmp_path: Path) -> None:
    cert = tmp_path / "client.pem"
    cert.write_text("cert")
    with pytest.raises(ConfigError, match="give both"):
        Settings.load(env={"SHIPWAY_TEMPORAL_TLS_CERT": str(cert)})
