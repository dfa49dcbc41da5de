"""`shipway logs -a APP [-f]`: print a running app's log, or follow it as it is written."""

from __future__ import annotations

from typing import Annotated

import typer

from shipway.cli.options import AppOpt, DataOpt, LogJsonOpt
from shipway.cli.output import log_line
from shipway.client.api import Api
from shipway.client.follow import read_events

#: The most lines the log starts with; the server refuses more.
MAX_TAIL = 10_000


def logs(
    app: AppOpt,
    follow: Annotated[
        bool, typer.Option("-f", "--follow", help="keep printing new lines until interrupted")
    ] = False,
    tail: Annotated[
        int, typer.Option("--tail", min=0, max=MAX_TAIL, help="start with the last N lines")
    ] = 100,
    as_json: LogJsonOpt = False,
    data: DataOpt = None,
) -> None:
    """Print an app's log: its instances' output and what shipway did with them."""
    params = {"follow": "true" if follow else "false", "tail": str(tail)}
    on_line = log_line if as_json else typer.echo
    read_events(Api.find(data), f"/apps/{app}/logs", params, follow=follow, on_line=on_line)
