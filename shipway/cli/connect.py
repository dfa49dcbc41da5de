"""`shipway apps connect|disconnect|deliveries`: deploy an app from its repository on a git
host, by the host's webhooks."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from shipway.cli.options import AppArg, AppOrOpt, DataOpt, JsonOpt, named
from shipway.cli.output import console, emit_json, fields, table
from shipway.client.api import Api

PROVIDERS = "github, gitlab, bitbucket or gitea (Gitea and Forgejo)"
#: What each host calls the secret, for the hint printed after connecting.
_WHERE = {
    "github": "Settings → Webhooks → Add webhook: content type application/json, this secret",
    "gitlab": "Settings → Webhooks: this secret as the secret token",
    "bitbucket": "Repository settings → Webhooks: this secret",
    "gitea": "Settings → Webhooks → Add webhook (Gitea or Forgejo): content type "
    "application/json, this secret",
}


def apps_connect(
    provider: Annotated[str, typer.Option(help=PROVIDERS)],
    repo: Annotated[str, typer.Option(help="OWNER/NAME on the host (GitLab: GROUP/…/NAME)")],
    secret: Annotated[
        str,
        typer.Option(
            envvar="SHIPWAY_WEBHOOK_SECRET",
            help="the webhook secret the host signs deliveries with (env SHIPWAY_WEBHOOK_SECRET)",
        ),
    ],
    token: Annotated[
        str | None,
        typer.Option(
            envvar="SHIPWAY_HOST_TOKEN",
            help="a host API token, to fetch private sources and report commit statuses "
            "(env SHIPWAY_HOST_TOKEN)",
        ),
    ] = None,
    api_url: Annotated[
        str | None,
        typer.Option(
            "--api-url",
            help="the host's API root for a self-hosted host, e.g. https://git.example.com/api/v1",
        ),
    ] = None,
    name: AppArg = None,
    app: AppOrOpt = None,
    as_json: JsonOpt = False,
    data: DataOpt = None,
) -> None:
    """Connect an app to its repository: pushes deploy, pull requests get previews."""
    name = named(name, app)
    body = {"provider": provider, "repo": repo, "secret": secret, "token": token}
    made = Api.find(data).request(
        "PUT", f"/apps/{name}/connection", json={**body, "api_url": api_url}
    )
    if as_json:
        emit_json(made)
        return
    console.print(f"Connected {name} to {made['provider']} {made['repo']}.", highlight=False)
    console.print(f"Webhook URL: [bold]{made['webhook_url']}[/]", highlight=False)
    console.print(
        f"Add it on the host ({_WHERE.get(made['provider'], 'its webhook settings')}), for push "
        "and pull request events. If the host reaches shipway at another address, use that "
        f"address with the path {made['webhook_path']}.",
        style="dim",
        highlight=False,
    )
    if not made["token"]:
        console.print(
            "No token: only public repositories can be fetched, and no commit statuses are "
            "reported.",
            style="dim",
        )


def apps_disconnect(
    name: AppArg = None, app: AppOrOpt = None, as_json: JsonOpt = False, data: DataOpt = None
) -> None:
    """Forget an app's repository: its webhook deliveries are refused (404) from now on."""
    name = named(name, app)
    Api.find(data).delete(f"/apps/{name}/connection")
    if as_json:
        emit_json({"app": name, "connection": None})
    else:
        console.print(f"Disconnected {name} from its repository.", highlight=False)


def apps_deliveries(
    name: AppArg = None,
    app: AppOrOpt = None,
    limit: Annotated[int, typer.Option(help="how many, newest first")] = 20,
    as_json: JsonOpt = False,
    data: DataOpt = None,
) -> None:
    """The webhook deliveries an app received and what came of each."""
    name = named(name, app)
    items = Api.find(data).get(f"/apps/{name}/deliveries", params={"limit": limit})
    if as_json:
        emit_json(items)
    else:
        show_deliveries(items, empty=f"{name} has received no webhook deliveries.")


def show_connection(connection: dict[str, Any] | None) -> None:
    if connection is None:
        console.print("repository  not connected (shipway apps connect)")
        return
    shown = {
        "repository": f"{connection['provider']} {connection['repo']}",
        "webhook": connection["webhook_path"],
        "token": "stored" if connection["token"] else "none",
    }
    fields(shown, ["repository", "webhook", "token"])


def show_deliveries(items: list[dict[str, Any]], *, empty: str) -> None:
    rows = [{**d, "sha": (d["sha"] or "")[:7]} for d in items]
    table(
        rows, ["delivery_id", "event", "branch", "sha", "status", "detail", "reported"], empty=empty
    )
