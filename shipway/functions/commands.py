"""What people ask of their functions, each as one whole command: deploy, roll back, delete,
apply a manifest, call.

A change is not done once the store has it: function workers run the version the registry's
KV bucket names, and Temporal runs the triggers. So every change is written in one
transaction, then published to the registry, then the function's schedules are brought in
step, always in that order and always here. Calling a function is a command too, and the one
place that decides who may call which. The HTTP routes only parse and shape.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from temporalio.client import Client

from shipway.accounts.roles import Principal, Role
from shipway.apps.secretbox import SecretBox
from shipway.errors import NotFound, Unauthorized
from shipway.functions import manifest as manifests
from shipway.functions import runtimes, service
from shipway.functions.declared import (
    DEFAULT_MEMORY_MB,
    DEFAULT_TIMEOUT,
    Declared,
    check_name,
    runtime_for,
)
from shipway.functions.invoke import Invoker, Ran
from shipway.functions.registry import Deployed, Registry
from shipway.functions.schedules import sync as schedules
from shipway.store import Store
from shipway.store.tables import Function, Organization


@dataclass(frozen=True)
class Reach:
    """What a command changes: the store; the registry, None where no functions run in this
    process; Temporal, None when it is not connected (a change of triggers then fails)."""

    store: Store
    data_dir: Path
    registry: Registry | None = None
    temporal: Client | None = None


@dataclass(frozen=True)
class Code:
    """A function's code as it is sent: FILENAME's extension names its runtime unless RUNTIME
    does (with neither, the function's name is tried)."""

    source: str
    filename: str | None = None
    runtime: str | None = None

    def runtime_of(self, name: str) -> str:
        return runtime_for(self.filename or name, self.runtime)


@dataclass(frozen=True)
class Sent:
    """One function of a manifest as it is sent, checked only once the sender may deploy."""

    name: str
    code: Code
    timeout: int = DEFAULT_TIMEOUT
    memory_mb: int = DEFAULT_MEMORY_MB
    public: bool = False
    environment: Mapping[str, str] = field(default_factory=dict)
    triggers: Mapping[str, tuple[str, Any]] = field(default_factory=dict)

    def declared(self) -> Declared:
        return Declared(
            name=check_name(self.name),
            runtime=self.code.runtime_of(self.name),
            source=self.code.source,
            timeout=self.timeout,
            memory_mb=self.memory_mb,
            public=self.public,
            environment=self.environment,
            triggers=self.triggers,
        )


async def deploy(
    reach: Reach,
    principal: Principal,
    name: str,
    code: Code,
    settings: service.Settings,
    triggers: Mapping[str, tuple[str, Any]] | None = None,
) -> tuple[Function, list[str]]:
    """A new version of NAME (created on first deploy) running CODE, compiled first: a syntax
    error is a CompileError naming its line. TRIGGERS, when given, become exactly the
    function's triggers. The function, and the names of its triggers."""
    principal.require(Role.DEPLOYER)
    check_name(name)
    runtime = code.runtime_of(name)
    await asyncio.to_thread(runtimes.check, runtime, code.source)
    box = SecretBox.load(reach.data_dir)

    def write() -> tuple[Function, list[str], manifests.Change]:
        with reach.store.transaction() as session:
            version = service.deploy(
                session,
                principal,
                name,
                runtime=runtime,
                source=code.source,
                settings=settings,
                box=box,
            )
            fn = session.get(Function, version.function_id)
            assert fn is not None
            change = manifests.Change(name, "create" if version.version == 1 else "update")
            if triggers is not None:
                change.triggers = service.set_triggers(session, principal, fn, triggers)
            change.deployed = Deployed.of(fn, version)
            return fn, service.trigger_names(session, fn), change

    fn, trigger_names, change = await asyncio.to_thread(write)
    await publish([change], principal.organization_id, reach.registry, reach.temporal)
    return fn, trigger_names


async def rollback(reach: Reach, principal: Principal, name: str, to: int) -> Function:
    """A new version of NAME that runs the code of its version TO again."""

    def write() -> tuple[Function, manifests.Change]:
        with reach.store.transaction() as session:
            version = service.rollback(session, principal, name, to)
            fn = session.get(Function, version.function_id)
            assert fn is not None
            return fn, manifests.Change(name, "update", deployed=Deployed.of(fn, version))

    fn, change = await asyncio.to_thread(write)
    await publish([change], principal.organization_id, reach.registry, reach.temporal)
    return fn


async def delete(reach: Reach, principal: Principal, name: str) -> None:
    """Delete NAME with its versions, runs and schedules."""

    def write() -> manifests.Change:
        with reach.store.transaction() as session:
            removed = service.trigger_names(session, service.get(session, principal, name))
            service.delete(session, principal, name)
            return manifests.Change(name, "delete", triggers=service.TriggerChange({}, removed))

    change = await asyncio.to_thread(write)
    await publish([change], principal.organization_id, reach.registry, reach.temporal)


async def apply(
    reach: Reach, principal: Principal, manifest: str, functions: list[Sent], *, dry_run: bool
) -> list[manifests.Change]:
    """Make the functions of MANIFEST exactly FUNCTIONS, each compiled first; the changes,
    which with DRY_RUN are only planned."""
    principal.require(Role.DEPLOYER)
    wanted = [sent.declared() for sent in functions]
    await asyncio.to_thread(manifests.check, wanted)
    box = SecretBox.load(reach.data_dir)

    def write() -> list[manifests.Change]:
        with reach.store.transaction() as session:
            return manifests.apply(session, principal, manifest, wanted, box, dry_run=dry_run)

    changes = await asyncio.to_thread(write)
    if not dry_run:
        await publish(changes, principal.organization_id, reach.registry, reach.temporal)
    return changes


async def publish(
    changes: Iterable[manifests.Change],
    organization_id: int,
    registry: Registry | None,
    client: Client | None,
) -> None:
    """Carry CHANGES, once stored, to the workers' map of current versions (the registry;
    None where no functions run) and to the schedules."""
    for change in changes:
        if registry is not None and change.deployed is not None:
            await registry.publish(change.deployed)
        if registry is not None and change.action == "delete":
            await registry.unpublish(organization_id, change.function)
        if change.triggers is not None:
            await schedules.sync(client, organization_id, change.function, change.triggers)


async def call(
    reach: Reach,
    invoker: Invoker,
    principal: Principal | None,
    organization: str | None,
    name: str,
    params: Any,
) -> Ran:
    """Run function NAME of ORGANIZATION with PARAMS for PRINCIPAL (None: the caller sent no
    token), if it may. Without ORGANIZATION, the function is the caller's own, or without a
    token the platform's."""
    if organization is None and principal is not None:
        organization_id = principal.organization_id
    else:
        organization_id = await asyncio.to_thread(_organization, reach.store, organization)
    deployed = await invoker.find(organization_id, name)
    authorize_call(principal, deployed)
    return await invoker.invoke(organization_id, name, params, trigger="http", deployed=deployed)


def authorize_call(principal: Principal | None, deployed: Deployed) -> None:
    """Raise unless PRINCIPAL may call DEPLOYED: anyone may call a public function; a private
    one needs a deployer of its own organization, and to any other organization it does not
    exist."""
    if deployed.public:
        return
    if principal is None:
        raise Unauthorized(f"{deployed.name} is not public: send Authorization: Bearer TOKEN")
    if principal.organization_id != deployed.organization_id:
        raise NotFound(f"no function named {deployed.name!r}", details={"name": deployed.name})
    principal.require(Role.DEPLOYER)


def _organization(store: Store, name: str | None) -> int:
    """The organization NAME, or the platform's own (None)."""
    with store.transaction() as session:
        query = select(Organization.id)
        query = (
            query.where(Organization.name == name)
            if name is not None
            else query.where(Organization.is_admin.is_(True))
        )
        found = session.scalar(query)
    if found is None:
        raise NotFound(f"no organization named {name!r}")
    return found
