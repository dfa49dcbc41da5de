"""Roles, from least to most powerful, and what a principal is."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from shipway.errors import Forbidden


class Role(StrEnum):
    VIEWER = "viewer"
    DEPLOYER = "deployer"
    OWNER = "owner"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


_RANK = {Role.VIEWER: 0, Role.DEPLOYER: 1, Role.OWNER: 2}


@dataclass(frozen=True)
class Principal:
    """Who is asking: their tenant, their role and how the audit trail names them."""

    organization_id: int
    role: Role
    actor: str
    token_id: int | None = None
    platform_admin: bool = False

    def require(self, needed: Role) -> None:
        """Raise Forbidden unless this principal's role is at least NEEDED."""
        if not self.role.allows(needed):
            raise Forbidden(f"this needs the {needed} role; the token has {self.role}")


SYSTEM_ACTOR = "system"
