"""`shipway previews list|delete -a APP`: an app's preview environments, one per branch."""

from __future__ import annotations

import re
from typing import Annotated

import typer

from shipway.cli.options import AppOpt, DataOpt, JsonOpt
from shipway.cli.output import console, emit_json, table
from shipway.client.api import Api
from shipway.errors import ClientError

previews = typer.Typer(
    help="An app's preview environments (one per pushed branch).", no_args_is_help=True
)


#: What a preview may be called; checked here too, so ".." never becomes part of a URL.
_NAME = re.compile(r"[a-z0-9-]{1,64}")


@previews.command("list")
def previews_list(app: AppOpt, as_json: JsonOpt = False, data: DataOpt = None) -> None:
    """List an app's previews."""
    found = Api.find(data).get(f"/apps/{app}")
    items = [env for env in found["environments"] if env["kind"] != "production"]
    if as_json:
        emit_json(items)
    else:
        table(items, ["name", "branch", "url"], empty=f"{app} has no previews.")


@previews.command("delete")
def previews_delete(
    environment: Annotated[str, typer.Argument(metavar="ENV", help="the preview's name")],
    app: AppOpt,
    as_json: JsonOpt = False,
    data: DataOpt = None,
) -> None:
    """Remove a preview: its instances stop, its host answers 404, its deployments go."""
    if _NAME.fullmatch(environment) is None:
        raise ClientError(f"{environment!r} is not a preview name: a-z, 0-9 and '-'")
    Api.find(data).delete(f"/apps/{app}/environments/{environment}")
    if as_json:
        emit_json({"app": app, "environment": environment, "deleted": True})
    else:
        console.print(f"Removed the preview {environment} of {app}.", highlight=False)
