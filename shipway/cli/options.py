"""The options every command shares (`--data`, `--json`), declared once so each command
module takes them from here rather than from another command module."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DataOpt = Annotated[
    Path | None, typer.Option("--data", help="data dir of a local shipway", show_default=False)
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
