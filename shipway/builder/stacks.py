"""Stack detection: what kind of app a source tree is and how its dependencies install."""

from __future__ import annotations

import hashlib
import json
import subprocess
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from shipway.errors import ValidationError

LOOKED_FOR = (
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
    #: Where the dependency layer is mounted at build time.
    deps_mount: str | None = None
    #: Where it is mounted at run time, beside the read-only app at /app; default deps_mount.
    run_mount: str | None = None
    static_root: str | None = None
    extra_key: str = field(default="")

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


@cache
def runtime_version(binary: str) -> str:
    """The version a host toolchain binary reports, e.g. "Python 3.11.2" or "v20.20.2"."""
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=30, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (out.stdout or out.stderr).strip()


PYTHON = "/usr/bin/python3"
NODE = "/usr/bin/node"
NPM = "/usr/bin/npm"


def _pyproject_dependencies(path: Path) -> list[str]:
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ValidationError(f"pyproject.toml cannot be parsed: {e}") from e
    deps = data.get("project", {}).get("dependencies", [])
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise ValidationError("pyproject.toml: [project] dependencies must be a list of strings")
    return deps


def detect(source: Path) -> Stack:
    """The stack of SOURCE, checked in the documented order; NoStack says what was looked for."""
    if (source / "package.json").is_file():
        lock = next(
            (n for n in ("package-lock.json", "npm-shrinkwrap.json") if (source / n).is_file()),
            None,
        )
        if lock is None:
            raise NoStack(
                "package.json has no lockfile: run `npm install` and commit package-lock.json"
            )
        return Stack(
            name="node",
            runtime=runtime_version(NODE),
            lockfile=lock,
            inputs=("package.json", lock),
            install=(NPM, "ci", "--no-audit", "--no-fund", "--cache", "/cache/npm"),
            deps_mount="/workspace/node_modules",
            # Node looks in /app/node_modules, then /node_modules: the app layer stays whole.
            run_mount="/node_modules",
        )
    if (source / "requirements.txt").is_file():
        return Stack(
            name="python",
            runtime=runtime_version(PYTHON),
            lockfile="requirements.txt",
            inputs=("requirements.txt",),
            install=_python_install("-r", "/workspace/requirements.txt"),
            deps_mount="/deps",
        )
    if (source / "pyproject.toml").is_file():
        deps = _pyproject_dependencies(source / "pyproject.toml")
        return Stack(
            name="python",
            runtime=runtime_version(PYTHON),
            lockfile="pyproject.toml",
            inputs=(),
            install=_python_install(*deps),
            deps_mount="/deps",
            extra_key=json.dumps(sorted(deps)),
        )
    if (source / "public").is_dir():
        return Stack(name="static", runtime="static", static_root="public")
    if (source / "index.html").is_file():
        return Stack(name="static", runtime="static", static_root=".")
    raise NoStack(f"no recognised stack: shipway looked for {LOOKED_FOR}")


def _python_install(*requirements: str) -> tuple[str, ...]:
    script = (
        f"{PYTHON} -m venv /deps/venv && "
        "/deps/venv/bin/pip install --disable-pip-version-check --no-input --progress-bar off "
        '--cache-dir /cache/pip "$@"'
    )
    if not requirements:
        script = f"{PYTHON} -m venv /deps/venv"
    return ("/bin/sh", "-c", script, "install", *requirements)
