"""Parse a Procfile: `type: command` per line."""

from __future__ import annotations

import re

from shipway.errors import ValidationError

_LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+)$")


def parse(text: str) -> dict[str, str]:
    """Process types and their commands; blank lines and # comments are skipped."""
    processes: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise ValidationError(f"Procfile line {number} is not `type: command`: {raw!r}")
        processes[match[1]] = match[2].strip()
    return processes
