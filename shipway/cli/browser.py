"""`shipway open [-a APP] [--env ENV]`: print an app's URL, and open it in a browser where
there is one, as `heroku open` does."""

from __future__ import annotations

import os
import sys
import webbrowser
from collections.abc import Mapping
from typing import Annotated, Any

import typer

from shipway.cli.options import AppOpt, DataOpt
from shipway.cli.output import emit_json, errors
from shipway.client.api import Api
from shipway.errors import ClientError

PRODUCTION = "production"


def open_app(
    app: AppOpt,
    env: Annotated[
        str | None,
        typer.Option("--env", metavar="ENV", help="a preview environment; default production"),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help='print {"app", "environment", "url"}; open nothing')
    ] = False,
    data: DataOpt = None,
) -> None:
    """Print the app's URL and open it in your browser, when there is one to open it in."""
    found = Api.find(data).get(f"/apps/{app}")
    environment, url = url_of(found, env)
    if as_json:
        emit_json({"app": found["name"], "environment": environment, "url": url})
        return
    typer.echo(url)
    if not can_browse(sys.stdout.isatty(), os.environ, sys.platform):
        return
    try:
        opened = webbrowser.open(url)
    except webbrowser.Error:
        opened = False
    if not opened:
        errors.print(f"No browser could be opened; the URL is {url}", style="dim", markup=False)


def url_of(app: dict[str, Any], env: str | None) -> tuple[str, str]:
    """The environment ENV of APP (as GET /apps/APP shows it; default production) and its URL."""
    wanted = env or PRODUCTION
    for environment in app["environments"]:
        if environment["name"] == wanted or (env is None and environment["kind"] == PRODUCTION):
            return str(environment["name"]), str(environment["url"])
    if env is None:
        return PRODUCTION, str(app["url"])
    names = ", ".join(e["name"] for e in app["environments"]) or "none"
    raise ClientError(f"{app['name']} has no environment named {env!r}; it has: {names}")


def can_browse(tty: bool, environ: Mapping[str, str], platform: str) -> bool:
    """Whether a browser can be shown to whoever runs the command: only at a terminal (not in
    a pipe, a script or CI), and only with a display, a BROWSER of their choice, or on macOS
    and Windows, which always have one."""
    if not tty:
        return False
    if environ.get("BROWSER"):
        return True
    if platform in ("darwin", "win32"):
        return True
    return bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))
