"""Print results: Rich tables for people, JSON for programs.

In a terminal a table fits the window, cutting long cells with "…"; piped or redirected, it
is printed at its full width, every cell whole, so that grep, awk and files see everything.
Cells and field values are shown as written, never read as Rich markup."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

console = Console(soft_wrap=True)
errors = Console(stderr=True)

#: Wider than any table: the width a piped table is measured in.
UNLIMITED = 1_000_000


def emit_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def emit_line(data: Any) -> None:
    """DATA as one line of JSON, flushed at once: a stream's reader gets each as it comes."""
    print(json.dumps(data, default=str), flush=True)


def log_line(line: str) -> None:
    """A log's line as `--json` prints it: {"line": …}, one object a line."""
    emit_line({"line": line})


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str], *, empty: str) -> None:
    if not rows:
        console.print(empty, markup=False, highlight=False)
        return
    grid = Table(show_edge=False, header_style="bold")
    for column in columns:
        grid.add_column(column.upper().replace("_", " "))
    for row in rows:
        grid.add_row(*(Text("" if row.get(c) is None else str(row.get(c))) for c in columns))
    if console.is_terminal:
        console.print(grid)
        return
    natural = Measurement.get(console, console.options.update_width(UNLIMITED), grid).maximum
    Console(file=console.file, width=max(natural, 1), soft_wrap=True).print(grid)


def fields(data: dict[str, Any], keys: Sequence[str]) -> None:
    width = max(len(k) for k in keys)
    for key in keys:
        value = data.get(key)
        console.print(
            Text.assemble(
                (f"{key.replace('_', ' '):<{width}}", "bold"),
                "  ",
                "" if value is None else str(value),
            )
        )
