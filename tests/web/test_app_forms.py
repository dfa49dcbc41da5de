"""The forms that do in the browser what the CLI's tour does: create an app, change its
settings, give it add-ons and back them up and restore them, connect it to its repository; what
a bad form, a missing CSRF token and a viewer get."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shipway.accounts.roles import Role
from shipway.addons.servers import Kind, Made
from shipway.context import Context
from shipway.settings import Settings
from shipway.store import Store
from tests.api.conftest import FakeRuntime, FakeTemporal, release
from tests.helpers import auth
from tests.web.conftest import Browser, csrf, token_of
from tests.web.test_apps_pages import forms, make_app

NEW_FORMS = (
    "/apps/web/settings",
    "/apps/web/addons",
    "/apps/web/addons/web-postgres/backups",
    "/apps/web/addons/web-postgres/restore",
    "/apps/web/connection",
    "/apps/web/connection/delete",
)


@dataclass
class Runtime(FakeRuntime):
    """The API tests' runtime, told also of changed settings."""

    refreshed: list[int] = field(default_factory=list)

    async def refresh(self, app_id: int) -> None:
        self.refreshed.append(app_id)


@dataclass
class Servers:
    """Add-on servers that make no database or server: each resource is a name, each backup a
    small file, each restore a record."""

    data_dir: Path
    pending: set[str] = field(default_factory=set)
    made: list[str] = field(default_factory=list)
    restored: list[tuple[str, str]] = field(default_factory=list)

    async def make(self, kind: Kind) -> Made:
        self.made.append(f"{kind.value}{len(self.made)}")
        return Made(self.made[-1], f"{kind.value}://localhost/{self.made[-1]}")

    async def drop(self, kind: Kind, resource: str) -> None:
        pass

    async def dump(self, kind: Kind, resource: str, into: Path) -> None:
        into.write_bytes(b"data of " + resource.encode())

    async def restore(self, kind: Kind, resource: str, backup: Path) -> None:
        self.restored.append((resource, backup.stem))


@pytest.fixture
def services(store: Store, settings: Settings, admin_token: str) -> Context:
    """The API's services, as in conftest, with add-on servers that are stand-ins."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Context(
        settings,
        store,
        temporal=FakeTemporal(),  # type: ignore[arg-type]
        runtime=Runtime(),  # type: ignore[arg-type]
        addons=Servers(settings.data_dir),  # type: ignore[arg-type]
    )


def post(browser: TestClient, path: str, fields: dict[str, str]) -> tuple[str, str]:
    """POST a page's form at PATH; the flash it lands on ("ok" or "bad") and the page."""
    token = csrf(browser.get("/apps").text)
    answer = browser.post(path, data={"csrf": token, **fields})
    assert answer.status_code == 303, answer.text
    page = browser.get(answer.headers["location"]).text
    found = re.search(r'<p class="flash (ok|bad)" role="status">([^<]*)</p>', page)
    assert found is not None, "the page shows no flash"
    return found.group(1), page


def settings_of(browser: TestClient, token: str) -> dict[str, Any]:
    found: dict[str, Any] = browser.get("/api/v1/apps/web", headers=auth(token)).json()
    return found


def apps_of(browser: TestClient, token: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = browser.get("/api/v1/apps", headers=auth(token)).json()
    return found


def flash(page: str) -> str:
    found = re.search(r'<p class="flash (?:ok|bad)" role="status">([^<]*)</p>', page)
    assert found is not None
    return found.group(1).replace("&#39;", "'").replace("&gt;", ">").replace("&amp;", "&")


# -- create an app -------------------------------------------------------------------------------


def test_creating_an_app_lands_on_its_page_with_the_git_remote_to_push_to(
    admin: TestClient, admin_token: str
) -> None:
    make_app(admin, admin_token)
    assert "/apps" in forms(admin.get("/apps").text)
    said, page = post(admin, "/apps", {"name": "hello"})
    assert said == "ok"
    assert "<h1>hello" in page
    assert flash(page) == (
        "Created hello → http://hello.localhost:8080. Deploy it from its git repository: "
        "git remote add shipway http://testserver/git/hello.git && git push shipway main"
    )
    assert 'href="/apps/hello"' in admin.get("/apps").text


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "Enter the app's name."),
        ("  ", "Enter the app's name."),
        ("Bad_Name", "app name"),
        ("x" * 41, "app name"),
        ("web", "an app named 'web' already exists"),
    ],
)
def test_a_bad_or_taken_app_name_gets_a_message(
    admin: TestClient, admin_token: str, name: str, message: str
) -> None:
    make_app(admin, admin_token)
    said, page = post(admin, "/apps", {"name": name})
    assert said == "bad" and message in flash(page)
    assert "<h1>Apps</h1>" in page


