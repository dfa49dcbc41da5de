"""POST /apps/APP/pushes: the server archives a pushed commit's tree from the app's repository
itself. Bad input gets a clear 4xx and records nothing."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from shipway.gitserver import repos
from shipway.settings import Settings
from shipway.store import Store
from shipway.store.tables import App, Deployment
from tests.api.conftest import Node, app_id
from tests.helpers import auth, commit, git, make_token

URL = "/api/v1/apps/web/pushes"


@pytest.fixture
def pushed(node: Node, store: Store, settings: Settings, tmp_path: Path) -> str:
    """A commit pushed to app web's repository on the server; its sha."""
    with store.transaction() as session:
        organization = session.get(App, app_id(store)).organization_id  # type: ignore[union-attr]
    bare = repos.repo_path(settings.data_dir, organization, "web")
    bare.parent.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    work = tmp_path / "work"
    git(tmp_path, "init", "-q", "-b", "main", str(work))
    sha = commit(work, {"index.html": "hello", "static.json": "{}"})
    git(work, "push", "-q", str(bare), "main")
    return sha


def deployments(store: Store) -> int:
    with store.transaction() as session:
        return session.scalar(select(func.count()).select_from(Deployment)) or 0


def test_a_pushed_commit_is_archived_by_the_server_and_deployed(
    node: Node, store: Store, settings: Settings, pushed: str
) -> None:
    answer = node.client.post(URL, json={"ref": "refs/heads/main", "sha": pushed})
    assert answer.status_code == 202, answer.text
    started = answer.json()
    assert started["environment"] == "production"
    assert node.temporal.started == ["deploy/web/production"]
    with store.transaction() as session:
        deployment = session.get(Deployment, started["id"])
        assert deployment is not None
        assert (deployment.source, deployment.commit_sha) == ("git", pushed)
        # As git recorded the commit (tests.helpers.GIT_ENV names its author).
        assert deployment.author == "t <t@example.com>" and deployment.committed_at is not None
    source = settings.data_dir / "sources" / f"{started['build_id']}.tar"
    with tarfile.open(fileobj=io.BytesIO(source.read_bytes())) as tar:
        assert {m.name for m in tar.getmembers() if m.isfile()} == {"index.html", "static.json"}


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"ref": "refs/heads/main", "sha": "abc"}, 422, "sha"),
        ({"ref": "main", "sha": "0" * 40}, 422, "ref"),
        ({"ref": "refs/heads/main", "sha": "1" * 40}, 422, "cannot archive commit 1111111"),
        (
            {"ref": "refs/heads/main", "sha": "1" * 40, "quarantine": "../../../etc"},
            422,
            "quarantine",
        ),
        (
            {"ref": "refs/heads/main", "sha": "1" * 40, "quarantine": "tmp_objdir-incoming-x"},
            422,
            "no push is being received into 'tmp_objdir-incoming-x'",
        ),
        ({"ref": "refs/heads/main", "sha": "1" * 40, "then": "more"}, 422, "then"),
        ([], 422, "valid dictionary"),
    ],
)
def test_bad_pushes_get_a_clear_4xx_and_record_nothing(
    node: Node, store: Store, pushed: str, body: Any, status: int, message: str
) -> None:
    answer = node.client.post(URL, json=body)
    assert answer.status_code == status, answer.text
    assert message in answer.text, answer.json()
    assert deployments(store) == 0 and node.temporal.started == []


def test_viewers_cannot_push_and_other_tenants_see_nothing(
    node: Node, store: Store, pushed: str
) -> None:
    body = {"ref": "refs/heads/main", "sha": pushed}
    viewer = auth(make_token(node.client, "viewer"))
    refused = node.client.post(URL, json=body, headers=viewer)
    assert refused.status_code == 403 and "deployer" in refused.json()["error"]["message"]
    other = node.client.post("/api/v1/orgs", json={"name": "globex"}).json()["owner_token"]
    assert node.client.post(URL, json=body, headers=auth(other)).status_code == 404
    assert node.client.post("/api/v1/apps/nope/pushes", json=body).status_code == 404
    assert deployments(store) == 0 and node.temporal.started == []
