"""A builder's lifecycle: its states, and the moves between them."""

from __future__ import annotations

from enum import StrEnum

from shipway.lifecycle import Lifecycle


class BuilderState(StrEnum):
    #: Pulling build tasks.
    ACTIVE = "active"
    #: Taking no new task, finishing the ones it runs.
    DRAINING = "draining"
    #: Done: it finished its builds and stopped.
    DRAINED = "drained"
    #: Not heard from within the heartbeat timeout; its builds go to other builders.
    LOST = "lost"


#: Staying put is allowed: a drain asked twice is one drain.
BUILDERS = Lifecycle(
    "a builder",
    {
        BuilderState.ACTIVE: {BuilderState.DRAINING, BuilderState.LOST},
        BuilderState.DRAINING: {BuilderState.DRAINED, BuilderState.LOST},
        BuilderState.LOST: {BuilderState.ACTIVE, BuilderState.DRAINING},
    },
    may_stay=True,
)
