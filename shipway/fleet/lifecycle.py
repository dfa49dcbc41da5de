"""A builder's lifecycle, and the one place it moves."""

from __future__ import annotations

from enum import StrEnum

from shipway.errors import IllegalTransition


class BuilderState(StrEnum):
    #: Pulling build tasks.
    ACTIVE = "active"
    #: Taking no new task, finishing the ones it runs.
    DRAINING = "draining"
    #: Done: it finished its builds and stopped.
    DRAINED = "drained"
    #: Not heard from within the heartbeat timeout; its builds go to other builders.
    LOST = "lost"


TRANSITIONS: dict[BuilderState, frozenset[BuilderState]] = {
    BuilderState.ACTIVE: frozenset({BuilderState.DRAINING, BuilderState.LOST}),
    BuilderState.DRAINING: frozenset({BuilderState.DRAINED, BuilderState.LOST}),
    BuilderState.LOST: frozenset({BuilderState.ACTIVE, BuilderState.DRAINING}),
    BuilderState.DRAINED: frozenset(),
}


def move(current: BuilderState, target: BuilderState) -> BuilderState:
    """TARGET, if a builder in CURRENT may go there (staying put is allowed)."""
    if target is not current and target not in TRANSITIONS[current]:
        raise IllegalTransition(f"a builder cannot go from {current} to {target}")
    return target