# -- settings ------------------------------------------------------------------------------------


def test_app_settings_show_their_values_and_change_through_the_api(
    admin: TestClient, admin_token: str, services: Context
) -> None:
    make_app(admin, admin_token)
    page = admin.get("/apps/web").text
    assert "/apps/web/settings" in forms(page)
    assert 'name="health_path" value="/"' in page and 'name="health_timeout" value="30"' in page
    said, page = post(
        admin,
        "/apps/web/settings",
        {"idle_timeout": "15m", "health_path": "/up", "health_timeout": "2m", "plan": "pro"},
    )
    assert said == "ok" and flash(page) == (
        "Saved web's settings: it sleeps after 900 s without a request."
    )
    assert 'name="idle_timeout" value="900"' in page and "after 900 s without a request" in page
    assert 'name="health_path" value="/up"' in page and "within 120 s" in page
    shown = settings_of(admin, admin_token)
    assert (shown["idle_timeout"], shown["health_path"], shown["health_timeout"]) == (
        900,
        "/up",
        120,
    )
    assert (shown["plan"], shown["build_network"]) == ("pro", False)
    assert services.runtime.refreshed  # type: ignore[union-attr]
    said, page = post(admin, "/apps/web/settings", {"idle_timeout": "", "build_network": "on"})
    assert flash(page) == "Saved web's settings: it never sleeps."
    shown = settings_of(admin, admin_token)
    assert (shown["idle_timeout"], shown["health_path"], shown["build_network"]) == (
        None,
        "/up",
        True,
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"idle_timeout": "soon"}, "Sleep after must be seconds (300) or like 90s"),
        ({"idle_timeout": "9" * 5000}, "Sleep after must be seconds"),
        ({"idle_timeout": "5"}, "idle_timeout must be 10-86400 seconds"),
        ({"idle_timeout": "2d"}, "idle_timeout must be 10-86400 seconds"),
        ({"health_timeout": "1.5"}, "Health check timeout must be seconds"),
        ({"health_timeout": "700"}, "health_timeout must be 1-600 seconds"),
        ({"health_path": "up"}, "health_path must be a path starting with '/'"),
        ({"plan": "gold"}, "plan must be one of free, pro"),
    ],
)
def test_bad_settings_get_a_message(
    admin: TestClient, admin_token: str, fields: dict[str, str], message: str
) -> None:
    make_app(admin, admin_token)
    said, page = post(admin, "/apps/web/settings", fields)
    assert said == "bad" and message in flash(page)
    assert settings_of(admin, admin_token)["idle_timeout"] is None


# -- add-ons -------------------------------------------------------------------------------------


