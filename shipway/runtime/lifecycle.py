"""The instance lifecycle: its states, and the moves between them."""

from __future__ import annotations

from enum import StrEnum

from shipway.lifecycle import Lifecycle


class InstanceState(StrEnum):
    STARTING = "starting"
    HEALTHY = "healthy"
    DRAINING = "draining"
    STOPPED = "stopped"
    #: Exited on its own while it should run; it is started again after a backoff.
    CRASHED = "crashed"


INSTANCES = Lifecycle(
    "an instance",
    {
        InstanceState.STARTING: {
            InstanceState.HEALTHY,
            InstanceState.CRASHED,
            InstanceState.STOPPED,
        },
        InstanceState.HEALTHY: {
            InstanceState.DRAINING,
            InstanceState.CRASHED,
            InstanceState.STOPPED,
        },
        InstanceState.DRAINING: {InstanceState.STOPPED},
        InstanceState.CRASHED: {InstanceState.STARTING, InstanceState.STOPPED},
    },
)
