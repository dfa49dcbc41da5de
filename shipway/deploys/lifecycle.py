"""The build and deployment lifecycles: their states, and the moves between them."""

from __future__ import annotations

from enum import StrEnum

from shipway.lifecycle import Lifecycle


class BuildStatus(StrEnum):
    QUEUED = "queued"
    BUILDING = "building"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"


class DeploymentStatus(StrEnum):
    QUEUED = "queued"
    BUILDING = "building"
    DEPLOYING = "deploying"
    LIVE = "live"
    RETIRED = "retired"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"


_BUILD_STOPPED = {BuildStatus.FAILED, BuildStatus.CANCELLED, BuildStatus.SUPERSEDED}
_DEPLOYMENT_STOPPED = {
    DeploymentStatus.FAILED,
    DeploymentStatus.CANCELLED,
    DeploymentStatus.SUPERSEDED,
}

BUILDS = Lifecycle(
    "a build",
    {
        BuildStatus.QUEUED: {BuildStatus.BUILDING, *_BUILD_STOPPED},
        BuildStatus.BUILDING: {BuildStatus.SUCCEEDED, *_BUILD_STOPPED},
    },
)

#: A retired deployment stays so: nothing follows it.
DEPLOYMENTS = Lifecycle(
    "a deployment",
    {
        DeploymentStatus.QUEUED: {
            DeploymentStatus.BUILDING,
            DeploymentStatus.DEPLOYING,
            *_DEPLOYMENT_STOPPED,
        },
        DeploymentStatus.BUILDING: {DeploymentStatus.DEPLOYING, *_DEPLOYMENT_STOPPED},
        DeploymentStatus.DEPLOYING: {DeploymentStatus.LIVE, *_DEPLOYMENT_STOPPED},
        DeploymentStatus.LIVE: {DeploymentStatus.RETIRED},
    },
)


def is_terminal(status: BuildStatus | DeploymentStatus) -> bool:
    """True when nothing can follow STATUS, a build's or a deployment's."""
    if isinstance(status, BuildStatus):
        return BUILDS.is_terminal(status)
    return DEPLOYMENTS.is_terminal(status)


def settled(status: DeploymentStatus) -> bool:
    """Whether a deployment is done with: live (its release serves) or ended."""
    return status is DeploymentStatus.LIVE or DEPLOYMENTS.is_terminal(status)
