"""Release manifests: which layers, processes and stack make a release, named by their digest."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

#: The web command of a Node app without a Procfile.
NODE_WEB = "npm start"
#: The Procfile entry run once per release, before any of its instances start (migrations):
#: the release phase, not a process type that runs instances.
RELEASE = "release"
#: The stack of apps built from a Dockerfile into an image.
DOCKERFILE = "dockerfile"
#: The command of an image release's `web` process without a Procfile: the image's own
#: ENTRYPOINT and CMD.
IMAGE_COMMAND = ""
#: The PATH of every sandbox of a release, before its stack's own tools.
BASE_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class LayerRef:
    digest: str
    role: str  # "app" or "deps"
    mount: str  # where it is mounted at run time


@dataclass(frozen=True)
class Manifest:
    """Everything needed to run a release; immutable once written."""

    app: str
    stack: str
    runtime: str
    layers: tuple[LayerRef, ...]
    processes: dict[str, str] = field(default_factory=dict)
    static_root: str | None = None
    source_sha: str | None = None
    build_id: int | None = None
    #: An image release's image, by its digest (podman's image id); its layers are then none.
    image: str | None = None
    #: The port its image EXPOSEs, when it exposes exactly one: where its web process listens.
    port: int | None = None
    #: The images its Dockerfile's stages start FROM, as named there, and the digest each was.
    bases: dict[str, str] = field(default_factory=dict)

    def commands(self) -> dict[str, str]:
        """Process type → command: the Procfile's, else the stack's default (a Node app runs
        `npm start` as web); a static site has none. The release phase is not one of them."""
        declared = {kind: command for kind, command in self.processes.items() if kind != RELEASE}
        if declared:
            return declared
        if self.stack == "node" and self.static_root is None:
            return {"web": NODE_WEB}
        if self.image is not None:
            return {"web": IMAGE_COMMAND}
        return {}

    @property
    def release_command(self) -> str | None:
        """What the release phase runs (the Procfile's `release:`), or None when it has none.
        It stays among `processes`, so manifests written before it was set apart still read."""
        return self.processes.get(RELEASE)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["layers"] = [asdict(layer) for layer in self.layers]
        # A release of layers is written as it was before images: the same digest as then.
        for key in ("image", "port", "bases"):
            if not data[key]:
                del data[key]
        return data

    @property
    def digest(self) -> str:
        """sha256 of the canonical JSON of what runs: the same inputs, the same digest."""
        content = {k: v for k, v in self.to_json().items() if k != "build_id"}
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
        return f"sha256:{hashlib.sha256(canonical).hexdigest()}"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        return cls(
            app=data["app"],
            stack=data["stack"],
            runtime=data["runtime"],
            layers=tuple(LayerRef(**layer) for layer in data["layers"]),
            processes=dict(data.get("processes", {})),
            static_root=data.get("static_root"),
            source_sha=data.get("source_sha"),
            build_id=data.get("build_id"),
            image=data.get("image"),
            port=data.get("port"),
            bases=dict(data.get("bases") or {}),
        )


def stack_environment(stack: str) -> dict[str, str]:
    """PATH and friends every sandbox of a release of STACK has (its instances, its release
    phase, its build step), so the app's own interpreter and tools run by name. An image
    brings its own."""
    if stack == DOCKERFILE:
        return {}
    if stack == "python":
        return {
            "PATH": f"/deps/venv/bin:{BASE_PATH}",
            "VIRTUAL_ENV": "/deps/venv",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    if stack == "node":
        return {"PATH": f"/node_modules/.bin:{BASE_PATH}", "NODE_ENV": "production"}
    return {"PATH": BASE_PATH}
