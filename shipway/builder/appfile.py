"""shipway.yml: what an app's source says about its own build, and the functions it declares.

    build:
      private: [dependencies]   # hide the output of these steps from users
    functions:
      report:
        handler: functions/report.js
        events:
          - daily: {rate: "0 6 * * *"}

A private step runs as usual, but its log shows one placeholder line in place of its
output: for an install that prints the URL of a private package index, say. The only step
that runs commands today is `dependencies` (pip or npm install).

The functions are those of `shipway fn apply` (see shipway.functions.declared); their
handlers are files of the app's source. They go live with the app's production release.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from shipway.errors import ValidationError
from shipway.functions import declared
from shipway.functions.declared import Declared

NAME = "shipway.yml"
#: Build steps that run commands, and so have output to hide.
STEPS = ("dependencies",)
_KEYS = {"build", "functions"}
_BUILD_KEYS = {"private"}
#: A larger shipway.yml is refused rather than parsed.
MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class AppFile:
    private: frozenset[str] = frozenset()
    functions: tuple[Declared, ...] = ()


def read(source: Path) -> AppFile:
    """The settings of SOURCE's shipway.yml (none when it has none); ValidationError names
    what is wrong with one that cannot be used."""
    path = source / NAME
    if not path.is_file():
        return AppFile()
    if path.stat().st_size > MAX_BYTES:
        raise ValidationError(f"{NAME} is larger than {MAX_BYTES // 1024} KiB")
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ValidationError(f"{NAME} cannot be parsed: {e}") from e
    if data is None:
        return AppFile()
    top = _mapping(data, NAME)
    _known(top, _KEYS, NAME)
    build = _mapping(top.get("build") or {}, f"{NAME}: build")
    _known(build, _BUILD_KEYS, f"{NAME}: build")
    private = build.get("private") or []
    if not isinstance(private, list) or not all(isinstance(s, str) for s in private):
        raise ValidationError(f"{NAME}: build.private must be a list of step names")
    unknown = sorted(set(private) - set(STEPS))
    if unknown:
        raise ValidationError(
            f"{NAME}: build.private names unknown steps {', '.join(unknown)}; "
            f"the steps are: {', '.join(STEPS)}"
        )
    functions = declared.parse(top.get("functions"), NAME, _reader(source))
    return AppFile(private=frozenset(private), functions=tuple(functions))


def _reader(source: Path) -> Callable[[str], str]:
    """Reads a handler: a file of SOURCE, never one outside it (through `..` or a link)."""
    root = source.resolve()

    def read(handler: str) -> str:
        path = (root / handler).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise FileNotFoundError(f"{handler} is not a file of the app's source")
        with path.open("rb") as f:
            data = f.read(declared.MAX_SOURCE + 1)
        if len(data) > declared.MAX_SOURCE:
            raise ValidationError(
                f"the handler {handler} is larger than {declared.MAX_SOURCE // 1024} KiB"
            )
        return data.decode()

    return read


def _mapping(value: object, where: str) -> dict[str, object]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ValidationError(f"{where} must be a mapping of names to settings")
    return value


def _known(mapping: dict[str, object], known: set[str], where: str) -> None:
    unknown = sorted(set(mapping) - known)
    if unknown:
        raise ValidationError(
            f"{where}: unknown setting {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
