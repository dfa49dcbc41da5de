"""Print results: Rich tables for people, JSON for programs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console(soft_wrap=True)
errors = Console(stderr=True)


def emit_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str], *, empty: str) -> None:
    if not rows:
        console.print(empty)
        return
    grid = Table(show_edge=False, header_style="bold")
    for column in columns:
        grid.add_column(column.upper().replace("_", " "))
    for row in rows:
        grid.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    console.print(grid)


def fields(data: dict[str, Any], keys: Sequence[str]) -> None:
    width = max(len(k) for k in keys)
    for key in keys:
        value = data.get(key)
        console.print(
            f"[bold]{key.replace('_', ' '):<{width}}[/]  {'' if value is None else value}"
        )
