"""`shipway env set|unset|list`: an app's config vars and secrets, thin over the REST API."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from shipway.cli.options import AppOpt, DataOpt, JsonOpt
from shipway.cli.output import emit_json, table
from shipway.cli.rollout import NoWaitOpt, roll_out
from shipway.client.api import Api
from shipway.errors import ClientError

env = typer.Typer(help="An app's config vars and encrypted secrets.", no_args_is_help=True)

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


def _change(
    app: str, body: dict[str, Any], done: str, *, wait: bool, as_json: bool, data: DataOpt
) -> None:
    """Make the change and report it, waiting (unless told not to) for the release it
    started, as a push waits for its own: DONE says what was changed."""
    api = Api.find(data)
    response = api.respond("PATCH", f"/apps/{app}/env", json=body)
    what = f"the config change of {app}"
    roll_out(api, response, response.json(), done, what, wait=wait, as_json=as_json, label="vars")


@env.command("set")
def env_set(
    pairs: Annotated[list[str], typer.Argument(metavar="KEY=VALUE", show_default=False)],
    app: AppOpt,
    secret: Annotated[bool, typer.Option("--secret", help="store the values encrypted")] = False,
    no_wait: NoWaitOpt = False,
    as_json: JsonOpt = False,
    data: DataOpt = None,
) -> None:
    """Set config vars, a key that exists taking the new value; wait until the release with
    them is live, exit 1 if it fails."""
    values = parse_pairs(pairs)
    kind = "secret" if secret else "config var"
    done = f"Set {kind}{'s' if len(values) > 1 else ''} {', '.join(values)} on {app}"
    body = {"set": values, "secret": secret}
    _change(app, body, done, wait=not no_wait, as_json=as_json, data=data)


@env.command("unset")
def env_unset(
    keys: Annotated[list[str], typer.Argument(metavar="KEY", show_default=False)],
    app: AppOpt,
    no_wait: NoWaitOpt = False,
    as_json: JsonOpt = False,
    data: DataOpt = None,
) -> None:
    """Remove config vars, a key that is not set being skipped; wait until the release
    without them is live, exit 1 if it fails."""
    done = f"Unset {', '.join(keys)} on {app}"
    _change(app, {"unset": keys}, done, wait=not no_wait, as_json=as_json, data=data)


@env.command("list")
def env_list(app: AppOpt, as_json: JsonOpt = False, data: DataOpt = None) -> None:
    """List an app's config vars; secret values show as ***."""
    items = Api.find(data).get(f"/apps/{app}/env")
    if as_json:
        emit_json(items)
    else:
        table(items, COLUMNS, empty="No config vars.")
