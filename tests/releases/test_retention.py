"""Which releases keep their image: the last ones of each environment, and those running or
on their way, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from shipway.accounts.roles import Principal, Role
from shipway.apps import service as apps
from shipway.deploys.lifecycle import DeploymentStatus
from shipway.releases.retention import kept_images
from shipway.store import Store
from shipway.store.tables import App, Deployment, Environment, Organization, Release


def image(n: int) -> str:
    return f"sha256:{n:064x}"


class History:
    """Releases of one app, each deployed to one environment, as pushes and rollbacks make."""

    def __init__(self, session: Session, app: App) -> None:
        self.session = session
        self.app = app
        self.version = 0

    def environment(self, name: str) -> Environment:
        env = Environment(app_id=self.app.id, name=name, kind="preview", branch=name)
        self.session.add(env)
        self.session.flush()
        return env

    def deploy(
        self,
        env: Environment,
        picture: str | None,
        status: DeploymentStatus = DeploymentStatus.RETIRED,
    ) -> Release:
        self.version += 1
        manifest = {"app": self.app.name, "stack": "dockerfile", "runtime": "oci", "layers": []}
        release = Release(
            app_id=self.app.id,
            version=self.version,
            digest=f"sha256:{self.version:064x}",
            manifest={**manifest, "image": picture},
        )
        self.session.add(release)
        self.session.flush()
        self.session.add(
            Deployment(
                app_id=self.app.id,
                environment_id=env.id,
                release_id=release.id,
                status=status.value,
                source="git",
            )
        )
        self.session.flush()
        return release


@pytest.fixture
def production(store: Store) -> tuple[int, int]:
    """The app web, and its production environment."""
    with store.transaction() as session:
        org = Organization(name="acme")
        session.add(org)
        session.flush()
        owner = Principal(organization_id=org.id, role=Role.OWNER, actor="user:o")
        app = apps.create(session, owner, "web")
        [env] = app.environments
        return app.id, env.id


def history(session: Session, production: tuple[int, int]) -> tuple[History, Environment]:
    app = session.get(App, production[0])
    env = session.get(Environment, production[1])
    assert app is not None and env is not None
    return History(session, app), env


def test_the_last_releases_of_each_environment_keep_their_images(
    store: Store, production: tuple[int, int]
) -> None:
    with store.transaction() as session:
        made, prod = history(session, production)
        preview = made.environment("feature")
        for n in range(1, 13):
            made.deploy(
                prod, image(n), DeploymentStatus.LIVE if n == 12 else DeploymentStatus.RETIRED
            )
        for n in range(13, 16):
            made.deploy(preview, image(n))
    with store.transaction() as session:
        assert kept_images(session) == {image(n) for n in range(3, 16)}
        assert kept_images(session, per_environment=2) == {
            image(11),
            image(12),
            image(14),
            image(15),
        }


def test_a_release_running_or_on_its_way_keeps_its_image_whatever_its_age(
    store: Store, production: tuple[int, int]
) -> None:
    with store.transaction() as session:
        made, prod = history(session, production)
        made.deploy(prod, image(1), DeploymentStatus.LIVE)
        made.deploy(prod, image(2), DeploymentStatus.DEPLOYING)
        made.deploy(prod, image(3), DeploymentStatus.QUEUED)
        made.deploy(prod, image(4), DeploymentStatus.FAILED)
        made.deploy(prod, image(5), DeploymentStatus.SUPERSEDED)
        made.deploy(prod, image(6), DeploymentStatus.FAILED)
        preview = made.environment("feature")
        made.deploy(preview, image(7), DeploymentStatus.LIVE)
        made.deploy(preview, image(8), DeploymentStatus.FAILED)
    with store.transaction() as session:
        assert kept_images(session, per_environment=1) == {image(n) for n in (1, 2, 3, 6, 7, 8)}


def test_releases_share_an_image_and_those_without_one_have_none(
    store: Store, production: tuple[int, int]
) -> None:
    with store.transaction() as session:
        made, prod = history(session, production)
        made.deploy(prod, image(1))
        made.deploy(prod, image(1), DeploymentStatus.LIVE)  # a config change: the same image
        made.deploy(prod, None)  # an app built in sandboxes: layers, no image
    with store.transaction() as session:
        assert kept_images(session) == {image(1)}
        assert kept_images(session, per_environment=1) == {image(1)}


def test_a_deleted_environments_releases_are_no_longer_kept(
    store: Store, production: tuple[int, int]
) -> None:
    with store.transaction() as session:
        made, prod = history(session, production)
        made.deploy(prod, image(1), DeploymentStatus.LIVE)
        preview = made.environment("feature")
        made.deploy(preview, image(2), DeploymentStatus.LIVE)
        preview_id = preview.id
    with store.transaction() as session:
        session.delete(session.get(Environment, preview_id))
    with store.transaction() as session:
        assert kept_images(session) == {image(1)}


def test_nothing_deployed_keeps_nothing(store: Store) -> None:
    with store.transaction() as session:
        assert kept_images(session) == set()
