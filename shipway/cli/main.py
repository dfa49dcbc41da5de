"""The `shipway` command: Typer app, global error handling."""

from __future__ import annotations

import copy
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import httpx
import typer
from typer.main import get_command_name

from shipway import __version__
from shipway.cli import connect, local
from shipway.cli.addons import addons
from shipway.cli.audit import audit
from shipway.cli.browser import open_app
from shipway.cli.builds import builds
from shipway.cli.deploy import deploy
from shipway.cli.env import env
from shipway.cli.fleet import builder, builders, fleet
from shipway.cli.formation import scale
from shipway.cli.functions import fn
from shipway.cli.git import git_credential, install_helper
from shipway.cli.images import images
from shipway.cli.logs import logs
from shipway.cli.options import DataOpt, JsonOpt
from shipway.cli.output import console, emit_json, errors
from shipway.cli.previews import previews
from shipway.cli.releases import releases, rollback
from shipway.cli.resources import apps, orgs, tokens
from shipway.client.api import Api
from shipway.client.login import save_login
from shipway.errors import ShipwayError
from shipway.settings import Settings

app = typer.Typer(
    name="shipway",
    help="Turn a git push into a live, isolated deployment on your own machines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(apps, name="apps")
apps.command("connect")(connect.apps_connect)
apps.command("disconnect")(connect.apps_disconnect)
apps.command("deliveries")(connect.apps_deliveries)
app.add_typer(tokens, name="tokens")
app.add_typer(orgs, name="orgs")
app.add_typer(releases, name="releases")
app.add_typer(builds, name="builds")
app.add_typer(env, name="env")
app.add_typer(addons, name="addons")
app.add_typer(previews, name="previews")
app.add_typer(fn, name="fn")
app.add_typer(audit, name="audit")
app.add_typer(builders, name="builders")
app.add_typer(fleet, name="fleet")
app.add_typer(images, name="images")
app.command("builder")(builder)
app.command()(deploy)
app.command()(rollback)
app.command()(scale)
app.command()(logs)
app.command("open")(open_app)
app.command("git-credential")(git_credential)


def _version(value: bool) -> None:
    if value:
        console.print(f"shipway {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version")
    ] = False,
) -> None:
    """shipway: git push → live."""


@app.command()
def up(
    data: Annotated[Path | None, typer.Option(help="data dir (env SHIPWAY_DATA)")] = None,
    port: Annotated[int | None, typer.Option(help="control port (env SHIPWAY_PORT; 8080)")] = None,
    host: Annotated[
        str | None, typer.Option(help="address to listen on (env SHIPWAY_HOST; 127.0.0.1)")
    ] = None,
    base_domain: Annotated[
        str | None, typer.Option(help="apps answer at APP.DOMAIN (env SHIPWAY_BASE_DOMAIN)")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="PostgreSQL URL (env SHIPWAY_DATABASE_URL; SQLite)")
    ] = None,
    temporal_address: Annotated[
        str | None, typer.Option(help="use this Temporal (env SHIPWAY_TEMPORAL_ADDRESS)")
    ] = None,
    nats_url: Annotated[
        str | None, typer.Option(help="use this NATS (env SHIPWAY_NATS_URL)")
    ] = None,
    builders: Annotated[
        int | None,
        typer.Option(help="builders to run on this machine, 0 for none (env SHIPWAY_BUILDERS; 1)"),
    ] = None,
    unsafe_shared_network: Annotated[
        bool,
        typer.Option(
            "--unsafe-shared-network",
            help="let sandboxes share the host's network where they cannot have their own "
            "(env SHIPWAY_UNSAFE_SHARED_NETWORK): unsafe with more than one tenant",
        ),
    ] = False,
    detach: Annotated[bool, typer.Option("-d", "--detach", help="run in the background")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="print what the banner shows as JSON, once ready")
    ] = False,
) -> None:
    """Run shipway on this machine: Temporal, NATS, the store, the API and the workers."""
    flags = {
        "data_dir": data,
        "port": port,
        "host": host,
        "base_domain": base_domain,
        "database_url": database_url,
        "temporal_address": temporal_address,
        "nats_url": nats_url,
        "builders": builders,
        "unsafe_shared_network": True if unsafe_shared_network else None,
    }
    settings = Settings.load(flags)
    if detach:
        argv = [a for a in sys.argv[2:] if a not in ("-d", "--detach", "--json")]
        local.up_detached(settings, argv, as_json=as_json)
    else:
        local.up_foreground(settings, as_json=as_json)


