"""Request and response bodies of the REST API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from shipway.apps.service import PRODUCTION
from shipway.deploys.delivery import Delivery
from shipway.store.tables import ApiToken, App, Organization, Release, RepoConnection

#: The largest id and the range of every integer the API takes: the store's integer
#: columns hold 32 bits on every backend, so nothing larger is ever looked up or stored.
MAX_ID = 2**31 - 1
Int = Annotated[int, Field(ge=-MAX_ID - 1, le=MAX_ID)]
#: An id in a path: one that cannot exist is refused before the store is asked.
Id = Annotated[int, Path(ge=1, le=MAX_ID, description=f"an id, 1 to {MAX_ID}")]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ErrorDetail(BaseModel):
    code: str = Field(description="what went wrong, e.g. invalid, not_found")
    message: str = Field(description="one line naming the problem")
    details: Any = Field(default=None, description="structured facts, e.g. the field")


class ErrorOut(BaseModel):
    """The body of every 4xx answer."""

    error: ErrorDetail


class AppCreate(Body):
    name: str = Field(description="a lowercase DNS label of 1-40 characters, unique per tenant")
    plan: str = "free"
    region: str = "local"


class AppUpdate(Body):
    plan: str | None = None
    build_network: bool | None = Field(
        default=None, description="whether builds may reach the network (to download packages)"
    )
    idle_timeout: Int | None = Field(
        default=None,
        description="seconds without a request after which web instances stop until the next "
        "one (10-86400); null turns sleeping off. Left out: unchanged",
    )
    health_path: str | None = Field(
        default=None,
        description="the path (e.g. /up) a new instance must answer, below 500, to get traffic",
    )
    health_timeout: Int | None = Field(
        default=None, description="seconds a new instance has to pass its health check (1-600)"
    )


class EnvironmentOut(BaseModel):
    name: str
    kind: str
    branch: str | None
    url: str


class AppOut(BaseModel):
    name: str
    plan: str
    region: str
    build_network: bool
    idle_timeout: Int | None = Field(description="seconds idle before sleeping; null: never")
    health_path: str
    health_timeout: int
    created_at: datetime
    url: str
    environments: list[EnvironmentOut]

    @classmethod
    def of(cls, app: App, url: Callable[[str], str]) -> AppOut:
        """APP as the API shows it; URL gives the address of one of its environments."""
        return cls(
            name=app.name,
            plan=app.plan,
            region=app.region,
            build_network=app.build_network,
            idle_timeout=app.idle_timeout,
            health_path=app.health_path,
            health_timeout=app.health_timeout,
            created_at=app.created_at,
            url=url(PRODUCTION),
            environments=[
                EnvironmentOut(name=env.name, kind=env.kind, branch=env.branch, url=url(env.name))
                for env in app.environments
            ],
        )


class TokenCreate(Body):
    name: str
    role: Literal["owner", "deployer", "viewer"] = "deployer"
    expires_in: Int | None = Field(
        default=None, description="seconds until the token stops working; none means never"
    )


class TokenOut(BaseModel):
    id: int
    name: str
    role: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: ApiToken) -> TokenOut:
        return cls(
            id=row.id,
            name=row.name,
            role=row.role,
            prefix=row.prefix,
            created_at=row.created_at,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
        )


class TokenCreated(TokenOut):
    token: str = Field(description="the secret; shown only once")


class OrganizationCreate(Body):
    name: str


class OrganizationOut(BaseModel):
    id: int
    name: str
    plan: str
    created_at: datetime

    @classmethod
    def of(cls, org: Organization) -> OrganizationOut:
        return cls(id=org.id, name=org.name, plan=org.plan, created_at=org.created_at)


class OrganizationCreated(OrganizationOut):
    owner_token: str = Field(description="an owner token of the new organization; shown only once")


class ConfigChange(Body):
    set: dict[str, str] = Field(default_factory=dict, description="config vars to set: KEY → value")
    secret: bool = Field(default=False, description="store the values of `set` encrypted")
    unset: list[str] = Field(default_factory=list, description="keys of config vars to remove")


class ConfigVarOut(BaseModel):
    key: str
    value: str = Field(description='the value, or "***" for a secret')
    secret: bool
    updated_at: datetime


class Push(Body):
    ref: str = Field(max_length=255, pattern=r"^refs/heads/\S+$", description="the pushed branch")
    sha: str = Field(
        pattern=r"^([0-9a-f]{40}|[0-9a-f]{64})$", description="the commit to deploy, in full"
    )
    quarantine: str | None = Field(
        default=None,
        pattern=r"^(tmp_objdir-)?incoming-[A-Za-z0-9_-]{1,64}$",
        description="while a push is received: git's quarantine directory of its objects, "
        "which the pre-receive hook names",
    )


class Rollback(Body):
    to: int | None = Field(
        default=None,
        ge=1,
        le=MAX_ID,
        description="the release version to deploy again; default the one live before the "
        "current one",
    )


class ReleaseRef(BaseModel):
    version: int
    description: str
    created_at: datetime

    @classmethod
    def of(cls, release: Release) -> ReleaseRef:
        return cls(
            version=release.version, description=release.description, created_at=release.created_at
        )


class InstanceOut(BaseModel):
    name: str = Field(description='e.g. "web.1", or "preview/web.1" in a preview')
    state: str
    restarts: int
    uptime: float | None = Field(description="seconds since it became healthy")
    command: str


class EnvironmentInfo(EnvironmentOut):
    release: ReleaseRef | None = Field(description="the release that is live; null if none")
    state: str | None = Field(
        description="running, asleep, static or stopped; null when this process runs no apps"
    )
    instances: list[InstanceOut]


class ConnectionIn(Body):
    provider: str = Field(description="github, gitlab, bitbucket or gitea (Gitea and Forgejo)")
    repo: str = Field(description="OWNER/NAME on the host (GitLab: GROUP/…/NAME)")
    secret: str = Field(description="the webhook secret the host signs deliveries with")
    token: str | None = Field(
        default=None, description="a host API token: fetches private sources, reports statuses"
    )
    api_url: str | None = Field(
        default=None,
        description="the host's API root, for self-hosted hosts (required for Gitea/Forgejo)",
    )


class ConnectionOut(BaseModel):
    provider: str
    repo: str
    api_url: str
    token: bool = Field(description="whether an API token is stored (it is never shown)")
    webhook_path: str
    webhook_url: str = Field(description="the URL to give the host, as this server was reached")
    created_at: datetime

    @classmethod
    def of(cls, connection: RepoConnection, app: str, base_url: str) -> ConnectionOut:
        path = f"/hooks/{connection.provider}/{app}"
        return cls(
            provider=connection.provider,
            repo=connection.repo,
            api_url=connection.api_url,
            token=connection.token is not None,
            webhook_path=path,
            webhook_url=base_url.rstrip("/") + path,
            created_at=connection.created_at,
        )


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    delivery_id: str
    provider: str
    event: str
    branch: str | None
    sha: str | None
    status: str = Field(description="accepted, ignored, deploying, done or failed")
    detail: str | None = Field(description="what was done, or why nothing was")
    deployment_id: int | None
    reported: str | None = Field(description="the last commit status reported to the host")
    received_at: datetime
    finished_at: datetime | None


class AppInfo(BaseModel):
    app: AppOut
    formation: dict[str, int] = Field(description="instances per process type in production")
    environments: list[EnvironmentInfo]
    connection: ConnectionOut | None = Field(
        default=None, description="the git host repository it deploys from, if connected"
    )
    deliveries: list[DeliveryOut] = Field(
        default_factory=list, description="its latest webhook deliveries, newest first"
    )


class AddonCreate(Body):
    kind: str = Field(description="postgres or redis")
    name: str | None = Field(default=None, description="the add-on's name; default APP-KIND")
    env_var: str | None = Field(
        default=None, alias="as", description="the config var the app gets; default by kind"
    )
    fork: bool = Field(default=False, description="previews start with a copy of production's data")


#: A time as the deployments API has always written it: Python's isoformat (+00:00).
IsoTime = Annotated[
    datetime,
    PlainSerializer(datetime.isoformat, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class DeploymentOut(BaseModel):
    id: int
    app: str
    environment: str
    status: str = Field(
        description="queued, building, deploying, live, retired, failed, cancelled or superseded"
    )
    ref: str | None
    commit: str | None = Field(
        description="the commit deployed; a rollback's or a config change's is its release's"
    )
    author: str | None = Field(
        default=None, description='the commit\'s author, "Name <email>"; null without a commit'
    )
    committed_at: IsoTime | None = Field(
        default=None, description="when the commit was made (git's committer date)"
    )
    source: str = Field(
        description="what started it: git (a push or a webhook), upload, rollback or config"
    )
    actor: str | None = Field(
        default=None, description="who started it, as the audit trail names them"
    )
    build_id: int | None
    release: int | None = Field(description="the version of its release; null before it has one")
    reason: str | None
    url: str
    workflow_id: str | None
    created_at: IsoTime
    duration: float | None = Field(
        description="seconds from its request until it went live or ended; null until then"
    )


class DeliveryDayOut(BaseModel):
    day: date = Field(description="a UTC day")
    deployments: int = Field(description="changes that went live")
    changes: int = Field(description="changes that went live or failed")
    failures: int = Field(description="of those, the ones that failed or were rolled back")
    change_failure_rate: float | None = Field(description="failures / changes; null without any")
    lead_time_median: float | None = Field(description="seconds from commit to live")
    lead_time_p90: float | None = Field(description="seconds from commit to live, 90th percentile")
    restores: int = Field(description="failures after which a deployment has gone live")
    time_to_restore_median: float | None = Field(
        description="seconds from a failure to the next deployment that went live"
    )


class DeliveryMetricsOut(BaseModel):
    """The four delivery metrics of production over the window, then day by day."""

    app: str | None = Field(description="the app; null for the whole organization")
    days: int
    start: datetime = Field(description="the window's first moment: midnight UTC")
    end: datetime = Field(description="the window's end: now")
    deployments: int = Field(description="changes that went live")
    deployments_per_day: float
    lead_time_median: float | None = Field(description="seconds from commit to live")
    lead_time_p90: float | None = Field(description="seconds from commit to live, 90th percentile")
    changes: int = Field(description="changes that went live or failed")
    failures: int = Field(description="of those, the ones that failed or were rolled back")
    change_failure_rate: float | None = Field(description="failures / changes; null without any")
    restores: int = Field(description="failures after which a deployment has gone live")
    time_to_restore_median: float | None = Field(
        description="seconds from a failure to the next deployment that went live"
    )
    unrestored: int = Field(description="failures with no deployment gone live since")
    series: list[DeliveryDayOut] = Field(description="each day of the window, oldest first")

    @classmethod
    def of(cls, delivery: Delivery, app: str | None) -> DeliveryMetricsOut:
        return cls.model_validate({**asdict(delivery), "app": app})


class AppOverview(BaseModel):
    """What an app's dashboard page shows, read together in one transaction."""

    info: AppInfo
    deployments: list[DeploymentOut] = Field(description="the latest, newest first")
    releases: list[dict[str, Any]] = Field(description="the latest, newest first")
    env: list[ConfigVarOut]
    addons: list[dict[str, Any]]
    delivery: DeliveryMetricsOut = Field(description="production's, over the default window")
