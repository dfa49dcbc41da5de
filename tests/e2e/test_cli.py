"""The CLI against a real `shipway up`: what a user types, what they see, exit codes."""

from __future__ import annotations

import json
import stat

import pytest

from tests.e2e.conftest import Instance

pytestmark = pytest.mark.e2e


def test_status_reports_each_part_and_its_address(instance: Instance) -> None:
    result = instance.cli("status", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["running"] is True and report["url"] == instance.url
    health = report["health"]
    assert health["status"] == "ok"
    parts = health["components"]
    assert parts["store"]["backend"] == "sqlite"
    assert parts["temporal"]["address"].startswith("127.0.0.1:")
    assert parts["temporal"]["ui"].startswith("http://127.0.0.1:")
    assert parts["temporal"]["workers"] == "running"
    assert parts["nats"]["address"].startswith("nats://127.0.0.1:")
    assert (instance.data / "temporal.db").exists() and (instance.data / "nats").is_dir()

    deep = json.loads(instance.cli("status", "--deep", "--json").stdout)["health"]
    assert deep["components"]["temporal"]["probe"]["status"] == "ok", deep

    human = instance.cli("status")
    assert human.returncode == 0
    assert "temporal" in human.stdout and parts["nats"]["address"] in human.stdout


def test_admin_token_is_private(instance: Instance) -> None:
    mode = stat.S_IMODE((instance.data / "admin-token").stat().st_mode)
    assert mode == 0o600
    assert instance.token.startswith("swt_")


def test_apps_lifecycle_through_the_cli(instance: Instance) -> None:
    created = instance.cli("apps", "create", "cli-app", "--plan", "pro")
    assert created.returncode == 0, created.stderr
    assert "cli-app" in created.stdout

    listed = json.loads(instance.cli("apps", "list", "--json").stdout)
    assert "cli-app" in [a["name"] for a in listed]
    info = json.loads(instance.cli("apps", "info", "cli-app", "--json").stdout)
    assert info["app"]["plan"] == "pro"
    assert info["app"]["url"] == f"http://cli-app.localhost:{instance.port}"
    [production] = info["environments"]
    assert production["name"] == "production" and production["release"] is None

    refused = instance.cli("apps", "delete", "cli-app")
    assert refused.returncode == 1 and "--yes" in refused.stderr
    deleted = instance.cli("apps", "delete", "cli-app", "--yes")
    assert deleted.returncode == 0, deleted.stderr
    gone = instance.cli("apps", "info", "cli-app")
    assert gone.returncode == 1


def test_failures_are_one_clear_line_and_non_zero(instance: Instance) -> None:
    for args, expected in [
        (("apps", "create", "Not_Valid"), "lowercase DNS label of 1-40 characters"),
        (("apps", "info", "missing-app"), "no app named 'missing-app'"),
        (("tokens", "create", "x", "--expires", "soon"), "--expires must look like"),
        (("tokens", "revoke", "999999"), "no token with id 999999"),
    ]:
        result = instance.cli(*args)
        assert result.returncode == 1, (args, result.stdout)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert expected in lines[0]


def test_listings_take_json(instance: Instance) -> None:
    for args in (("apps", "list"), ("tokens", "list"), ("orgs", "list")):
        result = instance.cli(*args, "--json")
        assert result.returncode == 0, result.stderr
        assert isinstance(json.loads(result.stdout), list)


def test_tokens_with_roles_and_expiry(instance: Instance) -> None:
    made = json.loads(
        instance.cli(
            "tokens", "create", "ci", "--role", "viewer", "--expires", "1h", "--json"
        ).stdout
    )
    assert made["role"] == "viewer" and made["expires_at"]
    viewer_env = {**instance.env, "SHIPWAY_URL": instance.url, "SHIPWAY_TOKEN": made["token"]}
    from tests.e2e.conftest import shipway

    assert shipway("apps", "list", env=viewer_env).returncode == 0
    refused = shipway("apps", "create", "nope", env=viewer_env)
    assert refused.returncode == 1 and "deployer role" in refused.stderr
    assert instance.cli("tokens", "revoke", str(made["id"])).returncode == 0
    revoked = shipway("apps", "list", env=viewer_env)
    assert revoked.returncode == 1 and "revoked" in revoked.stderr


def test_a_second_tenant_sees_only_its_own_apps(instance: Instance) -> None:
    from tests.e2e.conftest import shipway

    assert instance.cli("apps", "create", "tenant-a-app").returncode == 0
    org = json.loads(instance.cli("orgs", "create", "acme", "--json").stdout)
    acme = {**instance.env, "SHIPWAY_URL": instance.url, "SHIPWAY_TOKEN": org["owner_token"]}
    assert json.loads(shipway("apps", "list", "--json", env=acme).stdout) == []
    assert shipway("apps", "info", "tenant-a-app", env=acme).returncode == 1


def test_login_saves_a_remote_server(instance: Instance, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.e2e.conftest import clean_env, shipway

    env = clean_env(tmp_path)
    bad = shipway("login", "--url", instance.url, "--token", "swt_wrong", env=env)
    assert bad.returncode == 1 and "invalid token" in bad.stderr
    good = shipway("login", "--url", instance.url, "--token", instance.token, env=env)
    assert good.returncode == 0, good.stderr
    config = tmp_path / "config" / "shipway" / "config.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert shipway("apps", "list", "--json", env=env).returncode == 0


def test_openapi_and_dashboard_are_served(instance: Instance) -> None:
    import httpx

    assert httpx.get(f"{instance.url}/api/v1/openapi.json").json()["info"]["title"] == "shipway"
    page = httpx.get(f"{instance.url}/", follow_redirects=True)
    assert page.status_code == 200 and page.url.path == "/login"
    assert '<form method="post" action="/login' in page.text
