"""The functions: a list with their versions and schedules and a form to deploy one, each
function's page with its versions, schedules in words with their next runs, run history and
forms to invoke it and deploy a new version, and each run with its params, result and log."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from shipway.errors import ValidationError
from shipway.functions.schedules import triggers
from shipway.functions.schedules.describe import describe
from shipway.web import api
from shipway.web.api import ApiError
from shipway.web.viewer import Dashboard, Viewer, form, redirect, render, viewer

router = APIRouter(include_in_schema=False)

#: Runs a function's page lists, and upcoming runs it plans per schedule.
RUNS = 50
UPCOMING = 3
#: The largest run id the API knows (its ids are 32-bit).
MAX_RUN_ID = 2**31 - 1
ENDED = {"succeeded": "succeeded", "failed": "failed", "timed_out": "timed out"}
RUNTIMES = ("js", "python")

#: The deploy form again, with the problem to show above it and its status.
Again = Callable[[str, int], Awaitable[Response]]


@router.get("/functions")
async def function_list(request: Request, who: Viewer = Depends(viewer)) -> Response:
    return await _list(request, who)


async def _list(
    request: Request,
    who: Viewer,
    *,
    typed: dict[str, str] | None = None,
    problem: str | None = None,
    status: int = 200,
) -> Response:
    found = await who.api.get("/functions")
    schedules = await asyncio.gather(*(who.api.get(_path(fn["name"], "/triggers")) for fn in found))
    now = datetime.now(UTC)
    rows = [
        {**fn, "triggers": [schedule(t, now, 1) for t in ts]}
        for fn, ts in zip(found, schedules, strict=True)
    ]
    return render(
        request,
        "functions.html",
        who,
        status=status,
        functions=rows,
        runtimes=RUNTIMES,
        typed=typed or {},
        deploy_problem=problem,
    )


@router.post("/functions")
async def deploy_new(request: Request, who: Viewer = Depends(viewer)) -> Response:
    fields = await form(request, who)
    name = fields.get("name", "").strip()

    async def again(problem: str, status: int) -> Response:
        return await _list(request, who, typed=fields, problem=problem, status=status)

    if not name:
        return await again("Enter the function's name.", 422)
    return await _deploy(request, who, name, fields, again, "/functions")


@router.post("/functions/{name}/deploy")
async def deploy_version(name: str, request: Request, who: Viewer = Depends(viewer)) -> Response:
    fields = await form(request, who)

    async def again(problem: str, status: int) -> Response:
        return await _page(request, who, name, typed=fields, deploy_problem=problem, status=status)

    return await _deploy(request, who, name, fields, again, f"/functions/{name}")


async def _deploy(
    request: Request, who: Viewer, name: str, fields: dict[str, str], again: Again, back: str
) -> Response:
    """Deploy NAME as the form says, through the API as `shipway fn deploy` does. What the
    sender can fix (a compile error and its line, a bad schedule) comes back on the form with
    the code as typed; a refusal goes BACK with a flash."""
    body = _deploy_body(fields)
    if isinstance(body, str):
        return await again(body, 422)
    try:
        fn = await who.api.call("POST", _path(name), body=body)
    except ApiError as e:
        if e.status in (409, 422):
            return await again(e.message, e.status)
        return redirect(request, back, e.message, ok=False)
    message = f"Deployed {fn['name']} v{fn['version']} ({fn['runtime']})"
    if fn["triggers"]:
        message += f" with schedules {', '.join(fn['triggers'])}"
    return redirect(request, f"/functions/{fn['name']}", message + ".")


def _deploy_body(fields: dict[str, str]) -> dict[str, Any] | str:
    """The API's deploy body from the form, or what is wrong with the form. Its schedules, one
    per line, become the function's (named as the CLI names them); none keeps the ones it has."""
    source = fields.get("source", "")
    if not source.strip():
        return "Enter the function's code."
    body: dict[str, Any] = {"source": source, "runtime": fields.get("runtime") or None}
    specs = [line.strip() for line in fields.get("schedules", "").splitlines() if line.strip()]
    text = fields.get("schedule_params", "")
    if not text.strip():
        params: Any = {}
    elif not specs:
        return "The params are those of scheduled runs: add a schedule, or leave them empty."
    else:
        try:
            params = json.loads(text)
        except ValueError as e:
            return _json_problem(e)
    if specs:
        body["triggers"] = {
            f"schedule-{n}": {"spec": spec, "params": params} for n, spec in enumerate(specs, 1)
        }
    return body


@router.get("/functions/{name}")
async def function_page(name: str, request: Request, who: Viewer = Depends(viewer)) -> Response:
    return await _page(request, who, name)


