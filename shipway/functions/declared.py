"""A function as its author declares it (name, runtime, source, settings, triggers), and
reading the `functions:` of a manifest into such declarations. Light on imports: the CLI
reads manifests with it too."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shipway.errors import ValidationError

RUNTIMES = ("js", "python")
EXTENSIONS = {".js": "js", ".mjs": "js", ".cjs": "js", ".py": "python"}
NAME = re.compile(r"[a-z][a-z0-9_-]{0,62}")
#: The largest source a function may have, in bytes of UTF-8.
MAX_SOURCE = 1024 * 1024
DEFAULT_TIMEOUT = 30
DEFAULT_MEMORY_MB = 128
#: What a function of a manifest may say about itself.
SETTINGS = ("handler", "runtime", "timeout", "memory", "public", "environment", "events")


def check_name(name: object) -> str:
    if not isinstance(name, str) or NAME.fullmatch(name) is None:
        raise ValidationError(
            "function name must be 1-63 characters of a-z, 0-9, '_' and '-', starting with a "
            "letter",
            details={"name": name},
        )
    return name


def runtime_for(filename: str, runtime: str | None = None) -> str:
    """RUNTIME if given, else the one FILENAME's extension names."""
    if runtime is not None:
        if runtime not in RUNTIMES:
            raise ValidationError(
                f"runtime must be one of {', '.join(RUNTIMES)}; got {runtime!r}",
                details={"runtime": runtime},
            )
        return runtime
    for extension, found in EXTENSIONS.items():
        if filename.endswith(extension):
            return found
    raise ValidationError(
        f"cannot tell the runtime of {filename!r} from its extension "
        f"({', '.join(EXTENSIONS)}); give it with --runtime",
        details={"file": filename},
    )


@dataclass(frozen=True)
class Declared:
    """One function as the manifest declares it."""

    name: str
    runtime: str
    source: str
    timeout: int = DEFAULT_TIMEOUT
    memory_mb: int = DEFAULT_MEMORY_MB
    public: bool = False
    environment: Mapping[str, str] = field(default_factory=dict)
    triggers: Mapping[str, tuple[str, Any]] = field(default_factory=dict)


def parse(functions: object, where: str, read: Callable[[str], str]) -> list[Declared]:
    """The functions of a manifest's `functions:` mapping, each handler's source read with
    READ (given the handler's path as written; it raises OSError when it cannot);
    ValidationError names what is wrong, WHERE being the manifest's name. Only the shape is
    checked here: `manifest.check` compiles."""
    if functions is None:
        return []
    if not isinstance(functions, dict):
        raise ValidationError(f"{where}: `functions:` must map names to functions")
    declared = []
    for name, spec in functions.items():
        at = f"{where}: function {name!r}"
        check_name(name)
        if not isinstance(spec, dict) or not isinstance(spec.get("handler"), str):
            raise ValidationError(f"{at} needs `handler: FILE`")
        unknown = sorted(set(spec) - set(SETTINGS))
        if unknown:
            raise ValidationError(
                f"{at} has unknown settings {', '.join(map(str, unknown))}; "
                f"known: {', '.join(SETTINGS)}"
            )
        runtime = spec.get("runtime")
        if runtime is not None and not isinstance(runtime, str):
            raise ValidationError(f"{at}: `runtime` must be js or python")
        environment = spec.get("environment") or {}
        if not isinstance(environment, dict):
            raise ValidationError(f"{at}: `environment` must map names to values")
        public = spec.get("public", False)
        if not isinstance(public, bool):
            raise ValidationError(f"{at}: `public` must be true or false")
        try:
            source = read(spec["handler"])
        except (OSError, UnicodeDecodeError) as e:
            raise ValidationError(f"{at}: cannot read its handler {spec['handler']}: {e}") from e
        declared.append(
            Declared(
                name=name,
                runtime=runtime_for(spec["handler"], runtime),
                source=source,
                timeout=spec.get("timeout", DEFAULT_TIMEOUT),
                memory_mb=spec.get("memory", DEFAULT_MEMORY_MB),
                public=public,
                environment={str(k): str(v) for k, v in environment.items()},
                triggers=_events(at, spec.get("events") or []),
            )
        )
    return declared


def _events(at: str, events: object) -> dict[str, tuple[str, Any]]:
    """`events: [- NAME: {rate: SPEC, params: {...}}]` as triggers."""
    if not isinstance(events, list):
        raise ValidationError(f"{at}: `events` must be a list")
    found: dict[str, tuple[str, Any]] = {}
    for event in events:
        if not isinstance(event, dict) or len(event) != 1:
            raise ValidationError(f"{at}: each event is `- NAME: {{rate: SPEC, params: …}}`")
        [(trigger, spec)] = event.items()
        rate = spec.get("rate", spec.get("schedule")) if isinstance(spec, dict) else None
        if not isinstance(rate, str):
            raise ValidationError(f"{at}: event {trigger!r} needs `rate: SPEC`")
        found[str(trigger)] = (rate, spec.get("params", {}))
    return found
