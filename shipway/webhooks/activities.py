"""HookWorkflow's steps on the control plane: fetch a pushed commit from the git host into
the app's bare repository and launch its deployment, wait for the deployment to end, report
commit statuses, remove previews, and record how the delivery went."""

from __future__ import annotations

import asyncio
import fcntl
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from shipway import eventbus
from shipway.accounts.roles import Principal, Role
from shipway.apps import hosts
from shipway.apps.secretbox import SecretBox
from shipway.apps.service import PRODUCTION
from shipway.deploys import launch as launcher
from shipway.deploys import previews, service
from shipway.deploys.lifecycle import DeploymentStatus, settled
from shipway.errors import NotFound, ShipwayError, TooLarge, ValidationError
from shipway.fleet.dispatch import Rules
from shipway.gitserver import archive, commits, repos
from shipway.links import NatsLink
from shipway.nodes.client import NodeClient
from shipway.settings import Settings
from shipway.store import Store
from shipway.store.tables import App, Deployment, Organization
from shipway.webhooks import connections, fetch, githost, status
from shipway.webhooks.connections import Connection
from shipway.webhooks.lifecycle import DeliveryStatus
from shipway.webhooks.workflow import (
    LAUNCH_ACTIVITY,
    OUTCOME_ACTIVITY,
    REMOVE_ACTIVITY,
    REPORT_ACTIVITY,
    SETTLE_ACTIVITY,
    Ended,
    Launched,
    LaunchInput,
    Report,
    Settle,
    Work,
)

T = TypeVar("T")

#: Seconds one wait for a deployment's end lasts before it starts over (the activity's own
#: timeout bounds the whole wait).
LONGEST_WAIT = 3600.0
#: How often a long step tells Temporal it is still at work.
HEARTBEAT_SECONDS = 3.0
#: Host answers that trying again will not change.
FINAL_ANSWERS = frozenset({400, 401, 403, 404, 422})
#: Errors of ours that trying again will not change.
_REFUSALS = (ValidationError, NotFound, TooLarge)


@dataclass(frozen=True)
class _Target:
    connection: Connection
    identity: str
    organization: str | None


def _refused(error: ShipwayError) -> ApplicationError:
    return ApplicationError(error.message, type="Refused", non_retryable=True)


def _webhook(organization_id: int, provider: str) -> Principal:
    """Who deploys and removes previews for a delivery: a deployer named for its host."""
    return Principal(organization_id, Role.DEPLOYER, connections.actor(provider))


def environment_of(work: Work) -> str:
    """The environment WORK deploys or removes: a pull request's own, or its branch's."""
    if work.number is not None:
        return f"pr-{work.number}"
    return service.environment_name(f"refs/heads/{work.branch}")[0]


