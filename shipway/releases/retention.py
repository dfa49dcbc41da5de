"""Which releases keep their image: an app's last releases in each environment, and every
release live or on its way there.

A Dockerfile app's release runs its image (`manifest.image`), so the image must stay in
storage for as long as the release may run again: now, after a restart or a scale from zero,
or in a rollback. Older releases keep their rows and history; only their images go
(shipway.oci.prune).
"""

from __future__ import annotations

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from shipway.deploys.lifecycle import DeploymentStatus
from shipway.settings import DEFAULT_IMAGE_RETENTION
from shipway.store.tables import Deployment, Release

#: A deployment in one of these runs its release, or is about to.
ACTIVE = (
    DeploymentStatus.QUEUED,
    DeploymentStatus.BUILDING,
    DeploymentStatus.DEPLOYING,
    DeploymentStatus.LIVE,
)


def kept_releases(per_environment: int = DEFAULT_IMAGE_RETENTION) -> Select[int]:
    """The query of the ids of the releases kept: in each environment (previews too) the last
    PER_ENVIRONMENT deployed there, and any release a deployment runs or is about to."""
    deployed = (
        select(Deployment.environment_id, Deployment.release_id)
        .where(Deployment.release_id.is_not(None))
        .distinct()
        .subquery()
    )
    ranked = (
        select(
            deployed.c.release_id,
            func.row_number()
            .over(partition_by=deployed.c.environment_id, order_by=Release.version.desc())
            .label("rank"),
        )
        .join(Release, Release.id == deployed.c.release_id)
        .subquery()
    )
    recent = select(ranked.c.release_id).where(ranked.c.rank <= per_environment)
    active = select(Deployment.release_id).where(
        Deployment.status.in_([status.value for status in ACTIVE]),
        Deployment.release_id.is_not(None),
    )
    return select(Release.id).where(or_(Release.id.in_(recent), Release.id.in_(active)))


def kept_images(session: Session, per_environment: int = DEFAULT_IMAGE_RETENTION) -> set[str]:
    """The images (sha256:<podman image id>) of the releases kept, which no prune removes."""
    manifests = session.scalars(
        select(Release.manifest).where(Release.id.in_(kept_releases(per_environment)))
    )
    return {manifest["image"] for manifest in manifests if manifest.get("image")}
