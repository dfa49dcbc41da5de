"""The build and deployment lifecycles, and the one function that moves each along."""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from shipway.errors import IllegalTransition


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


_STOPPED = {"failed", "cancelled", "superseded"}

BUILD_TRANSITIONS: dict[BuildStatus, frozenset[BuildStatus]] = {
    BuildStatus.QUEUED: frozenset(
        {BuildStatus.BUILDING, BuildStatus.CANCELLED, BuildStatus.SUPERSEDED, BuildStatus.FAILED}
    ),
    BuildStatus.BUILDING: frozenset(
        {BuildStatus.SUCCEEDED, BuildStatus.FAILED, BuildStatus.CANCELLED, BuildStatus.SUPERSEDED}
    ),
}

DEPLOYMENT_TRANSITIONS: dict[DeploymentStatus, frozenset[DeploymentStatus]] = {
    DeploymentStatus.QUEUED: frozenset(
        {DeploymentStatus.BUILDING, DeploymentStatus.DEPLOYING}
        | {DeploymentStatus(s) for s in _STOPPED}
    ),
    DeploymentStatus.BUILDING: frozenset(
        {DeploymentStatus.DEPLOYING} | {DeploymentStatus(s) for s in _STOPPED}
    ),
    DeploymentStatus.DEPLOYING: frozenset(
        {DeploymentStatus.LIVE} | {DeploymentStatus(s) for s in _STOPPED}
    ),
    DeploymentStatus.LIVE: frozenset({DeploymentStatus.RETIRED}),
}

S = TypeVar("S", BuildStatus, DeploymentStatus)


def is_terminal(status: BuildStatus | DeploymentStatus) -> bool:
    """True when nothing can follow STATUS (retired counts: a retired deployment stays so)."""
    table = BUILD_TRANSITIONS if isinstance(status, BuildStatus) else DEPLOYMENT_TRANSITIONS
    return status not in table


def advance(current: S, target: S) -> S:
    """Return TARGET if the lifecycle allows CURRENT → TARGET, else raise IllegalTransition."""
    table: dict[S, frozenset[S]] = (
        BUILD_TRANSITIONS if isinstance(current, BuildStatus) else DEPLOYMENT_TRANSITIONS
    )
    if target not in table.get(current, frozenset()):
        kind = "build" if isinstance(current, BuildStatus) else "deployment"
        raise IllegalTransition(f"a {kind} cannot go from {current} to {target}")
    return target