@app.command()
def down(
    data: DataOpt = None,
    keep_apps: Annotated[
        bool,
        typer.Option(
            "--keep-apps",
            help="stop the control plane only: apps keep serving (to upgrade shipway)",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Stop the shipway running from the data dir, with its apps unless --keep-apps."""
    stopped = local.down(data, keep_apps=keep_apps)
    if as_json:
        emit_json(stopped.as_dict())
    else:
        console.print(stopped.said(), highlight=False)


@app.command(hidden=True)
def node(
    temporal: Annotated[str, typer.Option(help="the control plane's Temporal")],
    nats: Annotated[str, typer.Option(help="the control plane's NATS")],
    listen_fd: Annotated[int, typer.Option(help="the bound public socket")],
) -> None:
    """This machine's data plane; `shipway up` starts it."""
    local.node(Settings.load(), temporal, nats, listen_fd)


@app.command()
def status(
    as_json: JsonOpt = False,
    deep: Annotated[
        bool, typer.Option("--deep", help="also run a probe workflow through the workers")
    ] = False,
    data: DataOpt = None,
) -> None:
    """Show whether shipway runs, and the state and address of each part."""
    local.status(data, as_json, deep)


@app.command()
def login(
    url: Annotated[str, typer.Option(help="the server, e.g. https://shipway.example.com")],
    token: Annotated[str, typer.Option(help="an API token", prompt=True, hide_input=True)],
    no_git: Annotated[
        bool, typer.Option("--no-git", help="do not make shipway git's credential helper for it")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Save a remote server and token for later commands, and for git's pushes to it."""
    server = url.rstrip("/")
    who = Api(server, token).post("/login", {})
    path = save_login(url, token)
    if as_json:
        emit_json({**who, "url": server, "saved_to": str(path)})
    else:
        console.print(
            f"Logged in to {url} as {who['actor']} ({who['role']} of "
            f"{who['organization']}); saved to {path}.",
            highlight=False,
        )
    if not no_git:
        say = errors if as_json else console  # JSON keeps stdout to itself
        install_helper(server, lambda line: say.print(line, highlight=False))


def for_args(args: list[str]) -> typer.Typer:
    """The app with only the command or group that ARGS's first word names, so that a run
    builds only its own branch of the command tree (building all of it takes 0.07 s, a third
    of a command's time); the whole app when the first word names none (help, --version, a
    typo)."""
    name = args[0] if args else ""
    groups = [group for group in app.registered_groups if group.name == name]
    commands = [
        command
        for command in app.registered_commands
        if command.callback is not None
        if (command.name or get_command_name(command.callback.__name__)) == name
    ]
    if not groups and not commands:
        return app
    narrow = copy.copy(app)
    narrow.registered_groups = groups
    narrow.registered_commands = commands
    return narrow


def run() -> None:
    """Entry point: every failure becomes one `error: …` line and exit code 1."""
    try:
        code = for_args(sys.argv[1:])(standalone_mode=False)
    except (ShipwayError, httpx.HTTPError) as e:
        errors.print(f"error: {e}", markup=False, highlight=False, soft_wrap=True)
        leave(1)
    except typer.Exit as e:
        leave(e.exit_code)
    except typer.Abort:
        leave(1)
    except typer.TyperException as e:
        show = getattr(e, "show", None)
        if show is not None:
            show()
        else:
            errors.print(f"error: {e.message}", markup=False, highlight=False)
        leave(e.exit_code)
    except KeyboardInterrupt:
        leave(130)
    leave(code if isinstance(code, int) else 0)


def leave(code: int) -> NoReturn:
    """Exit with CODE. A process that loaded Temporal's SDK core (`up`, the node, a builder)
    leaves without the interpreter's teardown once its own is done: the core's Rust threads
    can call into Python while it finalizes, which aborts the process with SIGABRT after its
    work has ended well (temporalio/sdk-python#300). Its log handlers and streams are flushed
    first; all else it held was closed by the command itself."""
    if "temporalio.bridge.temporal_sdk_bridge" in sys.modules:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
