"""The node agent: runs releases as sandboxed instances and keeps the router pointed at them.

Each app environment has at most one live generation (the instances of one release). A
deploy starts a new generation beside the live one and, once every instance is healthy,
switches the route to it in one step; the old generation drains, then stops. An app with an
idle timeout is stopped when idle and woken by its next request. At start, `reconcile` brings
back every live deployment recorded in the store.

Before a deploy starts its instances, the release phase (the Procfile's `release:`, e.g. the
app's migrations) runs once in a sandbox like a web instance's, with a wall-clock limit; if it
fails, nothing of the release starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import shutil
import socket
import time
import uuid
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from shipway import tracing
from shipway.apps.secretbox import SecretBox
from shipway.apps.service import PRODUCTION
from shipway.deploys import service as deploys
from shipway.deploys.lifecycle import DeploymentStatus
from shipway.errors import ShipwayError, ValidationError
from shipway.logs.mask import Masker
from shipway.oci import container as containers
from shipway.oci.podman import Podman
from shipway.releases.layers import LayerStore
from shipway.releases.manifest import RELEASE, stack_environment
from shipway.router import Route, RouteTable
from shipway.runtime import placement as placements
from shipway.runtime.applog import AppLog
from shipway.runtime.instance import (
    TAIL_LINES,
    Instance,
    InstanceFailed,
    InstanceSpec,
    execute,
    last_output,
)
from shipway.runtime.lifecycle import InstanceState
from shipway.runtime.placement import Key, Placement
from shipway.sandbox import Limits, Mount, SandboxError, expect_sandboxes, network
from shipway.settings import DEFAULT_RELEASE_TIMEOUT
from shipway.store import Store
from shipway.store.tables import App, Deployment, Environment

if TYPE_CHECKING:
    from opentelemetry.context import Context

log = logging.getLogger(__name__)

#: Seconds an old generation gets to finish the requests in flight after a switch.
DRAIN_SECONDS = 30.0
#: The port an isolated instance listens on inside its own network namespace.
INSTANCE_PORT = 5000
#: How often idle apps are looked for, in seconds.
IDLE_CHECK_SECONDS = 1.0

#: Instance limits by plan; instances run until stopped.
PLAN_LIMITS = {
    "free": Limits(memory_mb=512, processes=256, file_size_mb=1024, wall_seconds=math.inf),
    "pro": Limits(memory_mb=2048, processes=1024, file_size_mb=4096, wall_seconds=math.inf),
}


class ReleasePhaseFailed(ShipwayError):
    """Raised when a release phase fails, times out or is killed; the message says which, with
    its last output."""

    code = "release_phase_failed"


@dataclass
class Generation:
    """The instances of one release in one environment (none when asleep or static)."""

    placement: Placement
    instances: list[Instance] = field(default_factory=list)
    asleep: bool = False
    #: While asleep: the start under way, which every waiting request shares.
    waking: asyncio.Future[None] | None = None

    def upstreams(self) -> tuple[Any, ...]:
        return tuple(
            i.upstream
            for i in self.instances
            if i.upstream is not None and i.state is InstanceState.HEALTHY
        )

    async def stop(self, drain: float = 0.0) -> None:
        await asyncio.gather(*(i.stop(drain) for i in self.instances), return_exceptions=True)


def _isolate_instances() -> bool:
    """Whether instances get a network namespace of their own: always, unless they cannot have
    one here and the operator allowed them to share the host's."""
    possible = network.state().isolation is network.Isolation.ISOLATED
    return possible or not network.shared_allowed()


