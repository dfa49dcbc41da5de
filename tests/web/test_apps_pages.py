"""The apps list and an app's page: what they show, the forms they offer by role, and what a
refused or bad form gets."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from shipway.accounts.roles import Role
from shipway.logs import lines
from shipway.store import Store
from shipway.store.tables import Build
from tests.api.conftest import app_id, release
from tests.web.conftest import Browser, csrf, token_of

WRITE_FORMS = ("/rollback", "/config", "/config/unset", "/scale", "/delete")


def make_app(admin: TestClient, admin_token: str, name: str = "web") -> None:
    with TestClient(admin.app, raise_server_exceptions=False) as api:
        api.headers["Authorization"] = f"Bearer {admin_token}"
        assert api.post("/api/v1/apps", json={"name": name}).status_code == 201
        changed = api.patch(
            f"/api/v1/apps/{name}/env",
            json={"set": {"API_KEY": "hunter2-secret"}, "secret": True},
        )
        assert changed.status_code == 200, changed.text
        assert api.patch(f"/api/v1/apps/{name}/env", json={"set": {"MODE": "fast"}}).is_success


def forms(page: str) -> list[str]:
    return re.findall(r'<form[^>]*action="([^"]+)"', page)


def test_the_apps_list_shows_each_app_with_its_release_and_url(
    admin: TestClient, admin_token: str, store: Store
) -> None:
    make_app(admin, admin_token)
    release(store, 1)
    page = admin.get("/apps")
    assert page.status_code == 200
    assert 'href="/apps/web"' in page.text
    assert "v1" in page.text and "http://web.localhost:8080" in page.text
    rows = admin.get("/apps", headers={"HX-Request": "true"})
    assert rows.status_code == 200 and "<html" not in rows.text and "/apps/web" in rows.text


def test_an_apps_page_shows_its_deployments_releases_and_config_with_secrets_masked(
    admin: TestClient, admin_token: str, store: Store
) -> None:
    make_app(admin, admin_token)
    release(store, 1)
    release(store, 2)
    page = admin.get("/apps/web").text
    assert "hunter2-secret" not in page
    assert "API_KEY" in page and "***" in page and "fast" in page
    assert "Roll back to v1" in page and "Roll back to v2" not in page  # v2 is live
    assert page.count('class="pill s-live"') >= 2  # v2 in releases and its deployment
    assert all(any(a.endswith(w) for a in forms(page)) for w in ("/rollback", "/config", "/scale"))


def test_a_viewer_sees_no_write_controls_and_is_refused_anyway(
    browser: Browser, admin: TestClient, admin_token: str, store: Store
) -> None:
    make_app(admin, admin_token)
    release(store, 1)
    release(store, 2)
    viewer = browser(token_of(store, Role.VIEWER))
    page = viewer.get("/apps/web").text
    assert "Roll back" not in page
    assert [a for a in forms(page) if a.startswith("/apps/")] == []
    assert "<input" not in page.split('id="config"')[1].split('id="log"')[0]
    answer = viewer.post("/apps/web/rollback", data={"csrf": csrf(page), "to": "1"})
    assert answer.status_code == 303
    shown = viewer.get(answer.headers["location"]).text
    assert "deployer role" in shown and "flash bad" in shown
    refused = viewer.post("/apps/web/config", data={"csrf": csrf(page), "key": "X", "value": "1"})
    assert "deployer role" in viewer.get(refused.headers["location"]).text


def test_setting_and_removing_config_from_the_page(
    admin: TestClient, admin_token: str, store: Store
) -> None:
    make_app(admin, admin_token)
    token = csrf(admin.get("/apps/web").text)
    done = admin.post(
        "/apps/web/config",
        data={"csrf": token, "key": "DB_PASS", "value": "s3cr3t", "secret": "on"},
    )
    assert done.status_code == 303
    page = admin.get(done.headers["location"]).text
    assert "Set DB_PASS" in page and "s3cr3t" not in page and "DB_PASS" in page
    gone = admin.post("/apps/web/config/unset", data={"csrf": token, "key": "DB_PASS"})
    assert "DB_PASS" not in admin.get(gone.headers["location"]).text.split('id="config"')[1]


@pytest.mark.parametrize(
    ("path", "fields", "message"),
    [
        ("/apps/web/config", {"key": "", "value": "x"}, "Enter the config var"),
        ("/apps/web/config", {"key": "1BAD", "value": "x"}, "1BAD"),
        ("/apps/web/rollback", {"to": "v1"}, "is not a release version"),
        ("/apps/web/rollback", {"to": "99"}, "99"),
        ("/apps/web/scale", {"count.web": "many"}, "many"),
        ("/apps/web/scale", {"count.web": "500"}, "500"),
        ("/apps/web/previews/nope/delete", {}, "nope"),
    ],
)
def test_a_bad_form_is_answered_with_a_message_never_a_500(
    admin: TestClient,
    admin_token: str,
    store: Store,
    path: str,
    fields: dict[str, str],
    message: str,
) -> None:
    make_app(admin, admin_token)
    release(store, 1)
    token = csrf(admin.get("/apps/web").text)
    answer = admin.post(path, data={"csrf": token, **fields})
    assert answer.status_code == 303, answer.text
    shown = admin.get(answer.headers["location"]).text
    assert "flash bad" in shown and message in shown


def test_unknown_apps_and_builds_get_a_404_page(admin: TestClient, admin_token: str) -> None:
    make_app(admin, admin_token)
    for path in (
        "/apps/nope",
        "/apps/nope/log/stream",
        "/apps/web/builds/999",
        "/apps/web/builds/0",
    ):
        answer = admin.get(path)
        assert answer.status_code in (404, 422), path
        assert "<html" in answer.text
    assert admin.get("/apps/web/builds/x").status_code == 422


def test_a_build_page_shows_its_log_coloured_escaped_and_marks_the_first_error(
    admin: TestClient, admin_token: str, store: Store
) -> None:
    make_app(admin, admin_token)
    with store.transaction() as session:
        build = Build(app_id=app_id(store), environment_id=1, status="failed", stack="python")
        session.add(build)
        session.flush()
        lines.insert(
            session,
            "build",
            build.id,
            [
                (1, "\x1b[1;32m-----> Installing\x1b[0m"),
                (2, "<script>x</script>"),
                (3, "ERROR: boom"),
            ],
        )
        build_id = build.id
    page = admin.get(f"/apps/web/builds/{build_id}").text
    assert '<span class="b fg2">-----&gt; Installing</span>' in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page and "<script>x" not in page
    assert 'href="#build-log-3"' in page and 'class="l err" id="build-log-3"' in page
    assert "data-stream" not in page  # a finished build's log is not followed