def test_an_addon_is_created_backed_up_and_restored_from_the_page(
    admin: TestClient, admin_token: str, store: Store, services: Context
) -> None:
    make_app(admin, admin_token)
    release(store, 1)
    said, page = post(admin, "/apps/web/addons", {"kind": "postgres"})
    assert said == "ok"
    assert flash(page) == "Created web-postgres (postgres) and set DATABASE_URL on web."
    assert '<th scope="row">web-postgres</th>' in page
    assert "/apps/web/addons/web-postgres/backups" in forms(page)
    assert "/apps/web/addons/web-postgres/restore" not in forms(page)  # no backup yet
    assert services.temporal.started  # type: ignore[union-attr]  # the release with its URL
    said, page = post(admin, "/apps/web/addons/web-postgres/backups", {})
    backup = re.fullmatch(r"Backed up web-postgres: (\S+) \(\d+ bytes\)\.", flash(page))
    assert said == "ok" and backup is not None
    assert f"<option>{backup[1]}</option>" in page
    assert "I understand this replaces web-postgres's data" in page
    said, page = post(admin, "/apps/web/addons/web-postgres/restore", {"backup": backup[1]})
    assert said == "bad" and "tick the box to confirm" in flash(page)
    assert services.addons.restored == []  # type: ignore[union-attr]
    said, page = post(
        admin,
        "/apps/web/addons/web-postgres/restore",
        {"backup": backup[1], "confirm": "on"},
    )
    assert said == "ok" and flash(page) == f"Restored web-postgres from {backup[1]}."
    assert [b for _, b in services.addons.restored] == [backup[1]]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("path", "fields", "message"),
    [
        ("/apps/web/addons", {"kind": "mysql"}, "unknown add-on kind 'mysql'"),
        ("/apps/web/addons", {"kind": ""}, "unknown add-on kind ''"),
        ("/apps/web/addons", {"kind": "redis", "name": "Bad Name"}, "add-on name 'Bad Name'"),
        ("/apps/web/addons", {"kind": "redis", "as": "1BAD"}, "1BAD"),
        (
            "/apps/web/addons",
            {"kind": "redis", "name": "cache", "as": "MODE"},
            "MODE is set on web already",
        ),
        ("/apps/web/addons/nope/backups", {}, "no add-on named 'nope'"),
        ("/apps/web/addons/web-redis/restore", {"confirm": "on"}, "Choose a backup"),
        (
            "/apps/web/addons/web-redis/restore",
            {"backup": "20200101T000000Z", "confirm": "on"},
            "web-redis has no backup '20200101T000000Z'",
        ),
        (
            "/apps/web/addons/web-redis/restore",
            {"backup": "../../secret", "confirm": "on"},
            "Not Found",  # no route of the API takes a backup id with a slash
        ),
    ],
)
def test_a_bad_addon_form_gets_a_message(
    admin: TestClient, admin_token: str, path: str, fields: dict[str, str], message: str
) -> None:
    make_app(admin, admin_token)
    assert post(admin, "/apps/web/addons", {"kind": "redis"})[0] == "ok"
    said, page = post(admin, path, fields)
    assert said == "bad" and message in flash(page)


def test_a_second_addon_of_the_same_name_is_refused(admin: TestClient, admin_token: str) -> None:
    make_app(admin, admin_token)
    assert post(admin, "/apps/web/addons", {"kind": "redis"})[0] == "ok"
    said, page = post(admin, "/apps/web/addons", {"kind": "redis", "as": "CACHE_URL"})
    assert said == "bad" and "an add-on named 'web-redis' exists already" in flash(page)


def test_without_addon_servers_the_page_shows_addons_and_refuses_to_make_one(
    admin: TestClient, admin_token: str, services: Context
) -> None:
    make_app(admin, admin_token)
    assert post(admin, "/apps/web/addons", {"kind": "redis"})[0] == "ok"
    services.addons = None
    page = admin.get("/apps/web").text
    assert '<th scope="row">web-redis</th>' in page
    assert "/apps/web/addons/web-redis/backups" not in forms(page)
    said, page = post(admin, "/apps/web/addons", {"kind": "postgres"})
    assert said == "bad" and "add-ons are not available" in flash(page)


# -- repository ----------------------------------------------------------------------------------


def test_connecting_shows_the_webhook_url_and_a_made_secret_once(
    admin: TestClient, admin_token: str
) -> None:
    make_app(admin, admin_token)
    assert "Not connected" in admin.get("/apps/web").text
    said, page = post(
        admin, "/apps/web/connection", {"provider": "github", "repo": "you/web", "secret": ""}
    )
    made = re.fullmatch(
        r"Connected web to github you/web\. Webhook URL: http://testserver/hooks/github/web; "
        r"its secret \(shown once, give it to the host now\): ([0-9a-f]{64})\.",
        flash(page),
    )
    assert said == "ok" and made is not None
    assert "http://testserver/hooks/github/web" in page.split('id="repository"')[1]
    again = admin.get("/apps/web").text
    assert made[1] not in again and "github: you/web" in again
    said, page = post(
        admin,
        "/apps/web/connection",
        {"provider": "gitlab", "repo": "you/web", "secret": "s" * 32, "token": "glpat-x"},
    )
    assert said == "ok" and "s" * 32 not in page and "glpat-x" not in page
    assert flash(page).endswith("Webhook URL: http://testserver/hooks/gitlab/web.")
    assert "<dt>API token</dt><dd>stored</dd>" in page
    said, page = post(admin, "/apps/web/connection/delete", {})
    assert said == "ok" and flash(page) == "Disconnected web from its repository."
    assert "Not connected" in page
    said, page = post(admin, "/apps/web/connection/delete", {})
    assert said == "bad" and "web is not connected to a repository" in flash(page)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"provider": "svn", "repo": "you/web"}, "no git host 'svn'"),
        ({"provider": "github", "repo": ""}, "repo"),
        ({"provider": "github", "repo": "not a repo"}, "not a repo"),
        ({"provider": "gitea", "repo": "you/web"}, "api"),
    ],
)
def test_a_bad_connection_gets_a_message(
    admin: TestClient, admin_token: str, fields: dict[str, str], message: str
) -> None:
    make_app(admin, admin_token)
    said, page = post(admin, "/apps/web/connection", fields)
    assert said == "bad" and message in flash(page)
    assert "Not connected" in page


