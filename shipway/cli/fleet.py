"""`shipway builder` runs a builder; `shipway builders list|drain` shows and drains them;
`shipway fleet rules|pools` shows how builds are dispatched and how loaded each pool is."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from shipway.cli.options import DataOpt, JsonOpt
from shipway.cli.output import console, emit_json, emit_line, table
from shipway.client.api import Api
from shipway.settings import Settings

if TYPE_CHECKING:
    from shipway.fleet.member import Builder

builders = typer.Typer(help="The builder fleet (platform owners).", no_args_is_help=True)
fleet = typer.Typer(help="How builds are dispatched (platform owners).", no_args_is_help=True)


def builder(
    pool: Annotated[str, typer.Option("--pool", help="the pool whose builds it takes")] = "default",
    labels: Annotated[str, typer.Option("--labels", help="k=v,… describing it")] = "",
    slots: Annotated[int, typer.Option("--slots", min=1, max=64, help="builds at once")] = 2,
    server: Annotated[
        str | None,
        typer.Option("--server", help="a control plane's URL, for a builder on another machine"),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option("--token", envvar="SHIPWAY_TOKEN", help="with --server: a platform owner's"),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="a JSON line when it takes builds, and one when it has drained"
        ),
    ] = False,
    data: DataOpt = None,
) -> None:
    """Run a builder until SIGTERM or a drain: beside the shipway whose data dir this is, or,
    with --server, anywhere that reaches it, its Temporal and its NATS (its own data dir then
    keeps the builder's caches)."""
    from shipway.fleet.process import parse_labels, run_builder  # Temporal: only here

    settings = Settings.load({"data_dir": data})
    parsed = parse_labels(labels)

    def ready(running: Builder) -> None:
        if as_json:
            emit_line({"builder": running.id, "pool": pool, "slots": slots, "state": "ready"})
            return
        console.print(
            f"Builder {running.id} takes builds of pool {pool}, {slots} at a time. "
            "SIGTERM drains it."
        )

    import asyncio

    done = asyncio.run(
        run_builder(
            settings,
            pool=pool,
            labels=parsed,
            slots=slots,
            on_ready=ready,
            server=server,
            token=token,
        )
    )
    if as_json:
        emit_line({"builder": done.id, "pool": pool, "slots": slots, "state": "drained"})
    else:
        console.print(f"Builder {done.id} drained.")


@builders.command("list")
def builders_list(as_json: JsonOpt = False, data: DataOpt = None) -> None:
    """Each builder: pool, labels, slots in use, last heartbeat, version and state."""
    items = Api.find(data).get("/builders")
    if as_json:
        emit_json(items)
        return
    for item in items:
        item["labels"] = ",".join(f"{k}={v}" for k, v in item["labels"].items())
        item["slots"] = f"{item['busy']}/{item['slots']}"
        item["heartbeat"] = f"{item['heartbeat_age']:.0f}s ago"
        item["since"] = datetime.fromtimestamp(item["started_at"], UTC).strftime("%H:%M:%S")
    columns = ["id", "pool", "labels", "slots", "heartbeat", "version", "state", "since"]
    table(items, columns, empty="No builders.")


@builders.command("drain")
def builders_drain(builder_id: str, as_json: JsonOpt = False, data: DataOpt = None) -> None:
    """Stop a builder taking builds; it finishes those it runs, then stops."""
    draining = Api.find(data).post(f"/builders/{builder_id}/drain", {})
    if as_json:
        emit_json(draining)
    else:
        console.print(
            f"Asked {builder_id} to drain: it finishes its builds, then stops.", highlight=False
        )


@fleet.command("rules")
def fleet_rules(as_json: JsonOpt = False, data: DataOpt = None) -> None:
    """The dispatch rules in the order they are tried; the first match picks the pool."""
    rules = Api.find(data).get("/fleet/rules")
    if as_json:
        emit_json(rules)
        return
    table(rules, ["rule", "match", "pool"], empty="No rules: every build goes to pool default.")
    if rules:
        console.print("A build no rule matches goes to pool default.", style="dim")


@fleet.command("pools")
def fleet_pools(as_json: JsonOpt = False, data: DataOpt = None) -> None:
    """Each pool: builders, slots in use, queued builds, the oldest wait, and its size."""
    pools = Api.find(data).get("/fleet/pools")
    if as_json:
        emit_json(pools)
        return
    for pool in pools:
        pool["slots"] = f"{pool['busy']}/{pool['slots']}"
        pool["utilisation"] = f"{pool['utilisation']:.0%}"
        pool["oldest wait"] = f"{pool['oldest_wait']:.0f}s" if pool["queued"] else "-"
        policy = pool["policy"]
        pool["autoscale"] = (
            f"{policy['min']}-{policy['max']} at {policy['target']:.0%}, wants {pool['desired']}"
            if policy
            else "-"
        )
    columns = ["pool", "builders", "slots", "utilisation", "queued", "oldest wait", "autoscale"]
    table(pools, columns, empty="No pools: no builder is running and no build waits.")
