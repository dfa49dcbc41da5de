"""The Images page (the list, the base-image form, a remove button per name), the Status page
(what /healthz says, healthy or not), and the webhook deliveries on a connected app's page."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from shipway.accounts.roles import Role
from shipway.context import Context
from shipway.oci.images import Image, Images, Removed
from shipway.oci.podman import APP_LABEL, BUILD_LABEL
from shipway.store import Store
from shipway.store.tables import App, HookDelivery
from tests.web.conftest import Browser, csrf, token_of
from tests.web.test_apps_pages import forms, make_app

SLIM = "docker.io/library/debian:bookworm-slim"
LISTED = [
    Image("sha256:" + "a" * 64, (SLIM,), 80 * 1048576, "2026-01-02T03:04:05+00:00"),
    Image(
        "sha256:" + "b" * 64,
        ("localhost/shipway/web:7",),
        200 * 1048576,
        "2026-01-01T00:00:00+00:00",
        labels={APP_LABEL: "web", BUILD_LABEL: "7"},
        containers=2,
    ),
]


def flash(page: str) -> str:
    found = re.search(r'<p class="flash (?:ok|bad)" role="status">([^<]*)</p>', page)
    assert found is not None, "the page shows no flash"
    return found.group(1).replace("&#39;", "'").replace("&amp;", "&")


def posted(browser: TestClient, path: str, fields: dict[str, str]) -> str:
    """POST a form of the Images page; the page it lands on."""
    answer = browser.post(path, data={"csrf": csrf(browser.get("/images").text), **fields})
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/images"
    return browser.get("/images").text


@pytest.fixture
def listed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Images listed without podman; the references removed are recorded."""
    removed: list[str] = []

    async def listing(self: Images) -> list[Image]:
        return LISTED

    async def remove(self: Images, ref: str, force: bool = False) -> Removed:
        removed.append(ref)
        return Removed(ref, (ref,), ("sha256:" + "a" * 64,))

    monkeypatch.setattr(Images, "listing", listing)
    monkeypatch.setattr(Images, "remove", remove)
    return removed


# -- images --------------------------------------------------------------------------------------


def test_the_images_page_lists_images_with_a_remove_button_each(
    admin: TestClient, listed: list[str]
) -> None:
    page = admin.get("/images")
    assert page.status_code == 200
    assert SLIM in page.text and "aaaaaaaaaaaa" in page.text and "80.0 MiB" in page.text
    assert "web, build 7" in page.text
    assert forms(page.text).count("/images/remove") == 2 and "/images/base" in forms(page.text)
    assert 'aria-label="Remove docker.io/library/debian:bookworm-slim"' in page.text
    assert 'href="/images" aria-current="page"' in page.text


def test_removing_an_image_sends_its_whole_reference(admin: TestClient, listed: list[str]) -> None:
    page = posted(admin, "/images/remove", {"ref": SLIM})
    assert listed == [SLIM]
    assert flash(page) == f"Removed {SLIM} (sha256:{'a' * 64})."


def test_a_viewer_sees_why_and_no_write_controls(
    browser: Browser, store: Store, listed: list[str]
) -> None:
    viewer = browser(token_of(store, Role.VIEWER))
    page = viewer.get("/images")
    assert page.status_code == 200
    assert "The images cannot be listed" in page.text and SLIM not in page.text
    assert forms(page.text) == ["/logout"]
    assert 'href="/images"' not in page.text  # not in the nav either
    answer = viewer.post("/images/remove", data={"csrf": csrf(page.text), "ref": SLIM})
    assert answer.status_code == 303 and listed == []


def test_a_bad_base_image_shows_the_apis_message(admin: TestClient, listed: list[str]) -> None:
    page = posted(admin, "/images/base", {"name": "debian:sid"})
    assert "shipway cannot make the base image 'debian:sid'" in flash(page)
    assert 'class="flash bad"' in page


def test_the_images_forms_need_the_csrf_token(admin: TestClient, listed: list[str]) -> None:
    for path, fields in (
        ("/images/base", {"name": "debian:sid"}),
        ("/images/remove", {"ref": SLIM}),
    ):
        answer = admin.post(path, data=fields)
        assert answer.status_code == 403, path
        assert "CSRF token is missing" in answer.text
    assert listed == []


# -- status --------------------------------------------------------------------------------------


def report(status: str, store_status: str) -> dict[str, Any]:
    return {
        "status": status,
        "components": {
            "store": {
                "status": store_status,
                "backend": "sqlite",
                **({"error": "disk gone"} if store_status != "ok" else {}),
            },
            "nats": {"status": "ok", "address": "nats://127.0.0.1:4222", "embedded": True},
        },
        "sandbox_network": {"status": "isolated", "detail": "isolated"},
    }


@pytest.mark.parametrize(("status", "store_status"), [("ok", "ok"), ("degraded", "down")])
def test_the_status_page_shows_each_part_healthy_or_not(
    admin: TestClient, monkeypatch: pytest.MonkeyPatch, status: str, store_status: str
) -> None:
    async def health(self: Context, deep: bool = False) -> dict[str, Any]:
        return report(status, store_status)

    monkeypatch.setattr(Context, "health", health)
    page = admin.get("/status")
    assert page.status_code == 200
    assert f'<strong class="s-{status}">{status}</strong>' in page.text
    assert '<th scope="row">store</th>' in page.text and "backend: sqlite" in page.text
    assert "nats://127.0.0.1:4222" in page.text and "sandbox network" in page.text
    assert ("disk gone" in page.text) is (store_status == "down")


def test_the_status_page_renders_what_healthz_says_here(browser: Browser, store: Store) -> None:
    page = browser(token_of(store, Role.VIEWER)).get("/status")
    assert page.status_code == 200
    assert '<strong class="s-degraded">degraded</strong>' in page.text  # /healthz said 503
    assert '<th scope="row">temporal</th>' in page.text and 'href="/status"' in page.text


# -- deliveries on an app's page -----------------------------------------------------------------


def test_a_connected_app_shows_its_latest_webhook_deliveries(
    admin: TestClient, admin_token: str, store: Store
) -> None:
    make_app(admin, admin_token)
    assert "Latest webhook deliveries" not in admin.get("/apps/web").text
    answer = admin.post(
        "/apps/web/connection",
        data={"csrf": csrf(admin.get("/apps/web").text), "provider": "github", "repo": "you/web"},
    )
    assert answer.status_code == 303
    assert "No deliveries yet." in admin.get("/apps/web").text
    with store.transaction() as session:
        app_id = session.scalar(select(App.id).where(App.name == "web"))
        assert app_id is not None
        session.add_all(
            [
                HookDelivery(
                    app_id=app_id,
                    provider="github",
                    delivery_id="d-1",
                    event="ping",
                    status="ignored",
                    detail="ping: the webhook reaches shipway",
                ),
                HookDelivery(
                    app_id=app_id,
                    provider="github",
                    delivery_id="d-2",
                    event="push",
                    branch="main",
                    sha="0123456789abcdef",
                    status="failed",
                    detail="the build failed",
                    reported="failure",
                ),
            ]
        )
    section = admin.get("/apps/web").text.split('id="repository"')[1].split("<h2")[0]
    rows = section.split("<tbody>")[1].split("<tr>")[1:]
    assert len(rows) == 2
    assert "push" in rows[0] and "main" in rows[0] and "0123456" in rows[0]
    assert "failed" in rows[0] and "the build failed" in rows[0] and "failure" in rows[0]
    assert "ping: the webhook reaches shipway" in rows[1]
