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


ADDONS_POSTGRES = "SHIPWAY_ADDONS_POSTGRES_URL"


def test_an_operators_postgres_server_is_named_by_its_admin_url() -> None:
    assert Settings.load(env={}).addons_postgres_url is None
    url = "postgres://admin:s3cret@db.internal:6432/postgres?sslmode=require"
    settings = Settings.load(env={ADDONS_POSTGRES: url})
    assert settings.addons_postgres_url == (
        "postgresql://admin:s3cret@db.internal:6432/postgres?sslmode=require"
    )
    for host in ("10.0.0.5", "[fd00::5]"):
        assert Settings.load(env={ADDONS_POSTGRES: f"postgresql://admin@{host}/postgres"})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("postgresql://admin:s3cret@localhost/postgres", "localhost is this machine's loopback"),
        ("postgresql://admin:s3cret@LOCALHOST:5432/db", "loopback"),
        ("postgresql://admin:s3cret@127.0.0.1/postgres", "127.0.0.1 is this machine's loopback"),
        ("postgresql://admin:s3cret@127.8.9.10:5432/postgres", "loopback"),
        ("postgresql://admin:s3cret@127.1/postgres", "loopback"),
        ("postgresql://admin:s3cret@[::1]:5432/postgres", "::1 is this machine's loopback"),
        ("postgresql://admin:s3cret@[::ffff:127.0.0.1]/postgres", "loopback"),
        ("postgresql://admin:s3cret@db.internal/postgres?host=127.0.0.1", "loopback"),
        ("postgresql://admin:s3cret@/postgres", "must name one host"),
        ("postgresql://admin:s3cret@%2Frun%2Fpostgresql/postgres", "must name one host"),
        ("postgresql://admin:s3cret@db.internal/postgres?host=/run/pg", "must name one host"),
        ("postgresql://db.internal:5432/postgres", "must name the admin user"),
        ("postgresql://admin:s3cret@db.internal:port/postgres", "its port must be"),
        ("mysql://admin:s3cret@db.internal/postgres", "must be a postgresql:// URL"),
        ("db.internal:5432", "must be a postgresql:// URL"),
    ],
)
def test_an_operators_postgres_server_must_be_reachable_from_apps(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=ADDONS_POSTGRES) as refused:
        Settings.load(env={ADDONS_POSTGRES: value})
    assert message in str(refused.value)
    assert "s3cret" not in str(refused.value), "the password is never shown"


def test_a_loopback_postgres_server_is_refused_for_what_apps_cannot_reach() -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.load(env={ADDONS_POSTGRES: "postgresql://admin:pw@127.0.0.1:5432/postgres"})
    assert "sandboxes cannot reach" in str(refused.value)
    assert "an address of the server that apps can reach" in str(refused.value)
