"""`shipway audit search`: the activity log, newest first."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import typer

from shipway.cli.client import Api, CliError
from shipway.cli.output import console, emit_json, table
from shipway.cli.resources import DataOpt, JsonOpt

audit = typer.Typer(help="The activity log: every action, searchable.", no_args_is_help=True)

#: PATH then an operator: = != > < ~ (contains) with a value, or ? (exists) / !? (absent).
_WHERE = re.compile(r"^([^=!<>~?]+?)\s*(!=|=|>|<|~|!\?|\?)\s*(.*)$", re.DOTALL)
_OPS = {"=": "EQ", "!=": "NE", ">": "GT", "<": "LT", "~": "CONTAINS", "?": "EXISTS", "!?": "EXISTS"}


def where(raw: str) -> dict[str, Any]:
    """`flag.gid=gid://plat/Flag/1` as a payload condition. The value is JSON when it parses
    as JSON (3, true, null, "3"), else the text as written."""
    match = _WHERE.match(raw.strip())
    if match is None:
        raise CliError(
            f"--where must be PATH=VALUE (or !=, >, <, ~ for contains, PATH? for exists); "
            f"got {raw!r}"
        )
    path, op, text = match.group(1).strip(), match.group(2), match.group(3)
    if op in ("?", "!?"):
        if text:
            raise CliError(f"--where {path}{op} takes no value; got {text!r}")
        return {"op": "EXISTS", "path": path.split("."), "value": op == "?"}
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    return {"op": _OPS[op], "path": path.split("."), "value": value}


@audit.command("search")
def search(
    action: Annotated[
        str | None, typer.Option("--action", help="exact, or a prefix: deployment.*")
    ] = None,
    subject: Annotated[str | None, typer.Option("--subject", help="TYPE:ID, e.g. app:web")] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="e.g. token:3 or system")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="carries this tag")] = None,
    conditions: Annotated[
        list[str] | None,
        typer.Option(
            "--where",
            help="payload condition PATH=VALUE (also !=, >, <, ~ contains; PATH? exists)",
        ),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="ISO-8601, or a duration ago: 15m, 2h, 7d")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="ISO-8601, or ago")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 50,
    cursor: Annotated[str | None, typer.Option("--cursor", help="the next page's cursor")] = None,
    as_json: JsonOpt = False,
    data: DataOpt = None,
) -> None:
    """Entries matching every filter given, newest first."""
    params: dict[str, Any] = {
        key: value
        for key, value in (
            ("action", action),
            ("subject", subject),
            ("actor", actor),
            ("since", since),
            ("until", until),
            ("cursor", cursor),
        )
        if value is not None
    }
    params["limit"] = limit
    params["tag"] = tag or []
    params["where"] = [json.dumps(where(raw)) for raw in conditions or []]
    page = Api.find(data).get("/audit/entries", params=params)
    if as_json:
        emit_json(page)
        return
    table(
        page["items"],
        ["created_at", "action", "text"],
        empty="No entries match.",
    )
    if page["next"]:
        console.print(f"More: --cursor {page['next']}", style="dim")
