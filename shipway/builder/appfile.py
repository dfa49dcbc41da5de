"""shipway.yml: what an app's source says about its own build, and the functions it declares.

    build:
      private: [dependencies]   # hide the output of these steps from users
      needs: [eu-registry]      # what the build needs; dispatch rules pick its pool by it
      commands:                 # the build step, run over the source after the install
        - python manage.py collectstatic --noinput
      dockerfile: docker/web.Dockerfile   # build this with podman (a top-level Dockerfile is
      context: .                          #   found without it), from this directory,
      target: production                  #   to this stage,
      args: [NODE_ENV, NPM_TOKEN]         #   passing these config vars (secrets as secrets)
    functions:
      report:
        handler: functions/report.js
        events:
          - daily: {rate: "0 6 * * *"}

A private step runs as usual, but its log shows one placeholder line in place of its
output: for an install that prints the URL of a private package index, say. The steps that
run commands are `dependencies` (pip or npm install) and `build` (build.commands, or a Node
app's `npm run build`, which build.commands replace).

The functions are those of `shipway fn apply` (see shipway.functions.declared); their
handlers are files of the app's source. They go live with the app's production release.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from shipway.errors import ValidationError
from shipway.functions import declared
from shipway.functions.declared import Declared

NAME = "shipway.yml"
#: Build steps that run commands, and so have output to hide.
STEPS = ("dependencies", "build")
_KEYS = {"build", "functions"}
_BUILD_KEYS = {"private", "needs", "commands", "dockerfile", "context", "target", "args"}
#: A config var's name, as build.args gives it.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
#: A larger shipway.yml is refused rather than parsed.
MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class AppFile:
    private: frozenset[str] = frozenset()
    #: What the build needs (`build: {needs: [eu-registry]}`), which dispatch rules look at.
    needs: frozenset[str] = frozenset()
    #: The build step's shell commands (`build: {commands: [...]}`), run in order.
    commands: tuple[str, ...] = ()
    functions: tuple[Declared, ...] = ()
    #: The Dockerfile to build, the build's context directory and its target stage: paths
    #: relative to the source's top.
    dockerfile: str | None = None
    context: str = "."
    target: str | None = None
    #: The config vars a Dockerfile build gets: plain ones as build args, secret ones as
    #: build secrets (RUN --mount=type=secret,id=NAME).
    args: tuple[str, ...] = ()


def read(source: Path) -> AppFile:
    """The settings of SOURCE's shipway.yml (none when it has none); ValidationError names
    what is wrong with one that cannot be used."""
    path = source / NAME
    if not path.is_file():
        return AppFile()
    if path.stat().st_size > MAX_BYTES:
        raise ValidationError(f"{NAME} is larger than {MAX_BYTES // 1024} KiB")
    return _parse(path.read_bytes(), _reader(source))


def needs_in(archive: Path) -> frozenset[str]:
    """What the shipway.yml at the top of the source ARCHIVE (a tar) says the build needs;
    nothing when it has none or cannot be read (the build reports a bad one)."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                if member.name.removeprefix("./") == NAME and member.isfile():
                    if member.size > MAX_BYTES:
                        return frozenset()
                    raw = tar.extractfile(member)
                    return _parse(raw.read(), None).needs if raw else frozenset()
    except (OSError, tarfile.TarError, ValidationError):
        pass
    return frozenset()


def _parse(raw: bytes, read: Callable[[str], str] | None) -> AppFile:
    """READ reads handlers; None skips the functions."""
    try:
        data = yaml.safe_load(raw.decode())
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
    needs = build.get("needs") or []
    if not isinstance(needs, list) or not all(isinstance(n, str) and n for n in needs):
        raise ValidationError(f"{NAME}: build.needs must be a list of words, e.g. [eu-registry]")
    commands = build.get("commands") or []
    if not isinstance(commands, list) or not all(_command(c) for c in commands):
        raise ValidationError(
            f"{NAME}: build.commands must be a list of shell commands, "
            'e.g. ["python manage.py collectstatic --noinput"]'
        )
    functions = declared.parse(top.get("functions"), NAME, read) if read is not None else []
    target = build.get("target")
    if target is not None and not (isinstance(target, str) and _word(target)):
        raise ValidationError(f"{NAME}: build.target must name a stage of the Dockerfile")
    args = build.get("args") or []
    if not isinstance(args, list) or not all(isinstance(a, str) and _NAME.match(a) for a in args):
        raise ValidationError(
            f"{NAME}: build.args must be a list of config var names, e.g. [NODE_ENV, NPM_TOKEN]"
        )
    return AppFile(
        private=frozenset(private),
        needs=frozenset(needs),
        commands=tuple(commands),
        functions=tuple(functions),
        dockerfile=_relative(build.get("dockerfile"), "build.dockerfile"),
        context=_relative(build.get("context"), "build.context") or ".",
        target=target,
        args=tuple(dict.fromkeys(args)),
    )


def _word(value: str) -> bool:
    return bool(value) and all(c.isalnum() or c in "-_." for c in value)


def _relative(value: object, key: str) -> str | None:
    """A path inside the source, as shipway.yml gave it; None when not given."""
    if value is None:
        return None
    path = Path(value) if isinstance(value, str) and value and "\0" not in value else None
    if path is None or path.is_absolute() or ".." in path.parts:
        raise ValidationError(f"{NAME}: {key} must be a path inside the app's source")
    return str(path)


def _command(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip()) and "\0" not in value


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
