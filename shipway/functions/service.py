"""Functions in the store: deploy a version, list, roll back, delete; and their runs.

Every change emits one event. Versions are immutable: a rollback adds a version with the
source of an earlier one, as an app rollback adds a release.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shipway.accounts.roles import Principal, Role
from shipway.apps.secretbox import SecretBox
from shipway.errors import Conflict, NotFound, ValidationError
from shipway.events import Event, emit
from shipway.functions.declared import (
    DEFAULT_MEMORY_MB,
    DEFAULT_TIMEOUT,
    MAX_SOURCE,
    NAME,
    check_name,
    runtime_for,
)
from shipway.functions.schedules import triggers
from shipway.store.tables import (
    Function,
    FunctionRun,
    FunctionTrigger,
    FunctionVersion,
    LogLine,
)
from shipway.store.types import utcnow

_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
TIMEOUT = (1, 900)
MEMORY_MB = (16, 2048)


def _within(value: object, bounds: tuple[int, int], what: str) -> int:
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(
            f"{what} must be a whole number from {low} to {high}; got {value!r}",
            details={"field": what, "value": value},
        )
    return value


def check_environment(env: Mapping[str, object]) -> dict[str, str]:
    for key, value in env.items():
        if _ENV_KEY.fullmatch(key) is None:
            raise ValidationError(
                f"environment variable name {key!r} must be letters, digits and '_', not "
                "starting with a digit",
                details={"key": key},
            )
        if not isinstance(value, str) or "\0" in value:
            raise ValidationError(
                f"environment variable {key} must have a text value", details={"key": key}
            )
    return {str(k): str(v) for k, v in env.items()}


@dataclass(frozen=True)
class Settings:
    """What a deploy may change besides the source; None keeps the current value."""

    timeout: int | None = None
    memory_mb: int | None = None
    public: bool | None = None
    environment: Mapping[str, str] | None = None
    secrets: Mapping[str, str] | None = None
    webhook_url: str | None = None


def get(session: Session, principal: Principal, name: str) -> Function:
    """The tenant's function NAME; NotFound for any other tenant's."""
    principal.require(Role.VIEWER)
    found = (
        session.scalar(
            select(Function).where(
                Function.organization_id == principal.organization_id, Function.name == name
            )
        )
        if NAME.fullmatch(name)
        else None
    )
    if found is None:
        raise NotFound(f"no function named {name!r}", details={"name": name})
    return found


def list_functions(session: Session, principal: Principal) -> list[Function]:
    principal.require(Role.VIEWER)
    return list(
        session.scalars(
            select(Function)
            .where(Function.organization_id == principal.organization_id)
            .order_by(Function.name)
        )
    )


def deploy(
    session: Session,
    principal: Principal,
    name: str,
    *,
    runtime: str,
    source: str,
    settings: Settings,
    box: SecretBox,
    description: str = "Deploy",
) -> FunctionVersion:
    """A new version of NAME (created on first deploy) with SOURCE, compiled by the caller."""
    principal.require(Role.DEPLOYER)
    check_name(name)
    runtime_for(name, runtime)
    if len(source.encode()) > MAX_SOURCE:
        raise ValidationError(f"the source is larger than {MAX_SOURCE // 1024} KiB")
    if "\0" in source:
        raise ValidationError("the source must not contain NUL characters")
    fn = session.scalar(
        select(Function).where(
            Function.organization_id == principal.organization_id, Function.name == name
        )
    )
    if fn is None:
        fn = Function(
            organization_id=principal.organization_id,
            name=name,
            runtime=runtime,
            version=0,
            public=False,
            timeout=DEFAULT_TIMEOUT,
            memory_mb=DEFAULT_MEMORY_MB,
            environment={},
        )
        session.add(fn)
    fn.runtime = runtime
    _apply(fn, settings, box)
    version = _add_version(session, fn, source, description)
    emit(
        session,
        Event(
            principal.organization_id,
            principal.actor,
            "function.deploy",
            f"function:{name}",
            {"version": version.version, "runtime": runtime, "public": fn.public},
        ),
    )
    return version


def _apply(fn: Function, settings: Settings, box: SecretBox) -> None:
    if settings.timeout is not None:
        fn.timeout = _within(settings.timeout, TIMEOUT, "timeout")
    if settings.memory_mb is not None:
        fn.memory_mb = _within(settings.memory_mb, MEMORY_MB, "memory")
    if settings.public is not None:
        fn.public = settings.public
    if settings.webhook_url is not None:
        if settings.webhook_url and not settings.webhook_url.startswith(("http://", "https://")):
            raise ValidationError("webhook_url must be an http:// or https:// URL")
        fn.webhook_url = settings.webhook_url or None
    if settings.environment is not None or settings.secrets is not None:
        env: dict[str, Any] = {}
        for key, value in check_environment(settings.environment or {}).items():
            env[key] = {"value": value, "secret": False}
        for key, value in check_environment(settings.secrets or {}).items():
            env[key] = {"value": box.encrypt(value), "secret": True}
        fn.environment = env


def _add_version(session: Session, fn: Function, source: str, description: str) -> FunctionVersion:
    session.flush()
    number = int(
        session.scalar(
            select(func.max(FunctionVersion.version)).where(FunctionVersion.function_id == fn.id)
        )
        or 0
    )
    version = FunctionVersion(
        function_id=fn.id,
        version=number + 1,
        source=source,
        digest=f"sha256:{hashlib.sha256(source.encode()).hexdigest()}",
        description=description,
    )
    session.add(version)
    fn.version = version.version
    fn.updated_at = utcnow()
    try:
        session.flush()
    except IntegrityError as e:
        raise Conflict(f"{fn.name} was deployed at the same time; try again") from e
    return version


@dataclass(frozen=True)
class TriggerChange:
    """The triggers a function has after a change, and the names it no longer has."""

    current: dict[str, tuple[str, Any]]
    removed: list[str]


def set_triggers(
    session: Session, principal: Principal, fn: Function, wanted: Mapping[str, tuple[str, Any]]
) -> TriggerChange:
    """Make FN's triggers exactly WANTED (name → (spec, params)); specs must parse. A change
    is recorded as `function.triggers`."""
    check_triggers(wanted)
    existing = {
        t.name: t
        for t in session.scalars(
            select(FunctionTrigger).where(FunctionTrigger.function_id == fn.id)
        )
    }
    removed = sorted(existing.keys() - wanted.keys())
    changed = bool(removed)
    for name in removed:
        session.delete(existing[name])
    for name, (spec, params) in wanted.items():
        row = existing.get(name)
        if row is None:
            row = FunctionTrigger(function_id=fn.id, name=name)
            session.add(row)
        changed = changed or (row.spec, row.params) != (spec, params)
        row.spec, row.params = spec, params
    session.flush()
    if changed:
        payload = {
            "triggers": {name: spec for name, (spec, _) in wanted.items()},
            "removed": removed,
        }
        emit(
            session,
            Event(
                fn.organization_id,
                principal.actor,
                "function.triggers",
                f"function:{fn.name}",
                payload,
            ),
        )
    return TriggerChange(dict(wanted), removed)


def check_triggers(wanted: Mapping[str, tuple[str, Any]]) -> None:
    """Raise ValidationError for a bad trigger name or a spec that does not parse."""
    for name, (spec, _) in wanted.items():
        if NAME.fullmatch(name) is None:
            raise ValidationError(
                f"trigger name {name!r} must be 1-63 characters of a-z, 0-9, '_' and '-', "
                "starting with a letter",
                details={"trigger": name},
            )
        triggers.parse(spec)


def triggers_of(session: Session, principal: Principal, name: str) -> list[FunctionTrigger]:
    """The triggers of function NAME, by name."""
    fn = get(session, principal, name)
    return list(
        session.scalars(
            select(FunctionTrigger)
            .where(FunctionTrigger.function_id == fn.id)
            .order_by(FunctionTrigger.name)
        )
    )


def trigger_names(session: Session, fn: Function) -> list[str]:
    return sorted(
        session.scalars(select(FunctionTrigger.name).where(FunctionTrigger.function_id == fn.id))
    )


def versions(session: Session, principal: Principal, name: str) -> list[FunctionVersion]:
    fn = get(session, principal, name)
    return list(
        session.scalars(
            select(FunctionVersion)
            .where(FunctionVersion.function_id == fn.id)
            .order_by(FunctionVersion.version.desc())
        )
    )


def version_of(session: Session, fn: Function, number: int) -> FunctionVersion:
    found = session.scalar(
        select(FunctionVersion).where(
            FunctionVersion.function_id == fn.id, FunctionVersion.version == number
        )
    )
    if found is None:
        raise NotFound(f"{fn.name} has no version v{number}", details={"version": number})
    return found


def rollback(session: Session, principal: Principal, name: str, to: int) -> FunctionVersion:
    """A new version with the source of version TO."""
    principal.require(Role.DEPLOYER)
    fn = get(session, principal, name)
    target = version_of(session, fn, to)
    version = _add_version(session, fn, target.source, f"Rollback to v{to}")
    emit(
        session,
        Event(
            principal.organization_id,
            principal.actor,
            "function.rollback",
            f"function:{name}",
            {"to": to, "version": version.version},
        ),
    )
    return version


def delete(session: Session, principal: Principal, name: str) -> int:
    principal.require(Role.DEPLOYER)
    fn = get(session, principal, name)
    session.delete(fn)
    emit(
        session,
        Event(principal.organization_id, principal.actor, "function.delete", f"function:{name}"),
    )
    return fn.id


def runs(session: Session, principal: Principal, name: str, limit: int = 50) -> list[FunctionRun]:
    fn = get(session, principal, name)
    return list(
        session.scalars(
            select(FunctionRun)
            .where(FunctionRun.function_id == fn.id)
            .order_by(FunctionRun.created_at.desc(), FunctionRun.id.desc())
            .limit(limit)
        )
    )


def get_run(session: Session, principal: Principal, run_id: int) -> FunctionRun:
    run = session.get(FunctionRun, run_id) if 0 < run_id < 2**31 else None
    fn = session.get(Function, run.function_id) if run is not None else None
    if run is None or fn is None or fn.organization_id != principal.organization_id:
        raise NotFound(f"no run with id {run_id}")
    return run


def run_logs(session: Session, principal: Principal, run_id: int) -> list[str]:
    """The console output of run RUN_ID, line by line in order."""
    get_run(session, principal, run_id)
    return list(
        session.scalars(
            select(LogLine.line)
            .where(LogLine.kind == "run", LogLine.owner_id == run_id)
            .order_by(LogLine.seq)
        )
    )