class HookActivities:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        runtime: NodeClient | None = None,
        rules: Rules | None = None,
        link: NatsLink | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.runtime = runtime
        self.rules = rules
        self.link = link
        self.js = link.js if link is not None else None
        self.box = SecretBox.load(settings.data_dir)

    @activity.defn(name=LAUNCH_ACTIVITY)
    async def launch(self, spec: LaunchInput) -> Launched:
        """Fetch the commit into the app's bare repository and launch its deployment."""
        work = spec.work
        assert work.sha is not None
        try:
            target = await asyncio.to_thread(self._target, spec.app_id)
            environment = environment_of(work)
        except _REFUSALS as e:
            raise _refused(e) from None
        found = target.connection
        repo = await asyncio.to_thread(
            repos.ensure, self.settings.data_dir, found.organization_id, found.app, target.identity
        )
        upload = launcher.upload_path(self.settings.data_dir)
        try:
            fetched = await _beating(asyncio.to_thread(self._fetch, repo, found, work, upload))
            sha = fetched.sha
            commit = await asyncio.to_thread(commits.describe, repo, sha)
            principal = _webhook(found.organization_id, found.provider)
            launched = await _beating(
                launcher.launch(
                    self.store,
                    activity.client(),
                    principal,
                    found.app,
                    upload,
                    ref=f"refs/heads/{work.branch}" if work.branch else None,
                    sha=sha,
                    source="git",
                    environment=environment if work.number is not None else None,
                    build_timeout=self.settings.build_timeout,
                    rules=self.rules,
                    js=self.js,
                    commit=commit,
                )
            )
        except _REFUSALS as e:
            raise _refused(e) from None
        finally:
            upload.unlink(missing_ok=True)
        await asyncio.to_thread(self._deploying, spec.delivery, launched, fetched)
        host = hosts.hostname(
            found.app, launched.environment, self.settings.base_domain, target.organization
        )
        url = hosts.url(host, self.settings.port)
        return Launched(launched.deployment_id, launched.environment, url, sha, str(fetched))

    @activity.defn(name=OUTCOME_ACTIVITY)
    async def outcome(self, deployment_id: int) -> Ended:
        """Wait for the deployment to go live or stop: look whenever it changes (its events,
        shipway.eventbus), and heartbeat meanwhile."""

        async def look() -> Ended | None:
            activity.heartbeat()
            return await asyncio.to_thread(self._ended, deployment_id)

        on = eventbus.subject("deployment", deployment_id)
        while True:
            ended = await eventbus.until(
                self.link, on, look, LONGEST_WAIT, recheck=HEARTBEAT_SECONDS
            )
            if ended is not None:
                return ended

    @activity.defn(name=REPORT_ACTIVITY)
    async def report(self, spec: Report) -> str:
        """Set the commit's status on the host; without a token there is no reporting."""
        try:
            found = await asyncio.to_thread(self._connection, spec.app_id)
        except NotFound as e:
            raise _refused(e) from None
        if found.token is None:
            said = "not reported: the connection has no token"
        else:
            async with httpx.AsyncClient(timeout=10.0) as http:
                try:
                    await status.report(
                        http,
                        found.provider,
                        found.api_url,
                        found.repo,
                        found.token,
                        spec.sha,
                        status.State(spec.state),
                        target_url=spec.url,
                        description=spec.description,
                    )
                except status.StatusError as e:
                    if e.status in FINAL_ANSWERS:
                        raise _refused(e) from None
                    raise
                except ValidationError as e:  # a sha the host's API would not take
                    raise _refused(e) from None
            said = spec.state
        await asyncio.to_thread(self._note, spec.delivery, said)
        return said

    @activity.defn(name=REMOVE_ACTIVITY)
    async def remove(self, spec: LaunchInput) -> str:
        """Remove the preview of a deleted branch or a closed pull request."""
        work = spec.work
        try:
            environment = environment_of(work)
        except ValidationError:
            return "it had no preview"
        if environment == PRODUCTION:
            return "the production branch was deleted; production keeps running"
        try:
            principal, app = await asyncio.to_thread(self._acting, spec.app_id)
            await previews.remove(self.store, self.runtime, principal, app, environment)
        except NotFound:
            return "it had no preview"
        except ValidationError as e:
            raise _refused(e) from None
        return f"removed its preview {environment}"

    @activity.defn(name=SETTLE_ACTIVITY)
    async def settle(self, spec: Settle) -> None:
        await asyncio.to_thread(self._settle, spec)

    def _fetch(self, repo: Path, found: Connection, work: Work, upload: Path) -> fetch.Fetched:
        """Bring the commit into REPO (one fetch at a time: two would race for its refs) and
        write its tree to UPLOAD."""
        assert work.sha is not None
        with open(repo / "shipway-fetch.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            fetched = fetch.fetch(
                repo,
                githost.clone_url(found.provider, found.api_url, found.repo),
                found.provider,
                found.token,
                branch=work.branch,
                sha=work.sha,
                pull=work.number,
            )
            archive.write(repo, fetched.sha, upload, self.settings.max_source)
            return fetched

    def _connection(self, app_id: int) -> Connection:
        with self.store.transaction() as session:
            return connections.opened(session, self.box, app_id)

    def _target(self, app_id: int) -> _Target:
        with self.store.transaction() as session:
            found = connections.opened(session, self.box, app_id)
            app = session.get(App, app_id)
            assert app is not None
            organization = hosts.label(session.get(Organization, app.organization_id))
            return _Target(found, repos.identity(app.id, app.created_at), organization)

    def _deploying(
        self, delivery: int, launched: launcher.Launched, fetched: fetch.Fetched
    ) -> None:
        with self.store.transaction() as session:
            connections.move(
                session,
                delivery,
                DeliveryStatus.DEPLOYING,
                f"deployment {launched.deployment_id} to {launched.environment} ({fetched})",
                deployment_id=launched.deployment_id,
            )

    def _ended(self, deployment_id: int) -> Ended | None:
        with self.store.transaction() as session:
            deployment = session.get(Deployment, deployment_id)
            if deployment is None:
                return Ended("removed", "its environment was removed")
            current = DeploymentStatus(deployment.status)
            if settled(current):
                return Ended(current, deployment.reason)
            return None

    def _note(self, delivery: int, said: str) -> None:
        with self.store.transaction() as session:
            connections.note_report(session, delivery, said)

    def _acting(self, app_id: int) -> tuple[Principal, str]:
        """Who acts for the app's repository host, and the app's name."""
        with self.store.transaction() as session:
            app = session.get(App, app_id)
            connection = connections.find(session, app_id)
            if app is None or connection is None:
                raise NotFound("the app is no longer connected to a repository")
            return _webhook(app.organization_id, connection.provider), app.name

    def _settle(self, spec: Settle) -> None:
        with self.store.transaction() as session:
            connections.move(session, spec.delivery, DeliveryStatus(spec.status), spec.detail)
            if spec.unreported:
                connections.note_report(session, spec.delivery, f"not reported: {spec.unreported}")


async def _beating(work: Awaitable[T]) -> T:
    """WORK's result, heartbeating meanwhile: a worker lost mid-fetch is noticed in seconds."""
    task = asyncio.ensure_future(work)
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=HEARTBEAT_SECONDS)
            activity.heartbeat()
    except asyncio.CancelledError:
        task.cancel()
        raise
    return task.result()