class Runtime:
    def __init__(
        self,
        store: Store,
        data_dir: Path,
        table: RouteTable,
        *,
        base_domain: str,
        js: Any = None,
        isolated: bool | None = None,
        release_timeout: float = DEFAULT_RELEASE_TIMEOUT,
    ) -> None:
        self.store = store
        self.data_dir = data_dir
        self.table = table
        self.base_domain = base_domain
        self.js = js
        #: Instances get a network namespace of their own; they share the host's only where
        #: they cannot have one and the operator allowed it (--unsafe-shared-network).
        self.isolated = _isolate_instances() if isolated is None else isolated
        #: Seconds a release phase may run before it is killed.
        self.release_timeout = release_timeout
        self.layers = LayerStore(data_dir / "layers")
        self.podman = Podman(data_dir)
        self._scratch_root = data_dir / "run" / "instances"
        self.box = SecretBox.load(data_dir)
        self._live: dict[Key, Generation] = {}
        self._pending: dict[int, Generation] = {}
        #: Starts `prelaunch` began that no `launch` has taken over yet.
        self._early: dict[int, asyncio.Task[Generation | None]] = {}
        #: Deployments whose `launch` is under way.
        self._launching: set[int] = set()
        self._logs: dict[int, AppLog] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._idle_task: asyncio.Task[None] | None = None

    # -- deploys ---------------------------------------------------------------------------

    async def release_phase(self, deployment_id: int) -> float | None:
        """Run the release command of a deploying deployment's release once, before `launch`
        starts any of its instances, and return the seconds it took; None when there is none
        to run (no `release:`, or a rollback: the release phase ran when its code first went
        out). Raises ReleasePhaseFailed, with its last output, if it fails, runs past the
        release timeout or hits a limit."""
        expect_sandboxes()
        place, source, _ = await asyncio.to_thread(self._deployment, deployment_id)
        command = _release_command(place, source)
        if command is None:
            return None
        with tracing.span("release.phase", _traced(place)):
            return await self._release_phase(place, command)

    async def _release_phase(self, place: Placement, command: str) -> float:
        applog = self._log(place)
        applog.hide(place.secrets)
        applog.say(f"[shipway] Running release phase of v{place.version}: {command}")
        spec = self._spec(place, RELEASE, command)
        spec = replace(spec, limits=replace(spec.limits, wall_seconds=self.release_timeout))
        tail: deque[str] = deque(maxlen=TAIL_LINES)

        def line(text: str) -> None:
            tail.append(text)
            applog.say(f"{spec.name}: {text}")

        spec.scratch.mkdir(parents=True)
        started = time.perf_counter()
        try:
            failure = (await execute(spec, line)).reason  # None: it exited with 0
        except SandboxError as e:
            failure = f"it could not start: {e}"
        except asyncio.CancelledError:
            applog.say(f"[shipway] Release phase of v{place.version} stopped")
            raise
        finally:
            await asyncio.to_thread(shutil.rmtree, spec.scratch, True)
        seconds = time.perf_counter() - started
        if failure is None:
            applog.say(f"[shipway] Release phase of v{place.version} done in {seconds:.2f} s")
            return seconds
        applog.say(f"[shipway] Release phase of v{place.version} failed after {seconds:.2f} s")
        # The reason is shown beyond the app's log (the push, the API): masked as the log is.
        reason = f"release phase failed ({failure}){last_output(tail)}"
        raise ReleasePhaseFailed(Masker(place.secrets).mask(reason))

    async def launch(self, deployment_id: int) -> Generation:
        """Start the release of a deploying deployment and wait until it is healthy; it is
        routed by `route`. It takes over the start `prelaunch` began, if any. Raises
        InstanceFailed (nothing left running) when it cannot be."""
        self._launching.add(deployment_id)
        try:
            early = self._early.pop(deployment_id, None)
            generation = await early if early is not None else None
            if generation is None:
                expect_sandboxes()
                place = (await asyncio.to_thread(self._deployment, deployment_id))[0]
                generation = await self._start_pending(deployment_id, place)
            return generation
        finally:
            self._launching.discard(deployment_id)

    def prelaunch(self, deployment_id: int, parent: Context | None = None) -> bool:
        """Begin to start the release of a deployment just recorded deploying, before its
        workflow asks for it (`launch` then takes it over); whether it began. Nothing begins
        where a start of it is under way or done; and what began starts nothing when the
        deployment is no longer deploying, or its release has a release phase to run first.
        Its span is a child of PARENT: the change that made it deploying."""
        if any(deployment_id in begun for begun in (self._early, self._launching, self._pending)):
            return False
        self._early[deployment_id] = asyncio.ensure_future(self._prelaunch(deployment_id, parent))
        return True

    async def forget_early(self, deployment_id: int) -> None:
        """Stop what `prelaunch` began for a deployment that is no longer deploying, if no
        `launch` took it over (its workflow ended, or was replaced, before it asked)."""
        if deployment_id in self._early:
            await self.discard(deployment_id)

    async def _prelaunch(self, deployment_id: int, parent: Context | None) -> Generation | None:
        expect_sandboxes()
        traced = {"shipway.deployment.id": deployment_id}
        with tracing.span("release.early_start", traced, parent=parent):
            try:
                place, source, status = await asyncio.to_thread(self._deployment, deployment_id)
            except ValidationError:
                return None
            if status is not DeploymentStatus.DEPLOYING or _release_command(place, source):
                return None
            return await self._start_pending(deployment_id, place)

    async def _start_pending(self, deployment_id: int, place: Placement) -> Generation:
        """Start PLACE for DEPLOYMENT_ID, stopping what a superseded deploy of the same
        environment started; it waits in `_pending` for `route`."""
        for other_id, other in list(self._pending.items()):
            if other.placement.key == place.key:  # a superseded deploy's instances
                del self._pending[other_id]
                self._spawn(other.stop())
        generation = await self._start(place)
        self._pending[deployment_id] = generation
        return generation

    def route(self, deployment_id: int) -> bool:
        """Switch the router to what `launch` started; False when nothing is waiting."""
        generation = self._pending.pop(deployment_id, None)
        if generation is None:
            return False
        with tracing.span("route.switch", _traced(generation.placement)):
            self._promote(generation)
        if not generation.placement.static:
            self._spawn(self._follow_formation(generation.placement.app_id))
        return True

    async def discard(self, deployment_id: int) -> None:
        """Stop what `launch` (or `prelaunch`) started for a deployment that will not go
        live."""
        early = self._early.pop(deployment_id, None)
        if early is not None:
            early.cancel()
            with contextlib.suppress(BaseException):
                await early
        generation = self._pending.pop(deployment_id, None)
        if generation is not None:
            await generation.stop()

    def deploying(self, deployment_id: int) -> bool:
        """Whether the deployment is deploying still (a store read: call it in a thread)."""
        with self.store.transaction() as session:
            row = session.get(Deployment, deployment_id)
            return row is not None and row.status == DeploymentStatus.DEPLOYING.value

    def _deployment(self, deployment_id: int) -> tuple[Placement, str, DeploymentStatus]:
        """What a deployment runs, what made it (its source: git, upload, config, rollback)
        and its status."""
        with self.store.transaction() as session:
            deployment = session.get(Deployment, deployment_id)
            if deployment is None or deployment.release_id is None:
                raise ValidationError(f"deployment {deployment_id} has no release to run")
            env = session.get(Environment, deployment.environment_id)
            assert env is not None
            place = placements.load(
                session, deployment.release_id, env.name, self.base_domain, self.box, self.data_dir
            )
            return place, deployment.source, DeploymentStatus(deployment.status)

    async def _start(self, place: Placement) -> Generation:
        """A generation of PLACE with every instance healthy (static sites have none)."""
        generation = Generation(place)
        if place.static:
            return generation
        counts = place.counts()
        if not counts:
            raise InstanceFailed(
                "the release has no processes to run: add a Procfile with a line like "
                "`web: gunicorn app:app --bind 0.0.0.0:$PORT`"
            )
        applog = self._log(place)
        applog.hide(place.secrets)
        summary = ", ".join(f"{kind}={n}" for kind, n in counts.items())
        applog.say(f"[shipway] Starting v{place.version} in {place.environment} ({summary})")
        started = time.perf_counter()
        for kind, count in counts.items():
            for number in range(1, count + 1):
                generation.instances.append(self._instance(place, kind, number, generation))
        results = await asyncio.gather(
            *(i.start() for i in generation.instances), return_exceptions=True
        )
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        if failure is not None:
            await generation.stop()
            applog.say(f"[shipway] v{place.version} did not start: {failure}")
            if isinstance(failure, InstanceFailed):
                # The reason is shown beyond the app's log (the push, the API): masked as the
                # log is, and not chained to the unmasked one.
                raise InstanceFailed(
                    Masker(place.secrets).mask(failure.message), details=failure.details
                ) from None
            raise failure
        seconds = time.perf_counter() - started
        applog.say(f"[shipway] v{place.version} healthy in {seconds:.2f} s")
        return generation

    def _instance(self, place: Placement, kind: str, number: int, owner: Generation) -> Instance:
        port = None
        if kind == "web":
            port = (place.manifest.port or INSTANCE_PORT) if self.isolated else _free_port()
        command = place.manifest.commands()[kind]
        spec = self._spec(place, f"{kind}.{number}", command, port)
        return Instance(spec, self._log(place).say, lambda _: self._changed(owner))

    def _spec(
        self, place: Placement, process: str, command: str, port: int | None = None
    ) -> InstanceSpec:
        """How PROCESS of PLACE runs (an instance, `web.1`, or the release phase, `release`):
        what its sandbox sees, its environment, its limits."""
        env = _environment(place, process)
        if port is not None:
            env["PORT"] = str(port)
        return InstanceSpec(
            name=_process_name(place, process),
            command=command,
            env=env,
            mounts=self._mounts(place),
            scratch=self._scratch_root / f"{place.app_id}-{uuid.uuid4().hex[:12]}",
            limits=PLAN_LIMITS.get(place.plan, PLAN_LIMITS["free"]),
            port=port,
            isolated=self.isolated,
            health_path=place.health_path,
            health_timeout=float(place.health_timeout),
            health_host=place.host,
            hostname=place.app,
            image=place.manifest.image,
            podman=self.podman if place.manifest.image is not None else None,
        )

    def _mounts(self, place: Placement) -> tuple[Mount, ...]:
        """The release's layers and its add-ons' sockets, as every sandbox of it sees them."""
        layers = (
            Mount(self.layers.path(layer.digest), layer.mount) for layer in place.manifest.layers
        )
        return (*layers, *place.attachments)

    def _changed(self, generation: Generation) -> None:
        """An instance of GENERATION changed state: keep its route to the healthy ones."""
        key = generation.placement.key
        if self._live.get(key) is generation:
            self._switch(generation)

    def _promote(self, generation: Generation) -> None:
        key = generation.placement.key
        old = self._live.get(key)
        self._live[key] = generation
        self._switch(generation)
        if old is not None and old is not generation:
            self._spawn(old.stop(DRAIN_SECONDS))

    def _switch(self, generation: Generation) -> None:
        place = generation.placement
        current = self.table.get(place.host)
        route = Route(app=place.app, environment=place.environment)
        if place.static:
            assert place.manifest.static_root is not None
            app_layer = next(lay for lay in place.manifest.layers if lay.role == "app")
            route.static_root = self.layers.path(app_layer.digest) / place.manifest.static_root
        elif generation.asleep:
            route.waker = lambda: self._wake(generation)
        else:
            route.upstreams = generation.upstreams()
        if current is not None:
            route.last_request = current.last_request
        self.table.switch(place.host, route)

    # -- scale and sleep -------------------------------------------------------------------

    async def scale(self, app_id: int, formation: dict[str, int]) -> None:
        """Run FORMATION in every live environment of the app, without downtime. A release
        that goes live while the new instances start is scaled in its turn."""
        for key in [key for key in self._live if key[0] == app_id]:
            while (generation := self._live.get(key)) is not None:
                if generation.placement.static or generation.placement.formation == formation:
                    break
                place = replace(generation.placement, formation=dict(formation))
                if generation.asleep:
                    generation.placement = place
                    break
                fresh = await self._start(place)
                if self._live.get(key) is generation:
                    self._promote(fresh)
                    break
                await fresh.stop()

    async def _follow_formation(self, app_id: int) -> None:
        """After a release went live: a scale stored while it started reaches it too (its
        formation was read when it was launched)."""
        formation = await asyncio.to_thread(self._stored_formation, app_id)
        if formation is None:
            return
        try:
            await self.scale(app_id, formation)
        except InstanceFailed as e:  # the release keeps running as it went live
            log.warning("app %s: scaling the new release to %s failed: %s", app_id, formation, e)

    def _stored_formation(self, app_id: int) -> dict[str, int] | None:
        with self.store.transaction() as session:
            app = session.get(App, app_id)
            return None if app is None else dict(app.formation or {})

    async def refresh(self, app_id: int) -> None:
        """Take up the app's changed settings (idle timeout, health check) from the store; they
        apply from now on, and the health check from the next start."""
        app = await asyncio.to_thread(self._app_settings, app_id)
        if app is None:
            return
        for key, generation in self._live.items():
            if key[0] == app_id:
                generation.placement = replace(generation.placement, **app)

    def _app_settings(self, app_id: int) -> dict[str, Any] | None:
        with self.store.transaction() as session:
            app = session.get(App, app_id)
            if app is None:
                return None
            return {
                "idle_timeout": app.idle_timeout,
                "health_path": app.health_path,
                "health_timeout": app.health_timeout,
            }

    async def _wake(self, sleeping: Generation) -> None:
        """Start a sleeping app, once however many requests wait on it."""
        if sleeping.waking is None:
            sleeping.waking = asyncio.ensure_future(self._start_awake(sleeping))
        try:
            await asyncio.shield(sleeping.waking)
        except Exception:
            sleeping.waking = None  # the next request tries again
            raise

    async def _start_awake(self, sleeping: Generation) -> None:
        fresh = await self._start(sleeping.placement)
        if self._live.get(sleeping.placement.key) is sleeping:
            self._log(sleeping.placement).say("[shipway] Woken by a request")
            self._promote(fresh)
        else:
            await fresh.stop()

    def _sleep(self, generation: Generation) -> None:
        place = generation.placement
        self._log(place).say(
            f"[shipway] Idle for {place.idle_timeout} s: stopping until the next request"
        )
        self._promote(Generation(place, asleep=True))

    async def _idle_loop(self) -> None:
        while True:
            await asyncio.sleep(IDLE_CHECK_SECONDS)
            now = time.monotonic()
            for generation in list(self._live.values()):
                place = generation.placement
                if place.idle_timeout is None or generation.asleep or not generation.instances:
                    continue
                route = self.table.get(place.host)
                if route is None or now - route.last_request < place.idle_timeout:
                    continue
                if any(u.active for u in generation.upstreams()):
                    continue
                self._sleep(generation)

    # -- whole environments ------------------------------------------------------------------

    async def reconcile(self) -> int:
        """Route every environment whose latest deployment is live, as recorded in the store.

        Each gets a route at once that wakes it on the first request; those without an idle
        timeout are then started in the background. Returns how many were restored."""
        # Scratch dirs and containers of instances a killed shipway left behind.
        await asyncio.to_thread(shutil.rmtree, self._scratch_root, True)
        await containers.sweep(self.podman)
        found = await asyncio.to_thread(self._live_placements)
        for place in found:
            generation = Generation(place, asleep=not place.static)
            self._live[place.key] = generation
            self._switch(generation)
            if place.idle_timeout is None and not place.static:
                self._spawn(self._restore(generation))
        if self._idle_task is None:
            self._idle_task = asyncio.create_task(self._idle_loop(), name="runtime-idle")
        return len(found)

    async def _restore(self, generation: Generation) -> None:
        try:
            await self._wake(generation)
        except InstanceFailed as e:
            log.warning("cannot restore %s: %s", generation.placement.host, e)

    def _live_placements(self) -> list[Placement]:
        found = []
        with self.store.transaction() as session:
            rows = session.execute(
                select(Deployment.release_id, Environment.name)
                .join(Environment, Environment.id == Deployment.environment_id)
                .where(
                    Deployment.status == DeploymentStatus.LIVE.value,
                    Deployment.release_id.is_not(None),
                )
            ).all()
            for release_id, env in rows:
                assert release_id is not None
                try:
                    found.append(
                        placements.load(
                            session, release_id, env, self.base_domain, self.box, self.data_dir
                        )
                    )
                except Exception as e:  # one broken release must not keep the others down
                    log.warning("cannot restore release %s of %s: %s", release_id, env, e)
        return found

    async def remove(self, app_id: int, environment: str | None = None) -> list[str]:
        """Stop serving an app (every environment) or one environment; returns the hosts."""
        removed = []
        for key, generation in list(self._live.items()):
            if key[0] == app_id and environment in (None, key[1]):
                del self._live[key]
                self.table.remove(generation.placement.host)
                removed.append(generation.placement.host)
                await generation.stop()
        if environment is None and app_id in self._logs:
            await self._logs.pop(app_id).close()
        return removed

    def describe(self, app_id: int) -> list[dict[str, Any]]:
        """The app's live environments with their release and instances, for `apps info`."""
        out = []
        for key, generation in sorted(self._live.items()):
            if key[0] != app_id:
                continue
            place = generation.placement
            out.append(
                {
                    "environment": place.environment,
                    "host": place.host,
                    "release": place.version,
                    "state": "static"
                    if place.static
                    else "asleep"
                    if generation.asleep
                    else "running",
                    "instances": [i.describe() for i in generation.instances],
                }
            )
        return out

    async def close(self) -> None:
        """Stop every instance at once (shipway is stopping; `reconcile` restores them)."""
        if self._idle_task is not None:
            self._idle_task.cancel()
        early = list(self._early.values())
        self._early.clear()
        for task in early:
            task.cancel()
        await asyncio.gather(*early, return_exceptions=True)
        generations = [*self._live.values(), *self._pending.values()]
        self._live.clear()
        self._pending.clear()
        await asyncio.gather(*(g.stop() for g in generations), return_exceptions=True)
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await asyncio.gather(*(applog.close() for applog in self._logs.values()))

    # -- helpers ---------------------------------------------------------------------------

    def _log(self, place: Placement) -> AppLog:
        applog = self._logs.get(place.app_id)
        if applog is None:
            applog = self._logs[place.app_id] = AppLog(self.store, self.js, place.app_id)
        return applog

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _release_command(place: Placement, source: str) -> str | None:
    """The release phase to run before PLACE starts: none for a rollback, whose release
    phase ran when its code first went out."""
    return None if source == deploys.ROLLBACK else place.manifest.release_command


def _traced(place: Placement) -> tracing.Attributes:
    """What the spans of a deploy's steps on the node say of the release."""
    return {
        "shipway.app": place.app,
        "shipway.environment": place.environment,
        "shipway.release.version": place.version,
        "server.address": place.host,
    }


def _process_name(place: Placement, process: str) -> str:
    """How the app's log names a process of PLACE: `web.1`, or `feature-x/web.1` in a preview."""
    if place.environment == PRODUCTION:
        return process
    return f"{place.environment}/{process}"


def _environment(place: Placement, process: str) -> dict[str, str]:
    """The environment of every sandbox of PLACE (PROCESS is `web.1`, `release`, …): the
    stack's PATH and friends, under the release's config vars, under shipway's own."""
    return {
        **stack_environment(place.manifest.stack),
        **place.env,
        "SHIPWAY_APP": place.app,
        "SHIPWAY_ENVIRONMENT": place.environment,
        "SHIPWAY_RELEASE": f"v{place.version}",
        "SHIPWAY_PROCESS": process,
    }


def _free_port() -> int:
    """A port nothing listens on now, for an instance on the host's network."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
