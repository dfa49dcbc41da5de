"""/api/v1/functions: deploy, list, version and roll back functions; their runs and output.
/fn/NAME: call one."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import Field

from shipway import jsontext
from shipway.accounts.roles import Principal
from shipway.api.auth import authenticate, bearer, context, principal_from
from shipway.api.routing import Route
from shipway.api.schemas import MAX_ID, Body, Id, Int
from shipway.context import Context
from shipway.errors import ServiceError, ValidationError
from shipway.functions import commands, declared, service
from shipway.functions.invoke import Invoker
from shipway.functions.outcome import RunStatus
from shipway.store.tables import Function, FunctionRun, FunctionVersion
from shipway.store.types import has_nul

router = APIRouter(prefix="/functions", tags=["functions"], route_class=Route)
runs_router = APIRouter(prefix="/runs", tags=["functions"], route_class=Route)
apply_router = APIRouter(tags=["functions"], route_class=Route)
calls = APIRouter(tags=["functions"], route_class=Route)

#: The answer's status for each way a run ends.
STATUS = {RunStatus.SUCCEEDED: 200, RunStatus.FAILED: 500, RunStatus.TIMED_OUT: 504}


class FunctionDeploy(Body):
    source: str = Field(description="the handler's source: one file")
    filename: str | None = Field(None, description="its file name; its extension names the runtime")
    runtime: str | None = Field(None, description="js or python, if the file name does not say")
    timeout: Int | None = Field(None, description="seconds per call, 1-900 (default 30)")
    memory_mb: Int | None = Field(None, description="MiB per call, 16-2048 (default 128)")
    public: bool | None = Field(None, description="callable without a token")
    environment: dict[str, str] | None = None
    secrets: dict[str, str] | None = Field(None, description="stored encrypted")
    webhook_url: str | None = Field(None, description="told when a scheduled run fails")
    triggers: dict[str, TriggerIn] | None = Field(
        None, description="name → schedule; the function's triggers become exactly these"
    )


class TriggerIn(Body):
    spec: str = Field(description="a cron expression or an ISO-8601 R[n]/START/PERIOD[/E…]")
    params: Any = Field(default_factory=dict, description="the params of its runs")


class Declared(Body):
    name: str
    source: str
    filename: str | None = None
    runtime: str | None = None
    timeout: Int = declared.DEFAULT_TIMEOUT
    memory_mb: Int = declared.DEFAULT_MEMORY_MB
    public: bool = False
    environment: dict[str, str] = Field(default_factory=dict)
    triggers: dict[str, TriggerIn] = Field(default_factory=dict)


class ManifestApply(Body):
    manifest: str = Field(
        "shipway.yml", min_length=1, max_length=255, description="names the manifest"
    )
    functions: list[Declared]
    dry_run: bool = False


class FunctionRollback(Body):
    to: int = Field(ge=1, le=MAX_ID)


def function_json(fn: Function) -> dict[str, Any]:
    return {
        "name": fn.name,
        "runtime": fn.runtime,
        "version": fn.version,
        "public": fn.public,
        "timeout": fn.timeout,
        "memory_mb": fn.memory_mb,
        "environment": {
            key: "***" if var["secret"] else var["value"] for key, var in fn.environment.items()
        },
        "webhook_url": fn.webhook_url,
        "url": f"/fn/{fn.name}",
        "created_at": fn.created_at.isoformat(),
        "updated_at": fn.updated_at.isoformat(),
    }


def version_json(version: FunctionVersion) -> dict[str, Any]:
    return {
        "version": version.version,
        "digest": version.digest,
        "description": version.description,
        "created_at": version.created_at.isoformat(),
    }


def run_json(run: FunctionRun, name: str) -> dict[str, Any]:
    return {
        "id": run.id,
        "function": name,
        "version": run.version,
        "trigger": run.trigger,
        "parent": run.parent_id,
        "params": run.params,
        "status": run.status,
        "result": run.result,
        "error": run.error,
        "duration": run.duration,
        "created_at": run.created_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "logs_url": f"/api/v1/runs/{run.id}/logs",
    }


def _invoker(ctx: Context) -> Invoker:
    if ctx.invoker is None:
        raise ServiceError("functions are not running on this server")
    return ctx.invoker


def _reach(request: Request) -> commands.Reach:
    """What a command changes, from this server's services."""
    ctx = context(request)
    registry = ctx.invoker.registry if ctx.invoker is not None else None
    return commands.Reach(ctx.store, ctx.settings.data_dir, registry, ctx.temporal)


@apply_router.post("/functions:apply", summary="Make the functions match a manifest")
async def apply_manifest(
    body: ManifestApply, request: Request, principal: Principal = Depends(principal_from)
) -> dict[str, Any]:
    """Creates, updates and removes the manifest's functions and their triggers; answers the
    changes, each `create`, `update` (with what differs), `delete` or `unchanged`. Applying
    the same manifest again changes nothing. With `dry_run` nothing is changed."""
    functions = [
        commands.Sent(
            name=item.name,
            code=commands.Code(item.source, item.filename, item.runtime),
            timeout=item.timeout,
            memory_mb=item.memory_mb,
            public=item.public,
            environment=item.environment,
            triggers={key: (t.spec, t.params) for key, t in item.triggers.items()},
        )
        for item in body.functions
    ]
    changes = await commands.apply(
        _reach(request), principal, body.manifest, functions, dry_run=body.dry_run
    )
    return {
        "manifest": body.manifest,
        "dry_run": body.dry_run,
        "changes": [
            {"function": c.function, "action": c.action, "details": c.details} for c in changes
        ],
    }


