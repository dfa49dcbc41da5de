"""`shipway builds …`: list an app's builds, cancel one, print or follow a build's log."""

from __future__ import annotations

from typing import Annotated

import typer

from shipway.cli.options import AppOpt, AppOrOpt, DataOpt, JsonOpt
from shipway.cli.output import console, emit_json, emit_line, errors, log_line, table
from shipway.client.api import Api
from shipway.client.follow import read_log
from shipway.errors import ClientError

builds = typer.Typer(help="List builds and read their logs.", no_args_is_help=True)

FollowOpt = Annotated[
    bool, typer.Option("-f", "--follow", help="keep printing new lines until the build ends")
]


@builds.command("list")
def builds_list(app: AppOpt, as_json: JsonOpt = False, data: DataOpt = None) -> None:
    """List an app's builds, newest first."""
    items = Api.find(data).get(f"/apps/{app}/builds")
    if as_json:
        emit_json(items)
    else:
        columns = ["id", "status", "commit", "stack", "pool", "builder", "duration", "created_at"]
        table(items, columns, empty="No builds yet.")
        for item in items:
            if item.get("waiting"):
                console.print(f"Build {item['id']} waits: {item['waiting']}", style="yellow")


@builds.command("cancel")
def builds_cancel(build_id: int, as_json: JsonOpt = False, data: DataOpt = None) -> None:
    """Cancel a queued or running build; its sandbox is killed at once."""
    build = Api.find(data).post(f"/builds/{build_id}/cancel", {})
    if as_json:
        emit_json(build)
    else:
        console.print(f"Build {build_id} cancelled.")


@builds.command("logs")
def builds_logs(
    build_id: Annotated[
        int | None,
        typer.Argument(
            help="the build; without it, the newest build of -a APP", show_default=False
        ),
    ] = None,
    app: AppOrOpt = None,
    follow: FollowOpt = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help='one JSON object per line, {"line": …}; the last says how it ended'
        ),
    ] = False,
    data: DataOpt = None,
) -> None:
    """Print a build's log; with -f, follow it live until the build ends."""
    api = Api.find(data)
    if build_id is None:
        build_id = _newest(api, app)
    if as_json:
        status = read_log(api, build_id, follow=follow, on_line=log_line)
        if status is not None:
            emit_line({"build": build_id, "status": status})
        if status == "failed":
            raise typer.Exit(1)
        return
    status = read_log(api, build_id, follow=follow, on_line=typer.echo)
    if status == "failed":
        raise ClientError(f"build {build_id} failed")
    if status in ("cancelled", "superseded"):
        errors.print(f"build {build_id} was {status}", style="dim", highlight=False)


def _newest(api: Api, app: str | None) -> int:
    if not app:
        raise ClientError(
            "name the build (BUILD_ID), or the app whose newest build to show (-a APP)"
        )
    items = api.get(f"/apps/{app}/builds")
    if not items:
        raise ClientError(f"{app} has no builds yet")
    return int(items[0]["id"])
