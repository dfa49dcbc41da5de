"""`shipway fn …`: deploy, call, version and roll back functions; their runs and output."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from shipway.cli.env import parse_pairs
from shipway.cli.options import DataOpt, JsonOpt, LogJsonOpt
from shipway.cli.output import console, emit_json, errors, log_line, table
from shipway.client.api import Api, describe_error
from shipway.errors import ClientError
from shipway.functions import declared as declarations

fn = typer.Typer(help="Functions: small JS and Python handlers.", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="the function")]


def _version(value: str) -> int:
    number = value.removeprefix("v")
    if not number.isdigit() or int(number) < 1:
        raise ClientError(f"{value!r} is not a version: give 3 or v3")
    return int(number)


@fn.command("deploy")
def deploy(
    file: Annotated[Path, typer.Argument(help="the handler's source file")],
    name: Annotated[str, typer.Option("--name", help="the function's name")],
    runtime: Annotated[
        str | None, typer.Option("--runtime", help="js or python (default: from the extension)")
    ] = None,
    timeout: Annotated[int | None, typer.Option("--timeout", help="seconds per call")] = None,
    memory: Annotated[int | None, typer.Option("--memory", help="MiB per call")] = None,
    public: Annotated[
        bool | None, typer.Option("--public/--private", help="callable without a token")
    ] = None,
    env: Annotated[
        list[str] | None, typer.Option("--env", help="KEY=VALUE, visible to the handler")
    ] = None,
    secret: Annotated[
        list[str] | None, typer.Option("--secret", help="KEY=VALUE, stored encrypted")
    ] = None,
    schedule: Annotated[
        list[str] | None,
        typer.Option(
            "--schedule",
            help="a cron expression or ISO-8601 R\\[n]/START/PERIOD\\[/E…]; "
            "the --params after it are its runs' params",
        ),
    ] = None,
    params: Annotated[
        list[str] | None, typer.Option("--params", help="JSON params of the --schedule before")
    ] = None,
    webhook: Annotated[
        str | None,
        typer.Option(
            "--webhook",
            help="URL told (JSON POST) when a scheduled run fails; an empty one clears it",
        ),
    ] = None,
    as_json: JsonOpt = False,
    data: DataOpt = None,
) -> None:
    """Deploy FILE as a new version of the function; it is compiled first. Its schedules
    become exactly those given with --schedule (none given: they stay as they are)."""
    try:
        source = file.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ClientError(f"cannot read {file}: {e}") from e
    body: dict[str, Any] = {"source": source, "filename": file.name}
    for key, value in (
        ("runtime", runtime),
        ("timeout", timeout),
        ("memory_mb", memory),
        ("public", public),
        ("webhook_url", webhook),
    ):
        if value is not None:
            body[key] = value
    if env is not None or secret is not None:
        body["environment"] = parse_pairs(env or [])
        body["secrets"] = parse_pairs(secret or [])
    if schedule:
        body["triggers"] = schedules(sys.argv[1:], schedule, params or [])
    elif params:
        raise ClientError("--params belongs after a --schedule")
    shown = Api.find(data).post(f"/functions/{name}", body)
    if as_json:
        emit_json(shown)
    else:
        console.print(
            f"Deployed {shown['name']} v{shown['version']} ({shown['runtime']}) → "
            f"POST {shown['url']}"
        )


def schedules(argv: list[str], specs: list[str], params: list[str]) -> dict[str, Any]:
    """`--schedule SPEC [--params JSON]`… as triggers schedule-1, schedule-2…: each --params
    belongs to the --schedule before it (ARGV gives their order)."""
    triggers: list[dict[str, Any]] = []
    given = iter(params)
    for option in (arg.split("=", 1)[0] for arg in argv):
        if option == "--schedule":
            triggers.append({"spec": specs[len(triggers)], "params": {}})
        elif option == "--params":
            if not triggers:
                raise ClientError("--params belongs after a --schedule")
            text = next(given)
            try:
                triggers[-1]["params"] = json.loads(text)
            except ValueError as e:
                raise ClientError(f"--params {text!r} is not valid JSON: {e}") from e
    return {f"schedule-{n}": trigger for n, trigger in enumerate(triggers, 1)}


@fn.command("invoke")
def invoke(
    name: NameArg,
    params: Annotated[str, typer.Option("--params", help="the params, as JSON")] = "{}",
    as_json: JsonOpt = False,
    data: DataOpt = None,
) -> None:
    """Call the function and print its result; exit 1 if it failed or timed out."""
    try:
        json.loads(params)
    except ValueError as e:
        raise ClientError(f"--params is not valid JSON: {e}") from e
    api = Api.find(data)
    try:
        response = httpx.post(
            f"{api.url}/fn/{name}",
            content=params.encode(),
            headers={"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"},
            timeout=api.timeout + 900,
            verify=api.tls,
        )
    except httpx.HTTPError as e:
        raise ClientError(f"cannot reach shipway at {api.url}: {e}") from e
    try:
        answer = response.json()
    except ValueError:
        answer = None
    run = response.headers.get("X-Shipway-Run")
    # Without a run the call never started (an unknown function, a bad token): not a failed run.
    if run is None or not isinstance(answer, dict) or not ({"result", "error"} & answer.keys()):
        raise ClientError(describe_error(response))
    if as_json:
        emit_json({**answer, "run": int(run)})
    elif "result" in answer:
        console.print_json(json.dumps(answer["result"]))
    if "error" in answer:
        error = answer["error"]
        if not as_json:
            errors.print(f"[red]{error.get('code', 'failed')}[/]: {error.get('message')}")
            if error.get("stack"):
                errors.print(error["stack"], highlight=False)
        raise typer.Exit(1)


#: How each change is shown in the diff.
MARKS = {"create": "+", "update": "~", "delete": "-", "unchanged": "="}


@fn.command("apply")
def apply(
    file: Annotated[Path, typer.Argument(help="the manifest, e.g. shipway.yml")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="show what would change; change nothing")
    ] = False,
    as_json: JsonOpt = False,
    data: DataOpt = None,
) -> None:
    """Create, update and remove functions and their triggers to match FILE; print the diff."""
    functions = read_manifest(file)
    body = {"manifest": file.name, "functions": functions, "dry_run": dry_run}
    result = Api.find(data).post("/functions:apply", body)
    if as_json:
        emit_json(result)
        return
    for change in result["changes"]:
        details = f": {', '.join(change['details'])}" if change["details"] else ""
        console.print(
            f"{MARKS[change['action']]} {change['function']} ({change['action']}){details}"
        )
    if dry_run:
        console.print("Nothing was changed (--dry-run).")


def read_manifest(path: Path) -> list[dict[str, Any]]:
    """The functions of a shipway.yml as the API takes them, each with its handler's source
    read from next to it."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ClientError(f"cannot read {path}: {e}") from e
    if not isinstance(data, dict) or "functions" not in data:
        raise ClientError(f"{path}: expected a `functions:` mapping of names to functions")

    found = declarations.parse(
        data["functions"], str(path), lambda handler: (path.parent / handler).read_text()
    )
    return [
        {
            "name": d.name,
            "runtime": d.runtime,
            "source": d.source,
            "timeout": d.timeout,
            "memory_mb": d.memory_mb,
            "public": d.public,
            "environment": dict(d.environment),
            "triggers": {
                name: {"spec": spec, "params": params}
                for name, (spec, params) in d.triggers.items()
            },
        }
        for d in found
    ]


