"""What the deploy workflow and a node's runtime send each other through Temporal."""

from __future__ import annotations

from dataclasses import dataclass

#: The task queue of this node's runtime (one node per machine).
NODE_QUEUE = "shipway-node"

START_ACTIVITY = "shipway.runtime.start"
#: Run the release's release phase (the Procfile's `release:`) once, before START.
RELEASE_ACTIVITY = "shipway.runtime.release"
ROUTE_ACTIVITY = "shipway.runtime.route"
#: START, then ROUTE, in one trip through Temporal: what deploy workflows ask for now (the two
#: stay for workflows started by older code).
GO_LIVE_ACTIVITY = "shipway.runtime.go_live"
DISCARD_ACTIVITY = "shipway.runtime.discard"
#: The error type of a release that cannot start (or whose release phase failed): retrying
#: would not help.
FAILURE_TYPE = "ReleaseFailed"


@dataclass
class RunInput:
    deployment_id: int
