"""`shipway fn apply`: make a tenant's functions match a manifest (shipway.yml), idempotently.

A manifest names the functions it declares; applying it creates those that are missing,
deploys a new version of those whose code or settings differ, sets their triggers, and
removes the functions it declared before but no longer does. Functions deployed on their own
(`shipway fn deploy`) are never removed by a manifest; a function another manifest declares
is refused (409).

A manifest applied with `shipway fn apply` is named by its file name; the functions of an
app's shipway.yml are applied as manifest `app:APP` each time a production release of the
app goes live (a rollback included), so they always match the release that is live.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipway.accounts.roles import Principal, Role
from shipway.apps import config
from shipway.apps.secretbox import SecretBox
from shipway.errors import Conflict, ValidationError
from shipway.functions import declared as declarations
from shipway.functions import runtimes, service
from shipway.functions.declared import Declared
from shipway.functions.registry import Deployed
from shipway.store.tables import Function, FunctionTrigger

#: Changes a plan can list, in the order people read them.
ACTIONS = ("create", "update", "delete", "unchanged")


@dataclass
class Change:
    function: str
    action: str
    #: What differs, for people: "source", "timeout 30 → 60", "trigger gra added".
    details: list[str] = field(default_factory=list)
    deployed: Deployed | None = None
    triggers: service.TriggerChange | None = None


def check(declared: list[Declared]) -> None:
    """Raise ValidationError, naming the function, unless every one compiles and its
    triggers parse. Blocks while the code compiles."""
    for item in declared:
        try:
            declarations.check_name(item.name)
            service.check_triggers(item.triggers)
            runtimes.check(item.runtime, item.source)
        except ValidationError as e:
            details = {**(e.details or {}), "function": item.name}
            raise ValidationError(f"{item.name}: {e.message}", details=details) from e


def apply(
    session: Session,
    principal: Principal,
    manifest: str,
    declared: list[Declared],
    box: SecretBox,
    *,
    dry_run: bool = False,
) -> list[Change]:
    """Bring the tenant's functions in line with DECLARED, the whole of MANIFEST."""
    principal.require(Role.DEPLOYER)
    names = [d.name for d in declared]
    if len(set(names)) != len(names):
        raise ValidationError("the manifest declares a function twice")
    changes = [_one(session, principal, manifest, d, box, dry_run) for d in declared]
    stale = session.scalars(
        select(Function).where(
            Function.organization_id == principal.organization_id,
            Function.manifest == manifest,
            Function.name.not_in(names),
        )
    ).all()
    for fn in stale:
        removed = service.trigger_names(session, fn)
        change = Change(fn.name, "delete", triggers=service.TriggerChange({}, removed))
        if not dry_run:
            service.delete(session, principal, fn.name)
        changes.append(change)
    return sorted(changes, key=lambda c: (ACTIONS.index(c.action), c.function))


def _one(
    session: Session,
    principal: Principal,
    manifest: str,
    wanted: Declared,
    box: SecretBox,
    dry_run: bool,
) -> Change:
    fn = session.scalar(
        select(Function).where(
            Function.organization_id == principal.organization_id, Function.name == wanted.name
        )
    )
    if fn is not None and fn.manifest not in (None, manifest):
        raise Conflict(
            f"{wanted.name} is declared by {fn.manifest}; remove it there first",
            details={"function": wanted.name, "manifest": fn.manifest},
        )
    details = _differences(session, fn, wanted, box) if fn is not None else []
    action = "create" if fn is None else "update" if details else "unchanged"
    change = Change(wanted.name, action, details)
    if dry_run or action == "unchanged":
        return change
    settings = service.Settings(
        timeout=wanted.timeout,
        memory_mb=wanted.memory_mb,
        public=wanted.public,
        environment=wanted.environment,
        secrets={},
    )
    version = service.deploy(
        session,
        principal,
        wanted.name,
        runtime=wanted.runtime,
        source=wanted.source,
        settings=settings,
        box=box,
        description=f"Apply {manifest}",
    )
    fn = session.get(Function, version.function_id)
    assert fn is not None
    fn.manifest = manifest
    change.deployed = Deployed.of(fn, version)
    change.triggers = service.set_triggers(session, principal, fn, wanted.triggers)
    return change


def _differences(session: Session, fn: Function, wanted: Declared, box: SecretBox) -> list[str]:
    current = service.version_of(session, fn, fn.version)
    found = []
    if current.source != wanted.source:
        found.append("source")
    for what, old, new in (
        ("runtime", fn.runtime, wanted.runtime),
        ("timeout", fn.timeout, wanted.timeout),
        ("memory", fn.memory_mb, wanted.memory_mb),
        ("public", fn.public, wanted.public),
    ):
        if old != new:
            found.append(f"{what} {old} → {new}")
    if config.environment(fn.environment, box) != dict(wanted.environment):
        found.append("environment")
    triggers = {
        t.name: (t.spec, t.params)
        for t in session.scalars(
            select(FunctionTrigger).where(FunctionTrigger.function_id == fn.id)
        )
    }
    for name in sorted(triggers.keys() | wanted.triggers.keys()):
        if name not in triggers:
            found.append(f"trigger {name} added")
        elif name not in wanted.triggers:
            found.append(f"trigger {name} removed")
        elif triggers[name] != tuple(wanted.triggers[name]):
            found.append(f"trigger {name} changed")
    return found
