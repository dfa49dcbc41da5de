import pytest

from shipway.deploys.lifecycle import (
    BUILDS,
    DEPLOYMENTS,
    BuildStatus,
    DeploymentStatus,
    is_terminal,
)
from shipway.errors import IllegalTransition


def test_a_build_moves_forward() -> None:
    status = BUILDS.advance(BuildStatus.QUEUED, BuildStatus.BUILDING)
    assert BUILDS.advance(status, BuildStatus.SUCCEEDED) is BuildStatus.SUCCEEDED


def test_a_finished_build_cannot_move() -> None:
    with pytest.raises(IllegalTransition, match="a build cannot go from succeeded to building"):
        BUILDS.advance(BuildStatus.SUCCEEDED, BuildStatus.BUILDING)


def test_deployment_path_to_live_and_retired() -> None:
    path = [
        DeploymentStatus.BUILDING,
        DeploymentStatus.DEPLOYING,
        DeploymentStatus.LIVE,
        DeploymentStatus.RETIRED,
    ]
    status = DeploymentStatus.QUEUED
    for step in path:
        status = DEPLOYMENTS.advance(status, step)
    assert is_terminal(status)


@pytest.mark.parametrize("start", list(DeploymentStatus))
def test_every_non_terminal_deployment_can_be_stopped(start: DeploymentStatus) -> None:
    if is_terminal(start) or start is DeploymentStatus.LIVE:
        return
    assert DEPLOYMENTS.advance(start, DeploymentStatus.SUPERSEDED) is DeploymentStatus.SUPERSEDED


def test_live_cannot_fail() -> None:
    with pytest.raises(IllegalTransition):
        DEPLOYMENTS.advance(DeploymentStatus.LIVE, DeploymentStatus.FAILED)


def test_is_terminal_answers_for_builds_and_deployments() -> None:
    assert [s for s in BuildStatus if is_terminal(s)] == [
        BuildStatus.SUCCEEDED,
        BuildStatus.FAILED,
        BuildStatus.CANCELLED,
        BuildStatus.SUPERSEDED,
    ]
    assert not is_terminal(DeploymentStatus.LIVE) and is_terminal(DeploymentStatus.RETIRED)
