"""`shipway apps|tokens|orgs …`: the resource commands, thin over the REST API."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from shipway import durations
from shipway.cli.connect import show_connection, show_deliveries
from shipway.cli.git import set_up_remote
from shipway.cli.options import AppArg, AppOrOpt, DataOpt, JsonOpt, named
from shipway.cli.output import console, emit_json, errors, fields, table
from shipway.client.api import Api
from shipway.errors import ClientError

apps = typer.Typer(help="Create, list, inspect and delete apps.", no_args_is_help=True)
tokens = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)
orgs = typer.Typer(help="Organizations (tenants).", no_args_is_help=True)


@apps.command("create")
def apps_create(
    name: str,
    plan: Annotated[str, typer.Option(help="free or pro")] = "free",
    region: Annotated[str, typer.Option(help="where the app's builds and instances run")] = "local",
    remote: Annotated[
        str, typer.Option("--remote", help="the git remote to add when run in a git work tree")
    ] = "shipway",
    no_remote: Annotated[bool, typer.Option("--no-remote", help="add no git remote")] = False,
    as_json: JsonOpt = False,
    data: DataOpt = None,
) -> None:
    """Create an app; in a git work tree, add a remote to push it to (no token in its URL)."""
    api = Api.find(data)
    app = api.post("/apps", {"name": name, "plan": plan, "region": region})
    if as_json:
        emit_json(app)
    else:
        console.print(f"Created [bold]{app['name']}[/] → {app['url']}")
    if not no_remote:
        say = errors if as_json else console  # JSON keeps stdout to itself
        set_up_remote(api, app["name"], remote, data, lambda line: say.print(line, highlight=False))


@apps.command("list")
def apps_list(as_json: JsonOpt = False, data: DataOpt = None) -> None:
    """List your apps."""
    items = Api.find(data).get("/apps")
    if as_json:
        emit_json(items)
    else:
        table(items, ["name", "plan", "region", "url", "created_at"], empty="No apps yet.")


@apps.command("info")
def apps_info(
    name: AppArg = None, app: AppOrOpt = None, as_json: JsonOpt = False, data: DataOpt = None
) -> None:
    """Show an app: its settings, URLs, live releases and instances."""
    info = Api.find(data).get(f"/apps/{named(name, app)}/info")
    if as_json:
        emit_json(info)
        return
    settings = info["app"]
    fields(
        {
            **settings,
            "formation": " ".join(f"{p}={n}" for p, n in info["formation"].items()) or "none yet",
            "sleeps": _sleeps(settings["idle_timeout"]),
            "health check": f"GET {settings['health_path']} within {settings['health_timeout']} s",
        },
        ["name", "plan", "region", "url", "formation", "sleeps", "health check", "created_at"],
    )
    environments = [
        {
            **env,
            "release": f"v{env['release']['version']}" if env["release"] else "none live",
            "description": env["release"]["description"] if env["release"] else "",
        }
        for env in info["environments"]
    ]
    console.print()
    table(
        environments,
        ["name", "url", "release", "description", "state"],
        empty="No environments.",
    )
    console.print()
    show_connection(info.get("connection"))
    if info.get("deliveries"):
        show_deliveries(info["deliveries"], empty="")
    instances = [
        {**i, "uptime": uptime(i["uptime"])}
        for env in info["environments"]
        for i in env["instances"]
    ]
    if instances:
        console.print()
        table(instances, ["name", "state", "restarts", "uptime"], empty="")


def _sleeps(idle_timeout: int | None) -> str:
    return "never" if idle_timeout is None else f"after {idle_timeout} s without a request"


def uptime(seconds: float | None) -> str:
    """SECONDS as "42s", "12m 5s", "3h 4m" or "2d 3h"."""
    if seconds is None:
        return ""
    whole = int(seconds)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


@apps.command("set")
def apps_set(
    name: AppArg = None,
    app: AppOrOpt = None,
    plan: Annotated[str | None, typer.Option(help="free or pro")] = None,
    build_network: Annotated[
        bool | None,
        typer.Option("--build-network/--no-build-network", help="let builds reach the network"),
    ] = None,
    idle_timeout: Annotated[
        str | None,
        typer.Option(
            "--idle-timeout",
            help="stop web instances after this long without a request (300, 90s, 15m, 2h), "
            "start them at the next one; off: never",
        ),
    ] = None,
    health_path: Annotated[
        str | None,
        typer.Option("--health-path", help="the path a new instance must answer, e.g. /up"),
    ] = None,
    health_timeout: Annotated[
        str | None,
        typer.Option("--health-timeout", help="how long a new instance has to answer (30, 2m)"),
    ] = None,
    as_json: JsonOpt = False,
    data: DataOpt = None,
) -> None:
    """Change an app's settings; instances take new sleep and health settings at the next
    deploy."""
    chosen = named(name, app)
    given = {"plan": plan, "build_network": build_network, "health_path": health_path}
    body: dict[str, object] = {k: v for k, v in given.items() if v is not None}
    if idle_timeout is not None:
        off = idle_timeout.strip().lower() in ("off", "never", "none")
        body["idle_timeout"] = (
            None if off else whole_seconds(idle_timeout, "--idle-timeout", also=", or off")
        )
    if health_timeout is not None:
        body["health_timeout"] = whole_seconds(health_timeout, "--health-timeout")
    if not body:
        raise ClientError(
            "nothing to change: pass --plan, --build-network/--no-build-network, "
            "--idle-timeout, --health-path or --health-timeout"
        )
    changed = Api.find(data).request("PATCH", f"/apps/{chosen}", json=body)
    if as_json:
        emit_json(changed)
    else:
        shown = {**changed, "sleeps": _sleeps(changed["idle_timeout"])}
        keys = ["name", "plan", "region", "build_network", "sleeps", "health_path"]
        fields(shown, [*keys, "health_timeout"])


@apps.command("delete")
def apps_delete(
    name: AppArg = None,
    app: AppOrOpt = None,
    yes: Annotated[bool, typer.Option("--yes", help="confirm the deletion")] = False,
    as_json: JsonOpt = False,
    data: DataOpt = None,
) -> None:
    """Delete an app and everything it owns."""
    chosen = named(name, app)
    if not yes:
        raise ClientError(f"deleting {chosen} removes all its releases; pass --yes to confirm")
    Api.find(data).delete(f"/apps/{chosen}")
    if as_json:
        emit_json({"app": chosen, "deleted": True})
    else:
        console.print(f"Deleted {chosen}.", highlight=False)


def parse_duration(raw: str, flag: str = "--expires") -> timedelta:
    """'90s', '15m', '12h', '30d' or '2w' as a timedelta."""
    found = durations.parse(raw)
    if found is None:
        raise ClientError(f"{flag} must look like {durations.EXAMPLES}; got {raw!r}")
    return found


def whole_seconds(raw: str, flag: str, *, also: str = "") -> int:
    """A number of seconds given as '300' or as a duration such as '5m'."""
    found = durations.seconds(raw)
    if found is None:
        raise ClientError(f"{flag} must be seconds (300) or like 90s, 15m or 2h{also}; got {raw!r}")
    return found


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
def tokens_revoke(token_id: int, as_json: JsonOpt = False, data: DataOpt = None) -> None:
    """Revoke a token by id."""
    row = Api.find(data).delete(f"/tokens/{token_id}")
    if as_json:
        emit_json(row)
    else:
        console.print(f"Revoked token {row['id']} ({row['name']}).", highlight=False)


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
