"""`shipway audit search` and `tail`: the activity log, newest first, or as it is written."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import typer

from shipway.cli.options import DataOpt, JsonOpt
from shipway.cli.output import console, emit_json, table
from shipway.client.api import Api
from shipway.client.follow import stream_events
from shipway.errors import ClientError
from shipway.logs.sse import SseEvent

audit = typer.Typer(help="The activity log: every action, searchable.", no_args_is_help=True)

#: PATH then an operator: = != > < ~ (contains) with a value, or ? (exists) / !? (absent).
_WHERE = re.compile(r"^([^=!<>~?]+?)\s*(!=|=|>|<|~|!\?|\?)\s*(.*)$", re.DOTALL)
_OPS = {"=": "EQ", "!=": "NE", ">": "GT", "<": "LT", "~": "CONTAINS", "?": "EXISTS", "!?": "EXISTS"}


def where(raw: str) -> dict[str, Any]:
    """`flag.gid=gid://plat/Flag/1` as a payload condition. The value is JSON when it parses
    as JSON (3, true, null, "3"), else the text as written."""
    match = _WHERE.match(raw.strip())
    if match is None:
        raise ClientError(
            f"--where must be PATH=VALUE (or !=, >, <, ~ for contains, PATH? for exists); "
            f"got {raw!r}"
        )
    path, op, text = match.group(1).strip(), match.group(2), match.group(3)
    if op in ("?", "!?"):
        if text:
            raise ClientError(f"--where {path}{op} takes no value; got {text!r}")
        return {"op": "EXISTS", "path": path.split("."), "value": op == "?"}
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    return {"op": _OPS[op], "path": path.split("."), "value": value}


ActionOpt = Annotated[str | None, typer.Option("--action", help="exact, or a prefix: deployment.*")]
SubjectOpt = Annotated[str | None, typer.Option("--subject", help="TYPE:ID, e.g. app:web")]
ActorOpt = Annotated[str | None, typer.Option("--actor", help="e.g. token:3 or system")]
TagOpt = Annotated[list[str] | None, typer.Option("--tag", help="carries this tag")]
WhereOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--where", help="payload condition PATH=VALUE (also !=, >, <, ~ contains; PATH? exists)"
    ),
]


def _filters(
    action: str | None,
    subject: str | None,
    actor: str | None,
    tag: list[str] | None,
    conditions: list[str] | None,
) -> dict[str, Any]:
    params: dict[str, Any] = {
        key: value
        for key, value in (("action", action), ("subject", subject), ("actor", actor))
        if value is not None
    }
    params["tag"] = tag or []
    params["where"] = [json.dumps(where(raw)) for raw in conditions or []]
    return params


@audit.command("tail")
def tail(
    action: ActionOpt = None,
    subject: SubjectOpt = None,
    actor: ActorOpt = None,
    tag: TagOpt = None,
    conditions: WhereOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON entry per line")] = False,
    data: DataOpt = None,
) -> None:
    """Print new entries matching the filters as they are recorded, until interrupted."""

    def show(event: SseEvent, entry: dict[str, Any]) -> int | None:
        if event.event != "entry":
            return None
        if as_json:
            typer.echo(json.dumps(entry))
        else:
            typer.echo(f"{entry['created_at']}  {entry['action']}  {entry['text']}")
        return int(entry["id"])

    params = _filters(action, subject, actor, tag, conditions)
    stream_events(Api.find(data), "/audit/tail", params, follow=True, on_event=show)


@audit.command("search")
def search(
    action: ActionOpt = None,
    subject: SubjectOpt = None,
    actor: ActorOpt = None,
    tag: TagOpt = None,
    conditions: WhereOpt = None,
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
    params = _filters(action, subject, actor, tag, conditions)
    for key, value in (("since", since), ("until", until), ("cursor", cursor)):
        if value is not None:
            params[key] = value
    params["limit"] = limit
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
