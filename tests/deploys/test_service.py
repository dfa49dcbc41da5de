"""Deployments in the store: environments, superseding, the one place transitions happen."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from shipway.accounts.roles import Principal, Role
from shipway.apps import service as apps
from shipway.deploys import service
from shipway.deploys.lifecycle import BuildStatus, DeploymentStatus
from shipway.errors import Forbidden, NotFound, ValidationError
from shipway.store import Store
from shipway.store.tables import AuditEntry, Build, Deployment, Organization, Release


@pytest.fixture
def owner(store: Store) -> Principal:
    with store.transaction() as session:
        org = Organization(name="acme", is_admin=True)
        session.add(org)
        session.flush()
        principal = Principal(organization_id=org.id, role=Role.OWNER, actor="user:o")
        apps.create(session, principal, "web")
        return principal


@pytest.mark.parametrize(
    ("ref", "env"),
    [
        ("refs/heads/main", "production"),
        ("refs/heads/master", "production"),
        (None, "production"),
        ("refs/heads/Feature/New_UI", "feature-new-ui"),
        ("refs/heads/" + "x" * 60, "x" * 40),
    ],
)
def test_environment_names(ref: str | None, env: str) -> None:
    assert service.environment_name(ref)[0] == env


def test_a_branch_without_letters_is_refused() -> None:
    with pytest.raises(ValidationError):
        service.environment_name("refs/heads/---")


def test_request_queues_a_build_and_a_deployment(store: Store, owner: Principal) -> None:
    with store.transaction() as session:
        made = service.request(
            session, owner, "web", ref="refs/heads/main", sha="a" * 40, source="git"
        )
        assert made.deployment.workflow_id == "deploy/web/production"
        assert made.deployment.status == "queued" and made.build.status == "queued"
    with store.transaction() as session:
        actions = session.scalars(select(AuditEntry.action)).all()
        assert "push" in actions


def test_a_newer_push_supersedes_the_running_one(store: Store, owner: Principal) -> None:
    with store.transaction() as session:
        first = service.request(
            session, owner, "web", ref="refs/heads/main", sha=None, source="git"
        )
        service.move_deployment(session, first.deployment, DeploymentStatus.BUILDING)
        service.move_build(session, first.build, BuildStatus.BUILDING)
        first_id, first_build = first.deployment.id, first.build.id
    with store.transaction() as session:
        second = service.request(
            session, owner, "web", ref="refs/heads/main", sha=None, source="upload"
        )
        assert second.superseded == [first_id]
        preview = service.request(
            session, owner, "web", ref="refs/heads/other", sha=None, source="git"
        )
        assert preview.superseded == [] and preview.environment.kind == "preview"
    with store.transaction() as session:
        old = session.get(Deployment, first_id)
        build = session.get(Build, first_build)
        assert old is not None and old.status == "superseded" and old.finished_at is not None
        assert build is not None and build.status == "superseded"
        # Late news from the superseded build changes nothing.
        assert service.move_deployment(session, old, DeploymentStatus.FAILED) is False
        assert service.move_build(session, build, BuildStatus.SUCCEEDED) is False


def test_viewers_cannot_deploy_and_tenants_cannot_see_each_other(
    store: Store, owner: Principal
) -> None:
    viewer = Principal(owner.organization_id, Role.VIEWER, "token:v")
    with store.transaction() as session:
        other = Organization(name="globex")
        session.add(other)
        session.flush()
        stranger = Principal(other.id, Role.OWNER, "token:s")
        with pytest.raises(Forbidden):
            service.request(session, viewer, "web", ref=None, sha=None, source="git")
        with pytest.raises(NotFound):
            service.request(session, stranger, "web", ref=None, sha=None, source="git")
        made = service.request(session, owner, "web", ref=None, sha=None, source="git")
        with pytest.raises(NotFound):
            service.get_deployment(session, stranger, made.deployment.id)
        with pytest.raises(NotFound):
            service.get_build(session, stranger, made.build.id)


@pytest.mark.parametrize("sha", ["XYZ", "abc", "g" * 40])
def test_bad_shas_are_refused(store: Store, owner: Principal, sha: str) -> None:
    with store.transaction() as session, pytest.raises(ValidationError, match="hex"):
        service.request(session, owner, "web", ref=None, sha=sha, source="git")


def _goes_live(session: Session, requested: service.Requested, version: int) -> None:
    """REQUESTED's build made release VERSION, which went live."""
    release = Release(
        app_id=requested.deployment.app_id,
        build_id=requested.build.id,
        version=version,
        digest=f"sha256:{version:064x}",
    )
    session.add(release)
    session.flush()
    requested.deployment.release_id = release.id
    for status in (DeploymentStatus.BUILDING, DeploymentStatus.DEPLOYING, DeploymentStatus.LIVE):
        service.move_deployment(session, requested.deployment, status)


def test_a_deployment_records_its_commit_and_who_started_it_and_a_copy_names_its_releases(
    store: Store, owner: Principal
) -> None:
    committed = datetime(2026, 6, 1, 9, tzinfo=UTC)
    ada = service.Commit("Ada <ada@example.com>", committed)
    with store.transaction() as session:
        pushed = service.request(
            session, owner, "web", ref="refs/heads/main", sha="b" * 40, source="git", commit=ada
        )
        assert (pushed.deployment.author, pushed.deployment.committed_at) == (ada.author, committed)
        assert pushed.deployment.actor == "user:o"
        _goes_live(session, pushed, 1)
        app = apps.get(session, owner, "web")
        config = service.release_config(session, "token:9", app, {}, "Set FOO")
        assert config is not None and config.actor == "token:9"
        uploaded = service.request(session, owner, "web", ref=None, sha=None, source="upload")
        assert uploaded.deployment.author is uploaded.deployment.committed_at is None
        _goes_live(session, uploaded, 3)
        rollback = service.rollback(session, owner, "web", to=1)
    assert (config.commit_sha, config.author, config.committed_at) == (
        "b" * 40,
        ada.author,
        committed,
    )
    assert (rollback.source, rollback.actor, rollback.commit_sha) == (
        "rollback",
        "user:o",
        "b" * 40,
    )
    assert (rollback.author, rollback.committed_at) == (ada.author, committed)
