import pytest

from shipway.deploys.lifecycle import BuildStatus, DeploymentStatus, advance, is_terminal
from shipway.errors import IllegalTransition


def test_a_build_moves_forward() -> None:
    status = advance(BuildStatus.QUEUED, BuildStatus.BUILDING)
    assert advance(status, BuildStatus.SUCCEEDED) is BuildStatus.SUCCEEDED


def test_a_finished_build_cannot_move() -> None:
    with pytest.raises(IllegalTransition, match="succeeded to building"):
        advance(BuildStatus.SUCCEEDED, BuildStatus.BUILDING)


def test_deployment_path_to_live_and_retired() -> None:
    path = [
        DeploymentStatus.BUILDING,
        DeploymentStatus.DEPLOYING,
        DeploymentStatus.LIVE,
        DeploymentStatus.RETIRED,
    ]
    status = DeploymentStatus.QUEUED
    for step in path:
        status = advance(status, step)
    assert is_terminal(status)


@pytest.mark.parametrize("start", list(DeploymentStatus))
def test_every_non_terminal_deployment_can_be_stopped(start: DeploymentStatus) -> None:
    if is_terminal(start) or start is DeploymentStatus.LIVE:
        return
    assert advance(start, DeploymentStatus.SUPERSEDED) is DeploymentStatus.SUPERSEDED


def test_live_cannot_fail() -> None:
    with pytest.raises(IllegalTransition):
        advance(DeploymentStatus.LIVE, DeploymentStatus.FAILED)
