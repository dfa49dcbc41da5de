"""Logging in to the dashboard with a token, the session cookie, CSRF and origin checks, and
switching organizations."""

from __future__ import annotations

import re

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from shipway.accounts.roles import Role
from shipway.store import Store
from shipway.web import session
from tests.helpers import every_route
from tests.web.conftest import Browser, csrf, token_of


def dashboard_pages(client: TestClient) -> list[str]:
    """Every page the dashboard serves to GET, its path parameters filled in."""
    app = client.app.routes.app  # type: ignore[attr-defined]  # inside the body limit
    return [
        re.sub(r"\{[^}]+\}", "1", route.path)
        for route in every_route(app.router.routes)
        if isinstance(route, APIRoute)
        and route.endpoint.__module__.startswith("shipway.web.")
        and "GET" in route.methods
        and route.path != "/login"
    ]


def test_pages_send_a_browser_without_a_session_to_log_in(browser: Browser) -> None:
    anonymous = browser(None)
    pages = dashboard_pages(anonymous)
    assert {"/", "/apps", "/functions", "/activity", "/fleet", "/delivery"} <= set(pages)
    for path in pages:
        answer = anonymous.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/login?next="), path
    assert anonymous.get("/login").status_code == 200


def test_logging_in_sets_a_sealed_http_only_same_site_cookie(
    browser: Browser, admin_token: str
) -> None:
    user = browser(None)
    answer = user.post("/login", data={"token": admin_token, "next": "/apps"})
    assert answer.status_code == 303 and answer.headers["location"] == "/apps"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{session.COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert admin_token not in cookie
    assert user.get("/apps").status_code == 200


def test_a_bad_or_missing_token_is_refused_on_the_login_page(browser: Browser) -> None:
    user = browser(None)
    bad = user.post("/login", data={"token": "swt_nope", "next": "/apps"})
    assert bad.status_code == 401
    assert "set-cookie" not in bad.headers
    assert "Log in to shipway" in bad.text
    empty = user.post("/login", data={"token": "  "})
    assert empty.status_code == 422 and "Enter an API token" in empty.text


def test_login_never_redirects_off_the_site(browser: Browser, admin_token: str) -> None:
    user = browser(None)
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        answer = user.post("/login", data={"token": admin_token, "next": target})
        assert answer.headers["location"] == "/apps", target


def test_a_form_without_the_sessions_csrf_token_is_refused(admin: TestClient) -> None:
    missing = admin.post("/apps/web/config", data={"key": "A", "value": "1"})
    assert missing.status_code == 403 and "CSRF" in missing.text
    stale = admin.post("/logout", data={"csrf": "stale"})
    assert stale.status_code == 403
    assert admin.get("/apps").status_code == 200  # still logged in


def test_a_form_from_another_origin_is_refused(admin: TestClient) -> None:
    token = csrf(admin.get("/apps").text)
    answer = admin.post(
        "/logout", data={"csrf": token}, headers={"Origin": "http://evil.localhost"}
    )
    assert answer.status_code == 403 and "evil.localhost" in answer.text


def test_an_oversized_form_is_refused(admin: TestClient) -> None:
    token = csrf(admin.get("/apps").text)
    answer = admin.post("/logout", data={"csrf": token, "pad": "x" * 300_000})
    assert answer.status_code == 413


def test_logging_out_ends_the_session(admin: TestClient) -> None:
    token = csrf(admin.get("/apps").text)
    answer = admin.post("/logout", data={"csrf": token})
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    admin.cookies.clear()
    admin.cookies.update({k: v for k, v in answer.cookies.items() if v})
    assert admin.get("/apps").status_code == 303


def test_a_revoked_token_sends_its_browser_back_to_log_in(
    browser: Browser, store: Store, admin_token: str
) -> None:
    secret = token_of(store, Role.DEPLOYER)
    user = browser(secret)
    assert user.get("/apps").status_code == 200
    with TestClient(user.app, raise_server_exceptions=False) as api:
        api.headers["Authorization"] = f"Bearer {admin_token}"
        listed = api.get("/api/v1/tokens").json()
        mine = next(t for t in listed if t["name"] == "test-deployer")
        assert api.delete(f"/api/v1/tokens/{mine['id']}").status_code in (200, 204)
    assert user.get("/apps").status_code == 303


def test_a_second_organizations_token_adds_a_switcher(browser: Browser, admin_token: str) -> None:
    user = browser(admin_token)
    with TestClient(user.app, raise_server_exceptions=False) as api:
        api.headers["Authorization"] = f"Bearer {admin_token}"
        created = api.post("/api/v1/orgs", json={"name": "acme"})
        assert created.status_code == 201, created.text
        acme_token = created.json()["owner_token"]
    assert 'name="organization"' not in user.get("/apps").text
    assert user.post("/login", data={"token": acme_token, "next": "/apps"}).status_code == 303
    page = user.get("/apps").text
    assert 'name="organization"' in page and "acme (owner)" in page
    switched = user.post("/switch", data={"csrf": csrf(page), "organization": "default"})
    assert switched.status_code == 303
    assert '<option value="default" selected>' in user.get("/apps").text
    unknown = user.post("/switch", data={"csrf": csrf(page), "organization": "nope"})
    assert unknown.status_code == 303
    assert "holds no token" in user.get("/apps").text
