"""`shipway addons …`: databases and caches attached to apps, thin over the REST API."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from shipway.cli.options import DataOpt, JsonOpt
from shipway.cli.output import console, emit_json, table
from shipway.cli.rollout import NoWaitOpt, roll_out
from shipway.client.api import Api

addons = typer.Typer(
    help="Databases (postgres) and caches (redis) attached to apps, with backups.",
    no_args_is_help=True,
)

AddonArg = Annotated[str, typer.Argument(metavar="ADDON", help="the add-on's name")]
COLUMNS = ["name", "kind", "app", "environment", "env_var", "created_at"]
BACKUP_COLUMNS = ["id", "bytes", "created_at"]


@addons.command("create")
def create(
    kind: Annotated[str, typer.Argument(metavar="KIND", help="postgres or redis")],
    app: Annotated[str, typer.Option("--app", "-a", help="the app to attach it to")],
    name: Annotated[
        str | None, typer.Option("--name", help="its name; default APP-KIND", show_default=False)
    ] = None,
    env_var: Annotated[
        str | None,
        typer.Option(
            "--as",
            help="the config var the app gets; default DATABASE_URL or REDIS_URL",
            show_default=False,
        ),
    ] = None,
    fork: Annotated[
        bool, typer.Option("--fork", help="previews start with a copy of production's data")
    ] = False,
    no_wait: NoWaitOpt = False,
    as_json: JsonOpt = False,
    data: DataOpt = None,
) -> None:
    """Provision a database or cache for an app; wait until the release with its URL is live."""
    api = Api.find(data)
    body: dict[str, Any] = {"kind": kind, "fork": fork}
    if name is not None:
        body["name"] = name
    if env_var is not None:
        body["as"] = env_var
    response = api.respond("POST", f"/apps/{app}/addons", json=body)
    made = response.json()
    done = f"Created {made['name']} ({kind}) and set {made['env_var']} on {app}"
    roll_out(
        api,
        response,
        made,
        done,
        f"the release of {app} with {made['name']}",
        wait=not no_wait,
        as_json=as_json,
        label="addon",
    )


@addons.command("list")
def list_addons(
    app: Annotated[
        str | None, typer.Option("--app", "-a", help="only this app's", show_default=False)
    ] = None,
    as_json: JsonOpt = False,
    data: DataOpt = None,
) -> None:
    """List the add-ons (previews' copies included)."""
    items = Api.find(data).get("/addons", params={"app": app} if app else None)
    if as_json:
        emit_json(items)
    else:
        table(items, COLUMNS, empty="No add-ons.")


@addons.command("info")
def info(addon: AddonArg, as_json: JsonOpt = False, data: DataOpt = None) -> None:
    """An add-on: its app, config var, server, previews' copies and backups."""
    found = Api.find(data).get(f"/addons/{addon}")
    if as_json:
        emit_json(found)
        return
    server = found["server"]
    if server.get("pid"):
        state = f"running (pid {server['pid']})"
    elif server.get("up"):
        state = f"up ({server['address']})"
    else:
        state = "down" + (f" ({server['address']}: {server['error']})" if "error" in server else "")
    for label, value in (
        ("Add-on", f"{found['name']} ({found['kind']})"),
        ("App", f"{found['app']} ({found['environment']}), as {found['env_var']}"),
        ("Server", state),
        ("Previews", ", ".join(found["previews"]) or "none"),
        ("Previews start", "with a copy of production's data" if found["fork"] else "empty"),
    ):
        console.print(f"{label + ':':<16}{value}", highlight=False)
    console.print()
    table(found["backups"], BACKUP_COLUMNS, empty="No backups.")


@addons.command("destroy")
def destroy(
    addon: AddonArg,
    confirm: Annotated[
        str | None,
        typer.Option("--confirm", help="the add-on's app, to confirm", show_default=False),
    ] = None,
    no_wait: NoWaitOpt = False,
    as_json: JsonOpt = False,
    data: DataOpt = None,
) -> None:
    """Detach an add-on and drop its data (and its previews' copies)."""
    api = Api.find(data)
    params = {"confirm": confirm} if confirm else None
    response = api.respond("DELETE", f"/addons/{addon}", params=params)
    roll_out(
        api,
        response,
        response.json(),
        f"Destroyed {addon}",
        f"the release without {addon}",
        wait=not no_wait,
        as_json=as_json,
        label="addon",
    )


@addons.command("backup")
def backup(addon: AddonArg, as_json: JsonOpt = False, data: DataOpt = None) -> None:
    """Back an add-on's data up into the data dir (pg_dump, or a Redis snapshot)."""
    made = Api.find(data).request("POST", f"/addons/{addon}/backups")
    if as_json:
        emit_json(made)
    else:
        console.print(f"Backed up {addon}: {made['id']} ({made['bytes']} bytes).", highlight=False)


@addons.command("backups")
def backups(addon: AddonArg, as_json: JsonOpt = False, data: DataOpt = None) -> None:
    """List an add-on's backups, newest first, with their sizes."""
    items = Api.find(data).get(f"/addons/{addon}/backups")
    if as_json:
        emit_json(items)
    else:
        table(items, BACKUP_COLUMNS, empty=f"No backups of {addon}.")


@addons.command("restore")
def restore(
    addon: AddonArg,
    backup_id: Annotated[str, typer.Argument(metavar="BACKUP", help="a backup's id")],
    as_json: JsonOpt = False,
    data: DataOpt = None,
) -> None:
    """Replace an add-on's data with one of its backups."""
    done = Api.find(data).request("POST", f"/addons/{addon}/backups/{backup_id}/restore")
    if as_json:
        emit_json(done)
    else:
        console.print(f"Restored {addon} from {backup_id}.", highlight=False)