async def _page(
    request: Request,
    who: Viewer,
    name: str,
    *,
    params: str = "{}",
    problem: str | None = None,
    typed: dict[str, str] | None = None,
    deploy_problem: str | None = None,
    status: int = 200,
) -> Response:
    fn, versions, schedules, runs = await asyncio.gather(
        who.api.get(_path(name)),
        who.api.get(_path(name, "/versions")),
        who.api.get(_path(name, "/triggers")),
        who.api.get(_path(name, "/runs"), limit=RUNS),
    )
    now = datetime.now(UTC)
    return render(
        request,
        "function.html",
        who,
        status=status,
        fn=fn,
        versions=versions,
        triggers=[schedule(t, now, UPCOMING) for t in schedules],
        runs=runs,
        params=params,
        problem=problem,
        runtimes=RUNTIMES,
        typed=typed or {"runtime": fn["runtime"]},
        deploy_problem=deploy_problem,
    )


def schedule(trigger: dict[str, Any], now: datetime, upcoming: int) -> dict[str, Any]:
    """A trigger as the API gives it, with its spec in words and its next UPCOMING runs."""
    shown = {**trigger, "params_json": json.dumps(trigger["params"], ensure_ascii=False)}
    try:
        parsed = triggers.parse(trigger["spec"])
    except ValidationError as e:  # stored before a change of what parses
        return {**shown, "words": f"cannot be read: {e.message}", "next": []}
    return {**shown, "words": describe(parsed), "next": triggers.next_times(parsed, now, upcoming)}


@router.post("/functions/{name}/invoke")
async def invoke(name: str, request: Request, who: Viewer = Depends(viewer)) -> Response:
    fields = await form(request, who)
    text = fields.get("params", "")
    try:
        params = json.loads(text) if text.strip() else {}
    except ValueError as e:
        problem = _json_problem(e)
        return await _page(request, who, name, params=text, problem=problem, status=422)
    board = Dashboard.of(request)
    answer = await board.caller.request(
        "POST",
        "/fn/" + quote(name, safe=""),
        body=params,
        headers={"Authorization": f"Bearer {who.session.current.token}"},
    )
    run = answer.headers.get("x-shipway-run")
    if run is None:  # refused before it ran: not allowed, not running here, bad params
        refused = api.refusal(answer)
        if refused.status == 422:
            return await _page(request, who, name, params=text, problem=refused.message, status=422)
        return redirect(request, f"/functions/{name}", refused.message, ok=False)
    body = answer.json()
    ended = "succeeded" if answer.status == 200 else body.get("error", {}).get("code")
    message = f"Run {run} {ENDED.get(str(ended), str(ended))}"
    if answer.status != 200:
        message += f": {body.get('error', {}).get('message', '')}".rstrip(": ")
    return redirect(
        request, f"/functions/{name}/runs/{run}", message + ".", ok=answer.status == 200
    )


def _path(name: str, rest: str = "") -> str:
    """The API path of function NAME (a name from the page's URL, so quoted)."""
    return "/functions/" + quote(name, safe="") + rest


def _json_problem(e: ValueError) -> str:
    if isinstance(e, json.JSONDecodeError):
        return f"The params are not JSON: {e.msg} (line {e.lineno}, column {e.colno})."
    return f"The params are not JSON: {e}."


@router.get("/functions/{name}/runs/{run_id}")
async def run_page(
    name: str, run_id: str, request: Request, who: Viewer = Depends(viewer)
) -> Response:
    number = _run_id(run_id)
    run, log = await asyncio.gather(
        who.api.get(f"/runs/{number}"), who.api.get(f"/runs/{number}/logs")
    )
    if run["function"] != name:
        raise ApiError(404, "not_found", f"{name} has no run {number}")
    shown = {k: json.dumps(run[k], indent=2, ensure_ascii=False) for k in ("params", "result")}
    return render(request, "run.html", who, run=run, log=log, shown=shown)


@router.get("/runs/{run_id}")
async def run_by_id(run_id: str, request: Request, who: Viewer = Depends(viewer)) -> Response:
    number = _run_id(run_id)
    run = await who.api.get(f"/runs/{number}")
    return redirect(request, f"/functions/{run['function']}/runs/{number}")


def _run_id(text: str) -> int:
    """A run id from the path; ApiError 404 (as the page shows it) for one no run can have."""
    if not (text.isascii() and text.isdigit() and len(text) <= 10 and 0 < int(text) <= MAX_RUN_ID):
        raise ApiError(404, "not_found", f"no run with id {text[:40]!r}")
    return int(text)
