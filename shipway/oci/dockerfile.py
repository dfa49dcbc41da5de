"""What shipway reads in a Dockerfile: the images its stages start FROM, and how to pin them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

_FROM = re.compile(
    r"^(?P<head>\s*FROM\s+(?:--\S+\s+)*)(?P<ref>\S+)(?P<tail>(?:\s+AS\s+(?P<stage>\S+))?\s*)$",
    re.IGNORECASE,
)
_FROM_START = re.compile(r"^\s*FROM\s", re.IGNORECASE)
#: A FROM that names no image.
SCRATCH = "scratch"


@dataclass(frozen=True)
class Base:
    """An image a stage starts from, as the Dockerfile names it (`debian:bookworm-slim`)."""

    ref: str

    @property
    def floating(self) -> bool:
        """Whether the name follows a tag that moves: `latest`, said or implied."""
        if "@" in self.ref:
            return False
        last = self.ref.rsplit("/", 1)[-1]
        return ":" not in last or last.endswith(":latest")


def bases(text: str) -> list[Base]:
    """The images TEXT's stages start from, in order and once each: not `scratch`, not an
    earlier stage, not a name built from ARGs (podman resolves those itself)."""
    stages: set[str] = set()
    found: list[Base] = []
    for line in _logical_lines(text):
        match = _FROM.match(line)
        if match is None:
            continue
        ref = match["ref"]
        if match["stage"]:
            stages.add(match["stage"].lower())
        if ref.lower() == SCRATCH or ref.lower() in stages or "$" in ref:
            continue
        if all(b.ref != ref for b in found):
            found.append(Base(ref))
    return found


def pin(text: str, resolved: dict[str, str]) -> str:
    """TEXT with each FROM of a name in RESOLVED starting from the image it resolved to."""
    out = []
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        match = _FROM.match(body)
        if match is not None and match["ref"] in resolved:
            ending = line[len(body) :]
            line = f"{match['head']}{resolved[match['ref']]}{match['tail']}{ending}"
        out.append(line)
    return "".join(out)


def labelled(text: str, labels: dict[str, str]) -> str:
    """TEXT with one LABEL instruction more at its end, which the last stage gets."""
    return f"{text.rstrip()}\n{_label(labels)}\n"


def scoped(text: str, labels: dict[str, str]) -> str:
    """TEXT with a LABEL instruction of LABELS right after each FROM: every step after it has
    another parent than the same step of a Dockerfile scoped otherwise, so podman's layer
    cache is never shared between scopes (another app's build scripts made those layers)."""
    out: list[str] = []
    in_from = False
    for line in text.splitlines():
        out.append(line)
        if not in_from and _FROM_START.match(line):
            in_from = True
        if in_from and not line.rstrip().endswith("\\"):
            out.append(_label(labels))
            in_from = False
    return "\n".join(out) + "\n"


def _label(labels: dict[str, str]) -> str:
    return "LABEL " + " ".join(f"{key}={json.dumps(value)}" for key, value in labels.items())


def _logical_lines(text: str) -> list[str]:
    """Lines with backslash continuations joined and comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        if raw.lstrip().startswith("#") and not pending:
            continue
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        lines.append(pending + raw)
        pending = ""
    if pending:
        lines.append(pending)
    return lines
