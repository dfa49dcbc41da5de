"""What the deploy workflow and a builder send each other through Temporal."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class BuildInput:
    """One build task, as a builder pulls it from its pool's task queue."""

    build_id: int
    deployment_id: int
    app_id: int
    app: str
    source_path: str
    source_sha: str | None = None
    network: bool = True
    wall_seconds: float = 900.0
    #: Whose dependency layers and downloads the build may share; none in a task queued
    #: before organizations shared them (the app's own are used then).
    organization_id: int | None = None


@dataclass
class BuildOutput:
    manifest: dict[str, Any]
    cache_warm: bool
    builder: str
    steps: dict[str, float] = field(default_factory=dict)
    #: Whether the builder recorded the release itself (one inside `shipway up`), so that the
    #: workflow's release step only confirms it.
    recorded: bool = False


BUILD_ACTIVITY = "shipway.build"
FAILURE_TYPE = "BuildFailed"


def builder_queue(pool: str) -> str:
    """The task queue every builder of POOL pulls from."""
    return f"builders-{pool}"


def own_queue(builder_id: str) -> str:
    """The task queue of one builder: builds sent to it for its warm cache."""
    return f"builder-{builder_id}"
