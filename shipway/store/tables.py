"""The tables. Domain modules read and write these through a Session they are given."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from shipway.store.types import JSONType, UTCDateTime, utcnow

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


#: Table options of every table whose ids must never be handed out twice (see migration 0004).
NEVER_REUSE: dict[str, Any] = {"sqlite_autoincrement": True}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Organization(Base):
    """A tenant: everything else belongs to exactly one."""

    __tablename__ = "organizations"
    __table_args__ = NEVER_REUSE

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    plan: Mapped[str] = mapped_column(String(32), default="free")
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("organization_id", "name"), NEVER_REUSE)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiToken(Base):
    """A bearer token. Only the sha256 of the secret is kept."""

    __tablename__ = "api_tokens"
    __table_args__ = NEVER_REUSE

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    user: Mapped[User | None] = relationship()


class App(Base):
    __tablename__ = "apps"
    __table_args__ = (UniqueConstraint("organization_id", "name"), NEVER_REUSE)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(40))
    plan: Mapped[str] = mapped_column(String(32), default="free")
    region: Mapped[str] = mapped_column(String(32), default="local")
    build_network: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    #: Instances per process type, e.g. {"web": 1, "worker": 2}.
    formation: Mapped[dict[str, int]] = mapped_column(JSONType, default=dict)
    #: Seconds without a request after which web instances stop (scale to zero); None: never.
    idle_timeout: Mapped[int | None] = mapped_column(Integer, nullable=True)
    health_path: Mapped[str] = mapped_column(String(255), default="/", server_default="/")
    #: Seconds an instance has to answer its health check.
    health_timeout: Mapped[int] = mapped_column(Integer, default=30, server_default="30")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    environments: Mapped[list[Environment]] = relationship(
        back_populates="app", cascade="all, delete-orphan", passive_deletes=True
    )


class Environment(Base):
    """Production (the default branch) or a preview of one branch."""

    __tablename__ = "environments"
    __table_args__ = (UniqueConstraint("app_id", "name"), NEVER_REUSE)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16), default="production")
    branch: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    app: Mapped[App] = relationship(back_populates="environments")


class Build(Base):
    __tablename__ = "builds"
    __table_args__ = NEVER_REUSE

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    environment_id: Mapped[int] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), index=True
    )
    commit_sha: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    builder: Mapped[str | None] = mapped_column(String(128), nullable=True)
    #: The Temporal attempt that holds the build ("ACTIVITY.ATTEMPT"); an earlier one stands down.
    attempt: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: The pool the dispatch rules chose.
    pool: Mapped[str] = mapped_column(String(40), default="default", server_default="default")
    cache_warm: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    stack: Mapped[str | None] = mapped_column(String(32), nullable=True)
    steps: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Release(Base):
    """An immutable set of layers plus config; rollback points back at one of these."""

    __tablename__ = "releases"
    __table_args__ = (UniqueConstraint("app_id", "version"), NEVER_REUSE)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    build_id: Mapped[int | None] = mapped_column(
        ForeignKey("builds.id", ondelete="SET NULL"), nullable=True
    )
    version: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(71))
    manifest: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    #: The config vars it runs with: {KEY: {"value": str, "secret": bool}}; secret values are
    #: stored encrypted, as in config_vars.
    config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    #: What made it, for people: "Deploy 1a2b3c4", "Set FOO, BAR", "Rollback to v3".
    description: Mapped[str] = mapped_column(String(255), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConfigVar(Base):
    """An app's environment variable; a secret's value is encrypted with DATA/secret.key."""

    __tablename__ = "config_vars"
    __table_args__ = (UniqueConstraint("app_id", "key"), NEVER_REUSE)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(Text)
    secret: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Deployment(Base):
    __tablename__ = "deployments"
    # The delivery metrics read an environment's deployments by when they went live or failed.
    __table_args__ = (
        Index("ix_deployments_environment_finished", "environment_id", "finished_at"),
        NEVER_REUSE,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    environment_id: Mapped[int] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), index=True
    )
    build_id: Mapped[int | None] = mapped_column(
        ForeignKey("builds.id", ondelete="SET NULL"), nullable=True
    )
    release_id: Mapped[int | None] = mapped_column(
        ForeignKey("releases.id", ondelete="SET NULL"), nullable=True
    )
    status: Mapped[str] = mapped_column(String(16), index=True)
    ref: Mapped[str | None] = mapped_column(String(255), nullable=True)
    commit_sha: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: The commit's author as git records it ("Name <email>"), and its commit time; None
    #: without a commit (an upload). A rollback or config change has its release's.
    author: Mapped[str | None] = mapped_column(String(255), nullable=True)
    committed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: What started it: git, upload, rollback or config (a webhook's push is git).
    source: Mapped[str] = mapped_column(String(16), default="git")
    #: Who started it, as the audit trail names them ("token:7", "webhook:github", "system").
    actor: Mapped[str | None] = mapped_column(String(128), nullable=True)
    workflow_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: When it went live (and stays so once retired), or when it failed or was stopped.
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AuditEntry(Base):
    """One recorded action. Append-only: nothing updates or deletes a row but retention."""

    __tablename__ = "audit_entries"
    # PostgreSQL adds GIN indexes on payload and tags; SQLite, indexes on chosen payload
    # paths (migration 0007, shipway.audit.indexes).
    __table_args__ = (
        Index("ix_audit_entries_tenant_created", "organization_id", "created_at"),
        Index("ix_audit_entries_tenant_action_created", "organization_id", "action", "created_at"),
        Index(
            "ix_audit_entries_tenant_subject_created", "organization_id", "subject", "created_at"
        ),
        Index("ix_audit_entries_tenant_actor_created", "organization_id", "actor", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sequence: Mapped[str] = mapped_column(String(36), unique=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(128))
    subject: Mapped[str] = mapped_column(String(255))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Function(Base):
    """A function: its settings, and which of its versions runs."""

    __tablename__ = "functions"
    __table_args__ = (UniqueConstraint("organization_id", "name"), NEVER_REUSE)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(64))
    runtime: Mapped[str] = mapped_column(String(16))
    #: The version that runs; versions are never changed, only added.
    version: Mapped[int] = mapped_column(Integer, default=1)
    #: Callable without a token.
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    timeout: Mapped[int] = mapped_column(Integer, default=30)
    memory_mb: Mapped[int] = mapped_column(Integer, default=128)
    #: {KEY: {"value": str, "secret": bool}}, secret values encrypted as app secrets are.
    environment: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    #: Receives a JSON POST when a scheduled run fails.
    webhook_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    #: The manifest that declares it (`shipway fn apply`), which may also remove it; None for
    #: a function deployed on its own.
    manifest: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FunctionVersion(Base):
    """One deployed source of a function; immutable."""

    __tablename__ = "function_versions"
    __table_args__ = (UniqueConstraint("function_id", "version"), NEVER_REUSE)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    function_id: Mapped[int] = mapped_column(
        ForeignKey("functions.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(String(71))
    #: What made it, for people: "Deploy", "Rollback to v2".
    description: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FunctionTrigger(Base):
    """A schedule of a function: a cron or ISO-8601 repeating interval, with its own params."""

    __tablename__ = "function_triggers"
    __table_args__ = (UniqueConstraint("function_id", "name"), NEVER_REUSE)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    function_id: Mapped[int] = mapped_column(
        ForeignKey("functions.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(64))
    spec: Mapped[str] = mapped_column(String(255))
    params: Mapped[Any] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IdBlock(Base):
    """The next id a table hands out to a process that reserves a block of them."""

    __tablename__ = "id_blocks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_id: Mapped[int] = mapped_column(Integer)


class FunctionRun(Base):
    """One call of a function, however it came: HTTP, a schedule or another function."""

    __tablename__ = "function_runs"
    __table_args__ = (
        Index("ix_function_runs_function_created", "function_id", "created_at"),
        NEVER_REUSE,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    function_id: Mapped[int] = mapped_column(ForeignKey("functions.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    #: "http", "schedule:NAME" or "call:RUN_ID".
    trigger: Mapped[str] = mapped_column(String(128))
    parent_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    params: Mapped[Any] = mapped_column(JSONType, default=dict, nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    result: Mapped[Any] = mapped_column(JSONType, nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    duration: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class LogLine(Base):
    """One line of a build's (later: an app's or a function run's) output, in order."""

    __tablename__ = "log_lines"
    __table_args__ = (UniqueConstraint("kind", "owner_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    owner_id: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    line: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RepoConnection(Base):
    """The git host repository an app deploys from when the host sends a webhook. The
    webhook secret and the host API token are encrypted with DATA/secret.key."""

    __tablename__ = "repo_connections"
    __table_args__ = NEVER_REUSE

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(
        ForeignKey("apps.id", ondelete="CASCADE"), unique=True, index=True
    )
    provider: Mapped[str] = mapped_column(String(16), index=True)
    #: OWNER/NAME on the host (GitLab: GROUP/…/NAME).
    repo: Mapped[str] = mapped_column(String(255))
    api_url: Mapped[str] = mapped_column(String(2048))
    secret: Mapped[str] = mapped_column(Text)
    token: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class HookDelivery(Base):
    """One verified webhook delivery; its id is unique per app, so a redelivery does nothing."""

    __tablename__ = "hook_deliveries"
    __table_args__ = (UniqueConstraint("app_id", "delivery_id"), NEVER_REUSE)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(16))
    delivery_id: Mapped[str] = mapped_column(String(128))
    event: Mapped[str] = mapped_column(String(64))
    branch: Mapped[str | None] = mapped_column(String(255), nullable=True)
    sha: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: A DeliveryStatus.
    status: Mapped[str] = mapped_column(String(16))
    #: What was done or why nothing was, for people.
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    deployment_id: Mapped[int | None] = mapped_column(
        ForeignKey("deployments.id", ondelete="SET NULL"), nullable=True
    )
    #: The last commit status reported to the host, or why it could not be.
    reported: Mapped[str | None] = mapped_column(String(255), nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Addon(Base):
    """A database or cache attached to an app: production's, or a preview's own copy (PARENT
    names production's). Its URL, credentials included, is encrypted like a secret."""

    __tablename__ = "addons"
    __table_args__ = (
        UniqueConstraint("organization_id", "name"),
        UniqueConstraint("resource"),
        NEVER_REUSE,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    environment_id: Mapped[int] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), index=True
    )
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("addons.id", ondelete="CASCADE"), nullable=True, index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(80))
    #: The server-side name: the database and role, or the redis server's directory.
    resource: Mapped[str] = mapped_column(String(64))
    env_var: Mapped[str] = mapped_column(String(255))
    url: Mapped[str] = mapped_column(Text)
    #: Previews start with a copy of production's data rather than an empty one.
    fork: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
