"""The options every command shares (`--data`, `--json`, `-a/--app`), declared once so each
command module takes them from here rather than from another command module."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shipway.errors import ClientError

DataOpt = Annotated[
    Path | None, typer.Option("--data", help="data dir of a local shipway", show_default=False)
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
#: `--json` of the commands that print a log: each line becomes an object of its own.
LogJsonOpt = Annotated[bool, typer.Option("--json", help='one JSON object per line: {"line": …}')]

#: The app a command acts on, `-a web` or `--app web`, as heroku and flyctl take it.
AppOpt = Annotated[
    str, typer.Option("--app", "-a", metavar="APP", help="the app", show_default=False)
]

#: For the commands that also take the app as their argument (`apps info web`): either way.
AppArg = Annotated[
    str | None,
    typer.Argument(metavar="APP", help="the app, or give it with -a APP", show_default=False),
]
AppOrOpt = Annotated[
    str | None,
    typer.Option(
        "--app", "-a", metavar="APP", help="the app, if not given as APP", show_default=False
    ),
]


def named(argument: str | None, option: str | None) -> str:
    """The app named as the argument or with -a/--app: one of them, or both alike."""
    if argument and option and argument != option:
        raise ClientError(f"two apps named: {argument} and -a {option}; name one")
    chosen = argument or option
    if not chosen:
        raise ClientError("name the app: as the argument (APP) or with -a APP")
    return chosen