@router.post("/{name}", status_code=201, summary="Deploy a new version of a function")
async def deploy_function(
    name: str,
    body: FunctionDeploy,
    request: Request,
    principal: Principal = Depends(principal_from),
) -> dict[str, Any]:
    """The code is compiled first: a syntax error is a 422 whose details give the line."""
    settings = service.Settings(
        timeout=body.timeout,
        memory_mb=body.memory_mb,
        public=body.public,
        environment=body.environment,
        secrets=body.secrets,
        webhook_url=body.webhook_url,
    )
    triggers = None
    if body.triggers is not None:
        triggers = {key: (t.spec, t.params) for key, t in body.triggers.items()}
    code = commands.Code(body.source, body.filename, body.runtime)
    fn, trigger_names = await commands.deploy(
        _reach(request), principal, name, code, settings, triggers
    )
    return {**function_json(fn), "triggers": trigger_names}


@router.get("", summary="The tenant's functions")
def list_functions(
    request: Request, principal: Principal = Depends(principal_from)
) -> list[dict[str, Any]]:
    with context(request).store.transaction() as session:
        return [function_json(fn) for fn in service.list_functions(session, principal)]


@router.get("/{name}", summary="One function")
def get_function(
    name: str, request: Request, principal: Principal = Depends(principal_from)
) -> dict[str, Any]:
    with context(request).store.transaction() as session:
        return function_json(service.get(session, principal, name))


@router.get("/{name}/versions", summary="A function's versions, newest first")
def list_versions(
    name: str, request: Request, principal: Principal = Depends(principal_from)
) -> list[dict[str, Any]]:
    with context(request).store.transaction() as session:
        return [version_json(v) for v in service.versions(session, principal, name)]


@router.get("/{name}/triggers", summary="A function's schedules, by name")
def list_triggers(
    name: str, request: Request, principal: Principal = Depends(principal_from)
) -> list[dict[str, Any]]:
    """Each is `{name, spec, params, created_at}`: `spec` a cron expression or an ISO-8601
    repeating interval, in UTC; `params` those of the runs it starts."""
    with context(request).store.transaction() as session:
        return [
            {
                "name": t.name,
                "spec": t.spec,
                "params": t.params,
                "created_at": t.created_at.isoformat(),
            }
            for t in service.triggers_of(session, principal, name)
        ]


@router.post("/{name}/rollback", summary="Run an earlier version's code again, as a new version")
async def rollback_function(
    name: str,
    body: FunctionRollback,
    request: Request,
    principal: Principal = Depends(principal_from),
) -> dict[str, Any]:
    return function_json(await commands.rollback(_reach(request), principal, name, body.to))


@router.delete("/{name}", status_code=204, summary="Delete a function, its versions and runs")
async def delete_function(
    name: str, request: Request, principal: Principal = Depends(principal_from)
) -> None:
    await commands.delete(_reach(request), principal, name)


@router.get("/{name}/runs", summary="A function's runs, newest first")
async def list_runs(
    name: str,
    request: Request,
    limit: int = Query(50, ge=1, le=500),
    principal: Principal = Depends(principal_from),
) -> list[dict[str, Any]]:
    ctx = await _settled(request)

    def read() -> list[dict[str, Any]]:
        with ctx.store.transaction() as session:
            return [run_json(r, name) for r in service.runs(session, principal, name, limit)]

    return await asyncio.to_thread(read)


@runs_router.get("/{run_id}", summary="One run")
async def get_run(
    run_id: Id, request: Request, principal: Principal = Depends(principal_from)
) -> dict[str, Any]:
    ctx = await _settled(request)

    def read() -> dict[str, Any]:
        with ctx.store.transaction() as session:
            run = service.get_run(session, principal, run_id)
            fn = session.get(Function, run.function_id)
            assert fn is not None
            return run_json(run, fn.name)

    return await asyncio.to_thread(read)


@runs_router.get("/{run_id}/logs", summary="One run's console output")
async def run_logs(
    run_id: Id, request: Request, principal: Principal = Depends(principal_from)
) -> list[str]:
    ctx = await _settled(request)

    def read() -> list[str]:
        with ctx.store.transaction() as session:
            return service.run_logs(session, principal, run_id)

    return await asyncio.to_thread(read)


async def _settled(request: Request) -> Context:
    """The services, once the runs this server has made so far are recorded."""
    ctx = context(request)
    if ctx.invoker is not None:
        await ctx.invoker.settle()
    return ctx


@calls.post("/fn/{name}", summary="Call a function; the JSON body is its params")
@calls.post("/fn/{organization}/{name}", summary="Call another organization's public function")
async def call_function(
    name: str,
    request: Request,
    organization: str | None = None,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
) -> JSONResponse:
    """`200 {"result"}` when the handler returns, `500 {"error": {"message", "stack"}}` when it
    throws, `504` past its timeout. A token is needed unless the function is public; without
    one, `/fn/NAME` is a function of the platform's own organization."""
    ctx = context(request)
    invoker = _invoker(ctx)
    principal = None if credentials is None else await authenticate(ctx, credentials.credentials)
    params = _params(await request.body())
    ran = await commands.call(_reach(request), invoker, principal, organization, name, params)
    outcome = ran.outcome
    body: dict[str, Any] = (
        {"result": outcome.result}
        if outcome.status is RunStatus.SUCCEEDED
        else {"error": {"code": outcome.status.value, **(outcome.error or {})}}
    )
    headers = {"X-Shipway-Run": str(ran.run_id), "X-Shipway-Version": str(ran.version)}
    return JSONResponse(body, status_code=STATUS.get(outcome.status, 500), headers=headers)


def _params(raw: bytes) -> Any:
    if not raw.strip():
        return {}
    params = jsontext.loads(raw, "the params")
    if has_nul(params):  # a run's params are stored, and PostgreSQL refuses NUL in text
        raise ValidationError("the params must not contain NUL characters (\\u0000)")
    return params
