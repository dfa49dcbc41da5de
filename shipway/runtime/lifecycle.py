"""The instance lifecycle, and the one function that moves an instance along it."""

from __future__ import annotations

from enum import StrEnum

from shipway.errors import IllegalTransition


class InstanceState(StrEnum):
    STARTING = "starting"
    HEALTHY = "healthy"
    DRAINING = "draining"
    STOPPED = "stopped"
    #: Exited on its own while it should run; it is started again after a backoff.
    CRASHED = "crashed"


TRANSITIONS: dict[InstanceState, frozenset[InstanceState]] = {
    InstanceState.STARTING: frozenset(
        {InstanceState.HEALTHY, InstanceState.CRASHED, InstanceState.STOPPED}
    ),
    InstanceState.HEALTHY: frozenset(
        {InstanceState.DRAINING, InstanceState.CRASHED, InstanceState.STOPPED}
    ),
    InstanceState.DRAINING: frozenset({InstanceState.STOPPED}),
    InstanceState.CRASHED: frozenset({InstanceState.STARTING, InstanceState.STOPPED}),
}


def advance(current: InstanceState, target: InstanceState) -> InstanceState:
    """Return TARGET if an instance may go from CURRENT to it, else raise IllegalTransition."""
    if target not in TRANSITIONS.get(current, frozenset()):
        raise IllegalTransition(f"an instance cannot go from {current} to {target}")
    return target
