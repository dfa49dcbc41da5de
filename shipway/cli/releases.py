"""`shipway releases list` and `shipway rollback`: an app's releases, and deploying one again."""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer

from shipway.cli.options import AppOpt, DataOpt, JsonOpt
from shipway.cli.output import console, emit_json, table
from shipway.client.api import Api
from shipway.client.upload import released, settle
from shipway.errors import ClientError

releases = typer.Typer(help="An app's immutable releases.", no_args_is_help=True)


_VERSION = re.compile(r"[vV]?([0-9]{1,9})")
_ROLLBACK = "Rollback to "


@releases.command("list")
def releases_list(app: AppOpt, as_json: JsonOpt = False, data: DataOpt = None) -> None:
    """List an app's releases, newest first."""
    items = Api.find(data).get(f"/apps/{app}/releases")
    if as_json:
        emit_json(items)
        return
    rows = [
        {
            **r,
            "version": f"v{r['version']}",
            "commit": (r["commit"] or "")[:10],
            "digest": r["digest"][:19],
            "duration": seconds(r["duration"]),
        }
        for r in items
    ]
    table(
        rows,
        ["version", "description", "status", "stack", "commit", "digest", "duration", "created_at"],
        empty="No releases yet.",
    )


def seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}s"


def parse_version(raw: str) -> int:
    """A release version as `v3` or `3`."""
    match = _VERSION.fullmatch(raw.strip())
    if match is None:
        raise ClientError(f"--to must be a release version such as v3 or 3; got {raw!r}")
    return int(match[1])


def rollback(
    app: AppOpt,
    to: Annotated[
        str | None,
        typer.Option("--to", help="the release to go back to, e.g. v3; default the one before"),
    ] = None,
    as_json: JsonOpt = False,
    data: DataOpt = None,
) -> None:
    """Deploy an earlier release of production again, code and config as they were; wait
    until it is live, exit 1 if it fails."""
    version = parse_version(to) if to is not None else None
    api = Api.find(data)
    started = api.post(f"/apps/{app}/rollback", {} if version is None else {"to": version})
    if not as_json:
        console.print(f"Rolling back {app} to {_target(version, started)} …", highlight=False)
    deployment = settle(api, int(started["id"]))
    said, code = released(f"the rollback of {app}", deployment)
    if as_json:
        emit_json(deployment)
        if code:
            raise typer.Exit(code)
        return
    if code:
        raise ClientError(said)
    console.print(said, highlight=False)


def _target(version: int | None, started: dict[str, Any]) -> str:
    if version is not None:
        return f"v{version}"
    description = str(started.get("description") or "")
    if description.startswith(_ROLLBACK):
        return description.removeprefix(_ROLLBACK)
    return "the release before the live one"
