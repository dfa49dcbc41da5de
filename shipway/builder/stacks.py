"""Stack detection: what kind of app a source tree is, which runtime it runs on, how its
dependencies install and what its build step runs."""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipway.builder import runtimes
from shipway.errors import ValidationError
from shipway.releases.manifest import DOCKERFILE

LOOKED_FOR = (
    "Dockerfile (built with podman), "
    "package.json with package-lock.json or npm-shrinkwrap.json (Node), "
    "requirements.txt or pyproject.toml (Python), index.html or public/ (static site)"
)


class NoStack(ValidationError):
    """Raised when a source tree matches no stack shipway knows."""


@dataclass(frozen=True)
class Stack:
    """How to build one source tree."""

    name: str
    runtime: str
    lockfile: str | None = None
    #: Files copied into the dependency build's workspace.
    inputs: tuple[str, ...] = ()
    #: The install command run in the sandbox, or none (static sites).
    install: tuple[str, ...] = ()
    #: What the install starts from, the same for every app of the runtime (a Python
    #: runtime's empty virtualenv): the command that makes it at deps_mount, run once per
    #: machine (shipway.builder.seeds), or none.
    seed: tuple[str, ...] = ()
    #: Where the dependency layer is mounted at build time.
    deps_mount: str | None = None
    #: Where it is mounted at run time, beside the read-only app at /app; default deps_mount.
    run_mount: str | None = None
    static_root: str | None = None
    extra_key: str = field(default="")
    #: The build step's own commands (a Node app's `npm run build`); shipway.yml's
    #: build.commands replace them.
    build: tuple[str, ...] = ()
    #: Links added to the dependency layer after the install (path in the layer, target): a
    #: Node app's chosen node as .bin/node, when it is not the node on an instance's PATH.
    links: tuple[tuple[str, str], ...] = ()

    def deps_key(self, source: Path) -> str | None:
        """sha256 over the lockfile and the runtime version: equal keys, reusable layers."""
        if self.lockfile is None:
            return None
        digest = hashlib.sha256()
        digest.update(f"{self.name}\0{self.runtime}\0{self.extra_key}\0".encode())
        for name in self.inputs:
            path = source / name
            if path.is_file():
                digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
        return digest.hexdigest()


NPM = "/usr/bin/npm"
_NPM_CI = (NPM, "ci", "--no-audit", "--no-fund", "--cache", "/cache/npm")


def _pyproject_dependencies(path: Path) -> list[str]:
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ValidationError(f"pyproject.toml cannot be parsed: {e}") from e
    deps = data.get("project", {}).get("dependencies", [])
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise ValidationError("pyproject.toml: [project] dependencies must be a list of strings")
    return deps


#: The runtime that Dockerfile apps' images run on.
OCI = "oci"


def detect(source: Path, dockerfile: str | None = None) -> Stack:
    """The stack of SOURCE, checked in the documented order; NoStack says what was looked for.
    DOCKERFILE is the one shipway.yml names, which must exist."""
    if dockerfile is not None:
        if not (source / dockerfile).is_file():
            raise NoStack(f"shipway.yml names the Dockerfile {dockerfile}, which is not a file")
        return Stack(name=DOCKERFILE, runtime=OCI)
    if (source / "Dockerfile").is_file():
        return Stack(name=DOCKERFILE, runtime=OCI)
    if (source / "package.json").is_file():
        return _node(source)
    if (source / "requirements.txt").is_file():
        python = runtimes.python(source)
        return Stack(
            name="python",
            runtime=python.runtime,
            lockfile="requirements.txt",
            inputs=("requirements.txt",),
            install=_pip_install("-r", "/workspace/requirements.txt"),
            seed=_venv(python.path),
            deps_mount="/deps",
        )
    if (source / "pyproject.toml").is_file():
        deps = _pyproject_dependencies(source / "pyproject.toml")
        python = runtimes.python(source)
        return Stack(
            name="python",
            runtime=python.runtime,
            lockfile="pyproject.toml",
            inputs=(),
            install=_pip_install(*deps),
            seed=_venv(python.path),
            deps_mount="/deps",
            extra_key=json.dumps(sorted(deps)),
        )
    if (source / "public").is_dir():
        return Stack(name="static", runtime="static", static_root="public")
    if (source / "index.html").is_file():
        return Stack(name="static", runtime="static", static_root=".")
    raise NoStack(f"no recognised stack: shipway looked for {LOOKED_FOR}")


def _node(source: Path) -> Stack:
    lock = next(
        (n for n in ("package-lock.json", "npm-shrinkwrap.json") if (source / n).is_file()),
        None,
    )
    if lock is None:
        raise NoStack(
            "package.json has no lockfile: run `npm install` and commit package-lock.json"
        )
    package = _package_json(source / "package.json")
    default = runtimes.default_node()
    node = runtimes.node(_engines_node(package), default)
    scripts = package.get("scripts")
    build = scripts.get("build") if isinstance(scripts, dict) else None
    chosen = node.path != default
    return Stack(
        name="node",
        runtime=node.runtime,
        lockfile=lock,
        inputs=("package.json", lock),
        install=_on_path(node.path, *_NPM_CI) if chosen else _NPM_CI,
        deps_mount="/workspace/node_modules",
        # Node looks in /app/node_modules, then /node_modules: the app layer stays whole.
        run_mount="/node_modules",
        build=("npm run build",) if isinstance(build, str) and build.strip() else (),
        # An instance's PATH starts with /node_modules/.bin.
        links=((".bin/node", node.path),) if chosen else (),
    )


def _package_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValidationError(f"package.json cannot be parsed: {e}") from e
    if not isinstance(data, dict):
        raise ValidationError("package.json must hold a JSON object")
    return data


def _engines_node(package: dict[str, Any]) -> str | None:
    engines = package.get("engines") or {}
    wanted = engines.get("node") if isinstance(engines, dict) else None
    if wanted is not None and not isinstance(wanted, str):
        raise ValidationError('package.json: engines.node must be a version range, e.g. ">=20"')
    return wanted


def _on_path(node: str, *argv: str) -> tuple[str, ...]:
    """ARGV run with NODE as the `node` on PATH: npm, and the install scripts it runs, use it."""
    script = 'mkdir -p /tmp/bin && ln -sf "$0" /tmp/bin/node && PATH="/tmp/bin:$PATH" exec "$@"'
    return ("/bin/sh", "-c", script, node, *argv)


def _venv(python: str) -> tuple[str, ...]:
    """The virtualenv made by PYTHON at /deps/venv, which instances run."""
    return (python, "-m", "venv", "/deps/venv")


def _pip_install(*requirements: str) -> tuple[str, ...]:
    """REQUIREMENTS installed into the virtualenv; nothing to run when there are none."""
    if not requirements:
        return ()
    return (
        "/deps/venv/bin/pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--progress-bar",
        "off",
        "--cache-dir",
        "/cache/pip",
        *requirements,
    )