# -- CSRF and roles ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/apps", *NEW_FORMS])
def test_a_new_form_without_the_csrf_token_is_refused(
    admin: TestClient, admin_token: str, path: str
) -> None:
    make_app(admin, admin_token)
    answer = admin.post(path, data={"name": "other", "kind": "redis", "idle_timeout": "5m"})
    assert answer.status_code == 403
    assert "CSRF" in answer.text
    assert settings_of(admin, admin_token)["idle_timeout"] is None
    assert [a["name"] for a in apps_of(admin, admin_token)] == ["web"]


def test_a_viewer_sees_none_of_the_new_forms_and_is_refused_anyway(
    browser: Browser, admin: TestClient, admin_token: str, store: Store
) -> None:
    make_app(admin, admin_token)
    assert post(admin, "/apps/web/addons", {"kind": "redis"})[0] == "ok"
    assert post(admin, "/apps/web/addons/web-redis/backups", {})[0] == "ok"
    viewer = browser(token_of(store, Role.VIEWER))
    listing, page = viewer.get("/apps").text, viewer.get("/apps/web").text
    assert "/apps" not in forms(listing)
    assert "Create an app" not in listing
    assert [a for a in forms(page) if a.startswith("/apps/")] == []
    assert "<select" not in page and "Back up" not in page and "Restore" not in page
    token = csrf(page)
    for path, fields in [
        ("/apps", {"name": "mine"}),
        ("/apps/web/settings", {"idle_timeout": "5m"}),
        ("/apps/web/addons", {"kind": "postgres"}),
        ("/apps/web/addons/web-redis/backups", {}),
        ("/apps/web/connection", {"provider": "github", "repo": "you/web"}),
    ]:
        answer = viewer.post(path, data={"csrf": token, **fields})
        assert answer.status_code == 303, path
        shown = viewer.get(answer.headers["location"]).text
        assert "flash bad" in shown and "the token has viewer" in shown, path
    assert [a["name"] for a in apps_of(admin, admin_token)] == ["web"]
    assert settings_of(admin, admin_token)["idle_timeout"] is None


def test_a_deployer_may_back_up_but_not_restore_or_connect(
    browser: Browser, admin: TestClient, admin_token: str, store: Store
) -> None:
    make_app(admin, admin_token)
    assert post(admin, "/apps/web/addons", {"kind": "redis"})[0] == "ok"
    deployer = browser(token_of(store, Role.DEPLOYER))
    said, page = post(deployer, "/apps/web/addons/web-redis/backups", {})
    backup = re.fullmatch(r"Backed up web-redis: (\S+) .*", flash(page))
    assert said == "ok" and backup is not None
    shown = forms(page)
    assert "/apps/web/settings" in shown and "/apps/web/addons" in shown
    assert "/apps/web/addons/web-redis/restore" not in shown
    assert "/apps/web/connection" not in shown
    said, page = post(
        deployer, "/apps/web/addons/web-redis/restore", {"backup": backup[1], "confirm": "on"}
    )
    assert said == "bad" and "this needs the owner role" in flash(page)
    said, page = post(deployer, "/apps/web/connection", {"provider": "github", "repo": "a/b"})
    assert said == "bad" and "this needs the owner role" in flash(page)
