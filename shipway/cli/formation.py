"""`shipway scale -a APP web=3 worker=1`: how many instances of each process type run."""

from __future__ import annotations

import re
from typing import Annotated

import typer

from shipway.cli.options import AppOpt, DataOpt, JsonOpt
from shipway.cli.output import emit_json, table
from shipway.client.api import Api
from shipway.errors import ClientError

_COUNT = re.compile(r"[0-9]{1,6}")


def parse_counts(pairs: list[str]) -> dict[str, int]:
    """PROCESS=COUNT arguments as a mapping; the server checks names and ranges."""
    counts: dict[str, int] = {}
    for pair in pairs:
        process, sep, raw = pair.partition("=")
        if not sep or not process:
            raise ClientError(f"{pair!r} is not PROCESS=COUNT: write it like web=2")
        if _COUNT.fullmatch(raw) is None:
            raise ClientError(f"{pair!r}: the count must be a whole number, like web=2")
        counts[process] = int(raw)
    return counts


def scale(
    app: AppOpt,
    pairs: Annotated[
        list[str] | None, typer.Argument(metavar="[PROCESS=COUNT]...", show_default=False)
    ] = None,
    as_json: JsonOpt = False,
    data: DataOpt = None,
) -> None:
    """Set how many instances of each process type run (web=3 worker=0), or show them."""
    counts = parse_counts(pairs or [])
    api = Api.find(data)
    path = f"/apps/{app}/formation"
    formation = api.request("PATCH", path, json=counts) if counts else api.get(path)
    if as_json:
        emit_json(formation)
        return
    rows = [{"process": process, "instances": n} for process, n in formation.items()]
    table(rows, ["process", "instances"], empty=f"{app} has no process types yet.")
