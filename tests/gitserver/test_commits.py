"""A pushed commit's author and commit time reach its deployment: one real `git push` through
the real git route, pre-receive hook and pushes route (Temporal a stand-in), and git's output
read as it may come."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from shipway.accounts import tokens
from shipway.accounts.organizations import bootstrap
from shipway.api.app import create_app
from shipway.apps import service as apps
from shipway.context import Context
from shipway.deploys import service
from shipway.deploys.lifecycle import BuildStatus, DeploymentStatus
from shipway.gitserver import commits
from shipway.settings import Settings
from shipway.store import Store
from shipway.store.tables import Build, Deployment
from tests.api.conftest import FakeTemporal
from tests.gitserver.conftest import _serve
from tests.helpers import GIT_ENV, git, migrated_store

#: Seconds the push may take at most; only a safety net.
PUSH_TIMEOUT = 120


@dataclass
class Server:
    store: Store
    port: int
    token: str


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """The real API with its git route on a real port; Temporal starts nothing."""
    store = migrated_store(f"sqlite:///{tmp_path / 'shipway.db'}")
    with store.transaction() as session:
        token = bootstrap(session, None)
        assert token is not None
        apps.create(session, tokens.authenticate(session, token), "web")
    settings = Settings.load({"data_dir": tmp_path / "data"}, env={})
    services = Context(settings, store, temporal=FakeTemporal())  # type: ignore[arg-type]
    uvicorn, thread, port = _serve(create_app(services))
    yield Server(store, port, token)
    uvicorn.should_exit = True
    thread.join(timeout=10)
    store.close()


def _deployed(store: Store, stop: threading.Event) -> Deployment | None:
    """The push's deployment once the hook has asked for it, made live as DeployWorkflow
    would, so that the push ends well; None if STOP is set first."""
    while not stop.wait(0.05):
        with store.transaction() as session:
            deployment = session.scalar(select(Deployment))
            if deployment is None:
                continue
            build = session.get(Build, deployment.build_id)
            assert build is not None
            service.move_build(session, build, BuildStatus.BUILDING)
            service.move_build(session, build, BuildStatus.SUCCEEDED)
            for status in (DeploymentStatus.BUILDING, DeploymentStatus.DEPLOYING):
                service.move_deployment(session, deployment, status)
            service.move_deployment(session, deployment, DeploymentStatus.LIVE)
            return deployment
    return None


def test_a_push_records_the_commits_author_and_commit_time(server: Server, tmp_path: Path) -> None:
    work = tmp_path / "work"
    git(tmp_path, "init", "-q", "-b", "main", str(work))
    (work / "index.html").write_text("<h1>hello</h1>")
    git(work, "add", "-A")
    written = {
        **os.environ,
        **GIT_ENV,
        "GIT_AUTHOR_NAME": "Grace Hopper",
        "GIT_AUTHOR_EMAIL": "grace@example.com",
        "GIT_COMMITTER_DATE": "2026-03-01T10:00:00+02:00",
    }
    subprocess.run(["git", "-C", str(work), "commit", "-qm", "first"], env=written, check=True)
    sha = git(work, "rev-parse", "HEAD").stdout.strip()
    remote = f"http://shipway:{server.token}@127.0.0.1:{server.port}/git/web.git"

    stop = threading.Event()
    found: list[Deployment | None] = []
    mover = threading.Thread(target=lambda: found.append(_deployed(server.store, stop)))
    mover.start()
    try:
        pushed = subprocess.run(
            ["git", "-C", str(work), "push", remote, "main"],
            env={**os.environ, **GIT_ENV},
            capture_output=True,
            text=True,
            timeout=PUSH_TIMEOUT,
        )
    finally:
        stop.set()
        mover.join()

    assert pushed.returncode == 0, pushed.stderr
    [deployment] = found
    assert deployment is not None
    assert (deployment.source, deployment.commit_sha) == ("git", sha)
    assert deployment.author == "Grace Hopper <grace@example.com>"
    assert deployment.committed_at == datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    assert deployment.actor is not None and deployment.actor.startswith("token:")


@pytest.mark.parametrize(
    ("shown", "author", "committed_at"),
    [
        ("Ada\0ada@example.com\x002026-01-02T03:04:05-01:00\n", "Ada <ada@example.com>", "04:04"),
        ("Ada\0\x002026-01-02T03:04:05Z\n", "Ada", "03:04"),
        ("\0\x002026-01-02T03:04:05Z\n", None, "03:04"),
        ("Ada\0ada@example.com\0not a date\n", "Ada <ada@example.com>", None),
        ("A" * 300 + "\0a@b\0\n", "A" * 255, None),
    ],
)
def test_gits_description_of_a_commit_is_read_as_it_may_come(
    shown: str, author: str | None, committed_at: str | None
) -> None:
    commit = commits.parse(shown)
    assert commit is not None and commit.author == author
    at = commit.committed_at
    assert (at.strftime("%H:%M") if at else None) == committed_at
    assert at is None or at.tzinfo is UTC


@pytest.mark.parametrize("shown", ["", "\n", "Ada\0ada@example.com\n", "\0\0\n"])
def test_what_is_not_a_description_gives_none(shown: str) -> None:
    assert commits.parse(shown) is None


def test_a_commit_git_cannot_find_is_described_as_none(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "--bare", str(tmp_path / "repo.git"))
    assert commits.describe(tmp_path / "repo.git", "1" * 40) is None
    assert commits.describe(tmp_path / "repo.git", "1" * 40, "incoming-gone") is None
