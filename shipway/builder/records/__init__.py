"""What a builder reads and writes besides its own data dir: holding a build for an attempt,
the build's standing, the app's config (build args, and secrets to mask), the pushed source,
the log's lines, and the layers or the image a release runs from.

A builder beside the control plane uses the store and data dir directly
(shipway.builder.records.local); one on another machine asks the control plane over HTTP
(shipway.builder.records.remote). Blocking calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from shipway.logs.writer import LineStore


@dataclass(frozen=True)
class Begun:
    #: Why an earlier attempt did not finish, when this one is a retry.
    previous: str | None


@dataclass(frozen=True)
class AppConfig:
    """An app's config vars as its builds see them: the values shipway.yml's build.args may
    pass in, and which of them are secrets, masked wherever a build prints them."""

    values: dict[str, str] = field(default_factory=dict)
    secret: frozenset[str] = frozenset()

    def secret_values(self) -> list[str]:
        return [value for key, value in self.values.items() if key in self.secret]

    def to_json(self) -> dict[str, Any]:
        return {"values": self.values, "secret": sorted(self.secret)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AppConfig:
        return cls(dict(data["values"]), frozenset(data["secret"]))


class BuildRecords(Protocol):
    lines: LineStore

    def begin(
        self, build_id: int, deployment_id: int, attempt: str, builder: str
    ) -> Begun | None: ...

    def standing(self, build_id: int) -> tuple[str, str | None]: ...

    def config(self, app_id: int) -> AppConfig: ...

    def source(self, build_id: int, path: str) -> Path: ...

    def publish(self, digests: list[str], layers: Path) -> None: ...

    def publish_image(self, image_id: str, data_dir: Path) -> None: ...
