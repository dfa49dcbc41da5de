"""What a builder reads and writes besides its own data dir: holding a build for an attempt,
the build's standing, the app's secrets to mask, the pushed source, the log's lines, and the
layers or the image a release runs from.

A builder beside the control plane uses the store and data dir directly
(shipway.builder.records.local); one on another machine asks the control plane over HTTP
(shipway.builder.records.remote). Blocking calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from shipway.logs.writer import LineStore


@dataclass(frozen=True)
class Begun:
    #: Why an earlier attempt did not finish, when this one is a retry.
    previous: str | None


class BuildRecords(Protocol):
    lines: LineStore

    def begin(
        self, build_id: int, deployment_id: int, attempt: str, builder: str
    ) -> Begun | None: ...

    def standing(self, build_id: int) -> tuple[str, str | None]: ...

    def secrets(self, app_id: int) -> list[str]: ...

    def source(self, build_id: int, path: str) -> Path: ...

    def publish(self, digests: list[str], layers: Path) -> None: ...

    def publish_image(self, image_id: str, data_dir: Path) -> None: ...
