"""The git route inside the real API app, on SQLite and PostgreSQL: who gets what answer."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shipway import native
from shipway.gitserver.pktline import FLUSH, pkt
from tests.helpers import make_token

INFO = "/git/{app}.git/info/refs?service={service}"


@pytest.fixture
def app_name(api: TestClient) -> str:
    response = api.post("/api/v1/apps", json={"name": "routed"})
    assert response.status_code == 201, response.text
    return "routed"


def basic(token: str) -> tuple[str, str]:
    return ("anyone", token)


def test_the_owner_gets_a_smart_advertisement(
    api: TestClient, admin_token: str, app_name: str
) -> None:
    for service in ("git-upload-pack", "git-receive-pack"):
        response = api.get(
            INFO.format(app=app_name, service=service),
            auth=basic(admin_token),
            headers={"Authorization": ""},
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == f"application/x-{service}-advertisement"
        assert response.content.startswith(pkt(f"# service={service}\n") + FLUSH)


def test_no_or_bad_credentials_get_a_basic_challenge(api: TestClient, app_name: str) -> None:
    url = INFO.format(app=app_name, service="git-receive-pack")
    for headers in ({"Authorization": ""}, {"Authorization": "Basic eDpzd3RfYm9ndXM="}):
        response = api.get(url, headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Basic realm="shipway"'
        assert response.headers["content-type"].startswith("text/plain")


def test_a_bearer_token_works_too(api: TestClient, app_name: str) -> None:
    response = api.get(INFO.format(app=app_name, service="git-upload-pack"))
    assert response.status_code == 200


def test_a_viewer_may_fetch_but_not_push(api: TestClient, app_name: str) -> None:
    viewer = make_token(api, "viewer")
    fetch = api.get(
        INFO.format(app=app_name, service="git-upload-pack"),
        auth=basic(viewer),
        headers={"Authorization": ""},
    )
    assert fetch.status_code == 200
    headers = {"Authorization": f"Bearer {viewer}"}
    advertised = api.get(INFO.format(app=app_name, service="git-receive-pack"), headers=headers)
    posted = api.post(f"/git/{app_name}.git/git-receive-pack", content=b"0000", headers=headers)
    for response in (advertised, posted):
        assert response.status_code == 403
        assert response.text == "a viewer token can fetch but not push\n"


def test_an_unknown_app_is_a_404_that_says_how_to_create_it(api: TestClient) -> None:
    response = api.get(INFO.format(app="ghost", service="git-receive-pack"))
    assert response.status_code == 404
    assert response.text == "no app named 'ghost'; create it with: shipway apps create ghost\n"


def test_without_a_c_compiler_the_push_is_refused_saying_what_to_install(
    api: TestClient,
    admin_token: str,
    app_name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The hook is a C program built on first use; where it cannot be, git hears why."""
    path = tmp_path / "bin"  # git, but no cc
    path.mkdir()
    git = shutil.which("git")
    assert git is not None
    (path / "git").symlink_to(git)
    monkeypatch.setenv("PATH", str(path))
    monkeypatch.setattr(
        native, "program", lambda source: native._compile(source, tmp_path / source.stem)
    )
    response = api.get(
        INFO.format(app=app_name, service="git-receive-pack"),
        auth=basic(admin_token),
        headers={"Authorization": ""},
    )
    assert response.status_code == 503
    assert "no C compiler (cc); install gcc and libc6-dev" in response.text


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "info/refs"),
        ("GET", "info/refs?service=git-upload-archive"),
        ("GET", "HEAD"),
        ("GET", "objects/info/packs"),
        ("GET", "git-receive-pack"),
        ("POST", "info/refs?service=git-upload-pack"),
    ],
)
def test_only_smart_http_is_served(api: TestClient, app_name: str, method: str, path: str) -> None:
    response = api.request(method, f"/git/{app_name}.git/{path}")
    assert response.status_code in (404, 405)
