"""The lifecycle of a function run: running, then one of its three ends, and nothing after."""

from __future__ import annotations

import pytest

from shipway.errors import IllegalTransition
from shipway.functions.outcome import RUNS, RunStatus

ENDS = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.TIMED_OUT)


@pytest.mark.parametrize("end", ENDS)
def test_a_running_run_ends_each_way(end: RunStatus) -> None:
    assert RUNS.advance(RunStatus.RUNNING, end) is end
    assert RUNS.is_terminal(end)


def test_a_running_run_does_not_stay_running() -> None:
    assert not RUNS.allows(RunStatus.RUNNING, RunStatus.RUNNING)
    assert not RUNS.is_terminal(RunStatus.RUNNING)


@pytest.mark.parametrize("end", ENDS)
@pytest.mark.parametrize("target", list(RunStatus))
def test_an_ended_run_goes_nowhere(end: RunStatus, target: RunStatus) -> None:
    with pytest.raises(IllegalTransition) as caught:
        RUNS.advance(end, target)
    assert caught.value.message == f"a function run cannot go from {end} to {target}"


def test_the_refusal_names_both_states() -> None:
    with pytest.raises(IllegalTransition, match="cannot go from succeeded to running"):
        RUNS.advance(RunStatus.SUCCEEDED, RunStatus.RUNNING)
