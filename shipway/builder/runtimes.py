"""Which host interpreter builds and runs an app: the one its source asks for, among those this
host has. `.python-version` (`3.11`, `3.11.2`) or Heroku's `runtime.txt` (`python-3.11.2`)
picks a `python3.X` of /usr/local/bin or /usr/bin; package.json's `engines.node` (an npm range)
picks a `node` or `nodeNN` there. A source that asks for none gets the host's default."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from shipway.builder import semver
from shipway.errors import ValidationError

#: Where interpreters are looked for, in the order an instance's PATH finds them.
BIN_DIRS = ("/usr/local/bin", "/usr/bin")
#: The Python of an app that names no version.
PYTHON = "/usr/bin/python3"
#: The names of the host's interpreters: python3.11, node, node20.
PYTHONS = re.compile(r"python3\.\d+")
NODES = re.compile(r"node\d*")
_PYTHON_VERSION = re.compile(r"\d+\.\d+(?:\.\d+)?")
#: A version file larger than this is not one.
_MAX_BYTES = 1024


class NoRuntime(ValidationError):
    """Raised when an app asks for a runtime version this host does not have."""


@dataclass(frozen=True)
class Interpreter:
    path: str
    #: What it says of itself ("Python 3.11.2", "v20.20.2"): part of the dependency layer's key.
    runtime: str
    version: semver.Version | None


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


def interpreter(path: str) -> Interpreter:
    """PATH with the version it reports (None when that is not a version)."""
    runtime = runtime_version(path)
    try:
        version = semver.parse_version(runtime.split()[-1]) if runtime else None
    except ValueError:
        version = None
    return Interpreter(path, runtime, version)


def installed(pattern: re.Pattern[str]) -> list[Interpreter]:
    """The host's interpreters whose file name is PATTERN, in PATH order, each reporting a
    version."""
    found = []
    for directory in BIN_DIRS:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in names:
            path = os.path.join(directory, name)
            if pattern.fullmatch(name) and os.access(path, os.X_OK):
                found.append(interpreter(path))
    return [i for i in found if i.version is not None]


def python(source: Path) -> Interpreter:
    """The Python that SOURCE's `.python-version` or `runtime.txt` asks for, else PYTHON."""
    asked = _python_asked(source)
    if asked is None:
        return interpreter(PYTHON)
    where, written, wanted = asked
    return _choose(installed(PYTHONS), semver.Range.parse(wanted), f"{where} asks for {written}")


def node(engines: str | None, default: str) -> Interpreter:
    """The node that ENGINES (package.json's engines.node) allows, DEFAULT first."""
    if engines is None:
        return interpreter(default)
    try:
        wanted = semver.Range.parse(engines)
    except ValueError as e:
        raise ValidationError(f"package.json: engines.node is not a version range: {e}") from e
    nodes = installed(NODES)
    nodes.sort(key=lambda i: (i.path != default, [-n for n in i.version or ()]))
    return _choose(nodes, wanted, f"package.json's engines.node asks for {engines}")


def default_node() -> str:
    """The `node` an instance finds first on its PATH."""
    paths = [os.path.join(d, "node") for d in BIN_DIRS]
    return next((p for p in paths if os.access(p, os.X_OK)), paths[-1])


def _choose(candidates: list[Interpreter], wanted: semver.Range, asks: str) -> Interpreter:
    for candidate in candidates:
        if candidate.version is not None and wanted.matches(candidate.version):
            return candidate
    versions = sorted({c.version for c in candidates if c.version is not None})
    have = ", ".join(semver.show(v) for v in versions) or "none"
    raise NoRuntime(f"{asks}; this host has: {have}")


def _python_asked(source: Path) -> tuple[str, str, str] | None:
    """(file, what it says, the version in it) of the first of SOURCE's version files."""
    version_file = _first_line(source / ".python-version")
    if version_file is not None:
        if not _PYTHON_VERSION.fullmatch(version_file):
            raise ValidationError(
                f".python-version names {version_file!r}; write a Python version such as "
                "3.11 or 3.11.2"
            )
        return ".python-version", version_file, version_file
    runtime_txt = _first_line(source / "runtime.txt")
    if runtime_txt is not None:
        version = runtime_txt.removeprefix("python-")
        if version == runtime_txt or not _PYTHON_VERSION.fullmatch(version):
            raise ValidationError(
                f"runtime.txt names {runtime_txt!r}; write a Python version such as python-3.11.2"
            )
        return "runtime.txt", runtime_txt, version
    return None


def _first_line(path: Path) -> str | None:
    """The first line of PATH that is neither blank nor a comment; None without the file."""
    if not path.is_file():
        return None
    with path.open("rb") as f:
        raw = f.read(_MAX_BYTES)
    try:
        text = raw.decode()
    except UnicodeDecodeError as e:
        raise ValidationError(f"{path.name} is not UTF-8 text") from e
    lines = (line.strip() for line in text.splitlines())
    return next((line for line in lines if line and not line.startswith("#")), "")
