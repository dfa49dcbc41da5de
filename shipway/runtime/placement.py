"""What the runtime needs to run one release in one environment, read from the store at once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from shipway.addons.service import attached
from shipway.apps import config, hosts
from shipway.apps.secretbox import SecretBox
from shipway.apps.service import PRODUCTION
from shipway.errors import NotFound
from shipway.releases.manifest import Manifest
from shipway.sandbox import Mount
from shipway.store.tables import App, Organization, Release

Key = tuple[int, str]


@dataclass(frozen=True)
class Placement:
    app_id: int
    app: str
    environment: str
    host: str
    release_id: int
    version: int
    manifest: Manifest
    env: dict[str, str]
    secrets: tuple[str, ...]
    formation: dict[str, int]
    plan: str
    health_path: str
    health_timeout: int
    idle_timeout: int | None
    #: What the app's add-ons put in its sandboxes: their sockets, read-only.
    attachments: tuple[Mount, ...] = ()

    @property
    def key(self) -> Key:
        return (self.app_id, self.environment)

    @property
    def static(self) -> bool:
        return self.manifest.static_root is not None

    def counts(self) -> dict[str, int]:
        """How many instances of each process type run: the app's formation in production
        (1 of each by default), at most one of each in a preview."""
        counts = {}
        for process in self.manifest.commands():
            wanted = self.formation.get(process, 1)
            counts[process] = wanted if self.environment == PRODUCTION else min(wanted, 1)
        return counts


def load(
    session: Session,
    release_id: int,
    environment: str,
    base_domain: str,
    box: SecretBox,
    data_dir: Path,
) -> Placement:
    """What running RELEASE_ID in ENVIRONMENT takes: its config, with the URLs of the
    environment's own add-ons (a preview never gets production's), and their sockets."""
    release = session.get(Release, release_id)
    if release is None:
        raise NotFound(f"no release with id {release_id}")
    app = session.get(App, release.app_id)
    assert app is not None
    org = session.get(Organization, app.organization_id)
    assert org is not None
    snapshot: dict[str, Any] = release.config or {}
    addons = attached(session, app.id, environment, box, data_dir)
    env = {
        key: value
        for key, value in config.environment(snapshot, box).items()
        if key not in addons.hidden
    }
    return Placement(
        app_id=app.id,
        app=app.name,
        environment=environment,
        host=hosts.hostname(app.name, environment, base_domain, hosts.label(org)),
        release_id=release.id,
        version=release.version,
        manifest=Manifest.from_json(release.manifest),
        env={**env, **addons.env},
        secrets=(*config.secret_values(snapshot, box), *addons.secrets),
        formation=dict(app.formation or {}),
        plan=app.plan,
        health_path=app.health_path,
        health_timeout=app.health_timeout,
        idle_timeout=app.idle_timeout,
        attachments=addons.mounts,
    )
