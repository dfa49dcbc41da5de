"""How a build turns a checked-out source into a release: a backend per kind of stack.

`sandbox` installs dependencies and runs the build step in bubblewrap sandboxes, and stores
the result as layers; `oci` builds the app's Dockerfile with podman into an image. Both get
a `Job` and give back what the release runs, and both stream their log the same way.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from shipway import tracing
from shipway.builder.appfile import AppFile
from shipway.builder.records import AppConfig
from shipway.builder.stacks import Stack
from shipway.errors import ShipwayError
from shipway.releases.manifest import Manifest
from shipway.sandbox import Limits


class Log(Protocol):
    """Where build lines go (LogWriter.write); a private line shows as a placeholder."""

    async def __call__(self, line: str, *, private: bool = False) -> None: ...


class BuildFailed(ShipwayError):
    """Raised when the build itself fails (bad source, install error, a limit hit): not retried."""

    code = "build_failed"


@dataclass(frozen=True)
class BuildRequest:
    build_id: int
    app_id: int
    app: str
    source: Path
    source_sha: str | None = None
    network: bool = True
    limits: Limits = field(default_factory=Limits)
    #: The app's config: shipway.yml's build.args name those a Dockerfile build gets.
    config: AppConfig = field(default_factory=AppConfig)
    #: The app's organization, whose dependency layers and downloads the build shares.
    organization_id: int | None = None


class Steps:
    """Wall-clock seconds spent in each named step, for the build record and the benchmark;
    with traces on, each step is a span (`build.NAME`) too."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            with tracing.span(f"build.{name}"):
                yield
        finally:
            self.seconds[name] = round(time.perf_counter() - started, 4)


@dataclass(frozen=True)
class Job:
    """One build as a backend sees it: the request, the checked-out SOURCE and what was read
    from it, a WORK dir it may fill, and where its log and timings go."""

    request: BuildRequest
    stack: Stack
    settings: AppFile
    processes: dict[str, str]
    source: Path
    work: Path
    data_dir: Path
    log: Log
    steps: Steps


@dataclass(frozen=True)
class Built:
    """What a backend made: the release's manifest, and whether its cache made it warm."""

    manifest: Manifest
    cache_warm: bool
