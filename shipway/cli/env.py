"""`shipway env set|unset|list`: an app's config vars and secrets, thin over the REST API."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from shipway.cli.options import DataOpt, JsonOpt
from shipway.cli.output import console, emit_json, table
from shipway.client.api import Api
from shipway.errors import ClientError

env = typer.Typer(help="An app's config vars and encrypted secrets.", no_args_is_help=True)

AppOpt = Annotated[str, typer.Option("--app", help="the app")]
COLUMNS = ["key", "value", "secret", "updated_at"]


def parse_pairs(pairs: list[str]) -> dict[str, str]:
    """KEY=VALUE arguments as a mapping; the value is everything after the first '='."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ClientError(f"{pair!r} is not KEY=VALUE: put '=' between the name and the value")
        values[key] = value
    return values


def _change(app: str, body: dict[str, Any], data: DataOpt) -> list[dict[str, Any]]:
    listing: list[dict[str, Any]] = Api.find(data).request("PATCH", f"/apps/{app}/env", json=body)
    return listing


@env.command("set")
def env_set(
    pairs: Annotated[list[str], typer.Argument(metavar="KEY=VALUE", show_default=False)],
    app: AppOpt,
    secret: Annotated[bool, typer.Option("--secret", help="store the values encrypted")] = False,
    as_json: JsonOpt = False,
    data: DataOpt = None,
) -> None:
    """Set config vars; a key that exists takes the new value."""
    values = parse_pairs(pairs)
    items = _change(app, {"set": values, "secret": secret}, data)
    if as_json:
        emit_json(items)
    else:
        kind = "secret" if secret else "config var"
        console.print(f"Set {kind}{'s' if len(values) > 1 else ''} {', '.join(values)} on {app}.")


@env.command("unset")
def env_unset(
    keys: Annotated[list[str], typer.Argument(metavar="KEY", show_default=False)],
    app: AppOpt,
    as_json: JsonOpt = False,
    data: DataOpt = None,
) -> None:
    """Remove config vars; a key that is not set is skipped."""
    items = _change(app, {"unset": keys}, data)
    if as_json:
        emit_json(items)
    else:
        console.print(f"Unset {', '.join(keys)} on {app}.")


@env.command("list")
def env_list(app: AppOpt, as_json: JsonOpt = False, data: DataOpt = None) -> None:
    """List an app's config vars; secret values show as ***."""
    items = Api.find(data).get(f"/apps/{app}/env")
    if as_json:
        emit_json(items)
    else:
        table(items, COLUMNS, empty="No config vars.")