@fn.command("list")
def list_functions(as_json: JsonOpt = False, data: DataOpt = None) -> None:
    """The functions of your organization."""
    items = Api.find(data).get("/functions")
    if as_json:
        emit_json(items)
    else:
        table(items, ["name", "runtime", "version", "public", "url"], empty="No functions yet.")


@fn.command("versions")
def versions(name: NameArg, as_json: JsonOpt = False, data: DataOpt = None) -> None:
    """The function's versions, newest first."""
    items = Api.find(data).get(f"/functions/{name}/versions")
    if as_json:
        emit_json(items)
    else:
        table(items, ["version", "description", "digest", "created_at"], empty="No versions.")


@fn.command("rollback")
def rollback(
    name: NameArg,
    to: Annotated[str, typer.Option("--to", help="the version to run again: 3 or v3")],
    as_json: JsonOpt = False,
    data: DataOpt = None,
) -> None:
    """Run an earlier version's code again, as a new version."""
    shown = Api.find(data).post(f"/functions/{name}/rollback", {"to": _version(to)})
    if as_json:
        emit_json(shown)
    else:
        console.print(f"Rolled {name} back to {to}: now v{shown['version']}")


@fn.command("runs")
def runs(
    name: NameArg,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 20,
    as_json: JsonOpt = False,
    data: DataOpt = None,
) -> None:
    """The function's runs, newest first."""
    items = Api.find(data).get(f"/functions/{name}/runs", params={"limit": limit})
    if as_json:
        emit_json(items)
    else:
        columns = ["id", "version", "trigger", "status", "duration", "created_at"]
        table(items, columns, empty="No runs yet.")


@fn.command("logs")
def logs(
    run: Annotated[int, typer.Argument(help="the run's id")],
    as_json: LogJsonOpt = False,
    data: DataOpt = None,
) -> None:
    """One run's console output."""
    for line in Api.find(data).get(f"/runs/{run}/logs"):
        if as_json:
            log_line(line)
        else:
            typer.echo(line)


@fn.command("delete")
def delete(name: NameArg, as_json: JsonOpt = False, data: DataOpt = None) -> None:
    """Delete the function, its versions and runs."""
    Api.find(data).delete(f"/functions/{name}")
    if as_json:
        emit_json({"function": name, "deleted": True})
    else:
        console.print(f"Deleted {name}.", highlight=False)
