"""Request and response bodies of the REST API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shipway.store.tables import ApiToken, App, Organization


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class AppCreate(Body):
    name: str = Field(description="a lowercase DNS label of 1-40 characters, unique per tenant")
    plan: str = "free"
    region: str = "local"


class AppUpdate(Body):
    plan: str | None = None
    build_network: bool | None = Field(
        default=None, description="whether builds may reach the network (to download packages)"
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
    created_at: datetime
    url: str
    environments: list[EnvironmentOut]

    @classmethod
    def of(cls, app: App, base_url: str) -> AppOut:
        return cls(
            name=app.name,
            plan=app.plan,
            region=app.region,
            build_network=app.build_network,
            created_at=app.created_at,
            url=base_url.format(host=app.name),
            environments=[
                EnvironmentOut(
                    name=env.name,
                    kind=env.kind,
                    branch=env.branch,
                    url=base_url.format(
                        host=app.name if env.kind == "production" else f"{app.name}--{env.name}"
                    ),
                )
                for env in app.environments
            ],
        )


class TokenCreate(Body):
    name: str
    role: Literal["owner", "deployer", "viewer"] = "deployer"
    expires_in: int | None = Field(
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
