"""`shipway apps|tokens|orgs …`: the resource commands, thin over the REST API."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from shipway.cli.client import Api, CliError
from shipway.cli.output import console, emit_json, fields, table

DataOpt = Annotated[
    Path | None, typer.Option("--data", help="data dir of a local shipway", show_default=False)
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]

apps = typer.Typer(help="Create, list, inspect and delete apps.", no_args_is_help=True)
tokens = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)
orgs = typer.Typer(help="Organizations (tenants).", no_args_is_help=True)
releases = typer.Typer(help="An app's immutable releases.", no_args_is_help=True)


@apps.command("create")
def apps_create(
    name: str,
    plan: Annotated[str, typer.Option(help="free or pro")] = "free",
    region: Annotated[str, typer.Option(help="where the app's builds and instances run")] = "local",
    as_json: JsonOpt = False,
    data: DataOpt = None,
) -> None:
    """Create an app."""
    app = Api.find(data).post("/apps", {"name": name, "plan": plan, "region": region})
    if as_json:
        emit_json(app)
    else:
        console.print(f"Created [bold]{app['name']}[/] → {app['url']}")


@apps.command("list")
def apps_list(as_json: JsonOpt = False, data: DataOpt = None) -> None:
    """List your apps."""
    items = Api.find(data).get("/apps")
    if as_json:
        emit_json(items)
    else:
        table(items, ["name", "plan", "region", "url", "created_at"], empty="No apps yet.")


@apps.command("info")
def apps_info(name: str, as_json: JsonOpt = False, data: DataOpt = None) -> None:
    """Show one app."""
    app = Api.find(data).get(f"/apps/{name}")
    if as_json:
        emit_json(app)
        return
    fields(app, ["name", "plan", "region", "url", "created_at"])
    table(app["environments"], ["name", "kind", "branch", "url"], empty="No environments.")


@apps.command("set")
def apps_set(
    name: str,
    plan: Annotated[str | None, typer.Option(help="free or pro")] = None,
    build_network: Annotated[
        bool | None,
        typer.Option("--build-network/--no-build-network", help="let builds reach the network"),
    ] = None,
    as_json: JsonOpt = False,
    data: DataOpt = None,
) -> None:
    """Change an app's settings."""
    body = {
        k: v for k, v in {"plan": plan, "build_network": build_network}.items() if v is not None
    }
    if not body:
        raise CliError("nothing to change: pass --plan or --build-network/--no-build-network")
    app = Api.find(data).request("PATCH", f"/apps/{name}", json=body)
    if as_json:
        emit_json(app)
    else:
        fields(app, ["name", "plan", "region", "build_network"])


@apps.command("delete")
def apps_delete(
    name: str,
    yes: Annotated[bool, typer.Option("--yes", help="confirm the deletion")] = False,
    data: DataOpt = None,
) -> None:
    """Delete an app and everything it owns."""
    if not yes:
        raise CliError(f"deleting {name} removes all its releases; pass --yes to confirm")
    Api.find(data).delete(f"/apps/{name}")
    console.print(f"Deleted {name}.")


_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(raw: str) -> timedelta:
    """'90s', '15m', '12h', '30d' or '2w' as a timedelta."""
    match = _DURATION.match(raw.strip())
    if not match:
        raise CliError(f"--expires must look like 90s, 15m, 12h, 30d or 2w; got {raw!r}")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


@tokens.command("create")
def tokens_create(
    name: str,
    role: Annotated[str, typer.Option(help="owner, deployer or viewer")] = "deployer",
    expires: Annotated[str | None, typer.Option(help="lifetime, e.g. 30d; default never")] = None,
    as_json: JsonOpt = False,
    data: DataOpt = None,
) -> None:
    """Create a token; its secret is printed once."""
    body: dict[str, object] = {"name": name, "role": role}
    if expires:
        body["expires_in"] = int(parse_duration(expires).total_seconds())
    made = Api.find(data).post("/tokens", body)
    if as_json:
        emit_json(made)
    else:
        console.print(f"Token {made['id']} ({made['role']}): {made['token']}")
        console.print("Store it now: it is not shown again.", style="dim")


@tokens.command("list")
def tokens_list(as_json: JsonOpt = False, data: DataOpt = None) -> None:
    """List tokens (secrets are never shown)."""
    items = Api.find(data).get("/tokens")
    if as_json:
        emit_json(items)
    else:
        table(items, ["id", "name", "role", "prefix", "expires_at", "revoked_at"], empty="None.")


@tokens.command("revoke")
def tokens_revoke(token_id: int, data: DataOpt = None) -> None:
    """Revoke a token by id."""
    row = Api.find(data).delete(f"/tokens/{token_id}")
    console.print(f"Revoked token {row['id']} ({row['name']}).")


@orgs.command("create")
def orgs_create(name: str, as_json: JsonOpt = False, data: DataOpt = None) -> None:
    """Create an organization (platform owners only) and print its owner token."""
    made = Api.find(data).post("/orgs", {"name": name})
    if as_json:
        emit_json(made)
    else:
        console.print(f"Created organization {made['name']}; owner token: {made['owner_token']}")


@orgs.command("list")
def orgs_list(as_json: JsonOpt = False, data: DataOpt = None) -> None:
    """List organizations you can see."""
    items = Api.find(data).get("/orgs")
    if as_json:
        emit_json(items)
    else:
        table(items, ["id", "name", "plan", "created_at"], empty="None.")


@releases.command("list")
def releases_list(
    app: Annotated[str, typer.Option("--app", help="the app")],
    as_json: JsonOpt = False,
    data: DataOpt = None,
) -> None:
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
        ["version", "status", "stack", "commit", "digest", "duration", "created_at"],
        empty="No releases yet.",
    )


def seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}s"
