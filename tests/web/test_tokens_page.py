"""The tokens page (list, create with the secret shown once, revoke) and the organizations page
(the browser's organizations, the platform's, and creating one); what each role sees and what
bad input gets."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from shipway.accounts.roles import Role
from shipway.store import Store
from shipway.store.tables import ApiToken, Organization
from shipway.web.viewer import FLASH
from tests.web.conftest import Browser, csrf, token_of


def post(browser: TestClient, page: str, action: str, **fields: str) -> TestClient:
    token = csrf(browser.get(page).text)
    return browser.post(action, data={"csrf": token, **fields})  # type: ignore[return-value]


def tokens_named(store: Store, name: str) -> list[ApiToken]:
    with store.transaction() as session:
        found = session.scalars(select(ApiToken).where(ApiToken.name == name)).all()
        session.expunge_all()
        return list(found)


def whoami(browser: TestClient, secret: str) -> int:
    with TestClient(browser.app, raise_server_exceptions=False) as api:
        return api.get("/api/v1/whoami", headers={"Authorization": f"Bearer {secret}"}).status_code


@pytest.mark.parametrize("path", ["/tokens", "/organizations"])
def test_the_pages_send_a_browser_without_a_session_to_log_in(browser: Browser, path: str) -> None:
    answer = browser(None).get(path)
    assert answer.status_code == 303 and answer.headers["location"] == f"/login?next={path}"


def test_an_owner_sees_the_tokens_and_a_labelled_form(admin: TestClient, store: Store) -> None:
    token_of(store, Role.VIEWER)
    page = admin.get("/tokens").text
    assert 'href="/tokens" aria-current="page"' in page
    rows = page.split("<tbody>")[1].split("</tbody>")[0]
    assert ">test-viewer</th>" in rows and "<td>viewer</td>" in rows and "swt_" in rows
    assert 'action="/tokens"' in page and "<label>Name <input" in page
    assert "<label>Role" in page and "<label>Expires after" in page
    assert re.search(r'action="/tokens/\d+/revoke"', page)


def test_creating_a_token_shows_its_secret_once_on_the_answer_only(
    admin: TestClient, store: Store
) -> None:
    answer = post(admin, "/tokens", "/tokens", name="ci", role="viewer", expires="30d")
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    secret = re.search(
        r'id="made-secret" class="mono" readonly size="60" value="([^"]+)"', answer.text
    )
    assert secret is not None and secret.group(1).startswith("swt_")
    assert "Token ci (viewer) created" in answer.text
    assert secret.group(1) not in answer.headers.get("set-cookie", "")
    assert whoami(admin, secret.group(1)) == 200
    [made] = tokens_named(store, "ci")
    assert made.role == "viewer" and made.expires_at is not None
    expires = made.expires_at.replace(tzinfo=made.expires_at.tzinfo or UTC)
    assert abs(expires - datetime.now(UTC) - timedelta(days=30)) < timedelta(minutes=5)
    again = admin.get("/tokens").text
    assert ">ci</th>" in again and secret.group(1) not in again
    assert FLASH not in admin.cookies


def test_a_token_without_an_expiry_never_expires(admin: TestClient, store: Store) -> None:
    assert post(admin, "/tokens", "/tokens", name="deploy", role="deployer").status_code == 200
    [made] = tokens_named(store, "deploy")
    assert made.role == "deployer" and made.expires_at is None


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"name": "  "}, 422, "Enter the token&#39;s name."),
        ({"expires": "30x"}, 422, "Expires must look like 90s, 15m, 12h, 30d or 2w"),
        ({"expires": "4000d"}, 422, "between 1 second and 3650 days"),
        ({"role": "root"}, 422, "role"),
    ],
)
def test_bad_input_to_the_token_form_is_shown_on_it(
    admin: TestClient, store: Store, fields: dict[str, str], status: int, message: str
) -> None:
    sent = {"name": "ci", "role": "viewer", "expires": "", **fields}
    answer = post(admin, "/tokens", "/tokens", **sent)
    assert answer.status_code == status, answer.text
    assert 'id="token-problem"' in answer.text and message in answer.text
    assert "made-secret" not in answer.text
    assert tokens_named(store, "ci") == []


def test_revoking_a_token_stops_it_working(admin: TestClient, store: Store) -> None:
    secret = token_of(store, Role.DEPLOYER)
    [row] = tokens_named(store, "test-deployer")
    done = post(admin, "/tokens", f"/tokens/{row.id}/revoke")
    assert done.status_code == 303 and done.headers["location"] == "/tokens"
    page = admin.get("/tokens").text
    assert "flash ok" in page and "Revoked the token test-deployer" in page
    assert f'action="/tokens/{row.id}/revoke"' not in page
    assert whoami(admin, secret) == 401
    [revoked] = tokens_named(store, "test-deployer")
    assert revoked.revoked_at is not None


@pytest.mark.parametrize("token_id", ["999999", "x", ".."])
def test_revoking_an_unknown_token_is_a_flash(admin: TestClient, token_id: str) -> None:
    done = post(admin, "/tokens", f"/tokens/{token_id}/revoke")
    assert done.status_code in (303, 404), done.text
    if done.status_code == 303:
        assert "flash bad" in admin.get(done.headers["location"]).text


def test_the_token_forms_need_the_csrf_token(admin: TestClient, store: Store) -> None:
    token_of(store, Role.VIEWER)
    [row] = tokens_named(store, "test-viewer")
    created = admin.post("/tokens", data={"name": "ci", "role": "viewer"})
    assert created.status_code == 403 and "CSRF" in created.text
    revoked = admin.post(f"/tokens/{row.id}/revoke")
    assert revoked.status_code == 403
    assert (
        tokens_named(store, "ci") == [] and tokens_named(store, "test-viewer")[0].revoked_at is None
    )


@pytest.mark.parametrize("role", [Role.VIEWER, Role.DEPLOYER])
def test_a_non_owner_sees_no_tokens_and_is_refused_anyway(
    browser: Browser, store: Store, role: Role
) -> None:
    user = browser(token_of(store, role))
    page = user.get("/tokens")
    assert page.status_code == 200
    assert "owner role" in page.text and "<table" not in page.text
    assert 'action="/tokens' not in page.text and 'href="/tokens"' not in page.text
    [row] = tokens_named(store, f"test-{role}")
    for action in ("/tokens", f"/tokens/{row.id}/revoke"):
        refused = post(user, "/organizations", action, name="mine", role="viewer")
        assert refused.status_code == 303 and refused.headers["location"] == "/tokens"
        assert "flash bad" in user.get("/tokens").text
    assert (
        tokens_named(store, "mine") == []
        and tokens_named(store, f"test-{role}")[0].revoked_at is None
    )


def organization(store: Store, name: str) -> Organization | None:
    with store.transaction() as session:
        return session.scalar(select(Organization).where(Organization.name == name))


def test_the_platform_owner_creates_an_organization_and_adds_it_to_the_browser(
    admin: TestClient, store: Store
) -> None:
    page = admin.get("/organizations").text
    assert ">default</th>" in page and "current" in page
    assert 'action="/organizations"' in page and "<label>Name <input" in page
    answer = post(admin, "/organizations", "/organizations", name="acme")
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    assert "Organization acme created" in answer.text and organization(store, "acme") is not None
    secret = re.search(
        r'id="made-secret" class="mono" readonly size="60" value="([^"]+)"', answer.text
    )
    assert secret is not None and whoami(admin, secret.group(1)) == 200
    assert '<th scope="row">acme</th>' in answer.text.split('id="platform"')[1]
    added = admin.post("/login", data={"token": secret.group(1), "next": "/apps"})
    assert added.status_code == 303
    switched = admin.get("/organizations").text
    assert "acme (owner)" in switched and "default (owner)" in switched


@pytest.mark.parametrize(
    ("name", "status", "message"),
    [
        ("default", 409, "already exists"),
        ("Not_A_Label", 422, "organization name"),
        ("   ", 422, "Enter the organization&#39;s name."),
    ],
)
def test_bad_organizations_are_shown_on_the_form(
    admin: TestClient, name: str, status: int, message: str
) -> None:
    answer = post(admin, "/organizations", "/organizations", name=name)
    assert answer.status_code == status, answer.text
    assert 'id="org-problem"' in answer.text and message in answer.text
    assert "made-secret" not in answer.text


def test_creating_an_organization_needs_the_csrf_token(admin: TestClient, store: Store) -> None:
    answer = admin.post("/organizations", data={"name": "acme"})
    assert answer.status_code == 403 and organization(store, "acme") is None


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OWNER])
def test_only_the_platform_owner_can_create_organizations(
    browser: Browser, admin: TestClient, store: Store, role: Role
) -> None:
    post(admin, "/organizations", "/organizations", name="acme")
    user = browser(token_of(store, role, "acme"))
    page = user.get("/organizations").text
    assert ">acme</th>" in page and 'id="platform"' not in page
    assert 'action="/organizations"' not in page
    refused = post(user, "/organizations", "/organizations", name="globex")
    assert refused.status_code == 303
    shown = user.get(refused.headers["location"]).text
    assert "flash bad" in shown and "platform organization" in shown
    assert organization(store, "globex") is None
