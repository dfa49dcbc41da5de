"""Bearer secrets remembered for a moment, so that a busy client does not cost a store read
on every request.

A principal is remembered for `TTL` seconds at most, and never past its token's expiry. A
token revoked through this process is forgotten at once (`forget`); one revoked through
another process stops working here within `TTL`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from shipway.accounts import tokens
from shipway.accounts.roles import Principal
from shipway.store import Store
from shipway.store.types import utcnow

#: Seconds a principal is remembered.
TTL = 2.0
#: Principals remembered at most; past that the cache starts over.
MAX_ENTRIES = 10_000


class TokenCache:
    def __init__(
        self, store: Store, *, ttl: float = TTL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.store = store
        self.ttl = ttl
        self._clock = clock
        self._known: dict[str, tuple[Principal, float]] = {}

    def cached(self, secret: str) -> Principal | None:
        """SECRET's principal if it was checked a moment ago, without touching the store."""
        known = self._known.get(tokens.hash_token(secret))
        if known is None:
            return None
        principal, until = known
        return principal if self._clock() < until else None

    def authenticate(self, secret: str) -> Principal:
        """SECRET's principal, remembered or read from the store (Unauthorized if bad)."""
        principal = self.cached(secret)
        if principal is not None:
            return principal
        with self.store.transaction() as session:
            principal, expires_at = tokens.check(session, secret)
        self._remember(secret, principal, expires_at)
        return principal

    def forget(self) -> None:
        """After a revocation: every secret is checked against the store again."""
        self._known.clear()

    def _remember(self, secret: str, principal: Principal, expires_at: datetime | None) -> None:
        lifetime = self.ttl
        if expires_at is not None:
            lifetime = min(lifetime, (expires_at - utcnow()).total_seconds())
        if lifetime <= 0:
            return
        if len(self._known) >= MAX_ENTRIES:
            self._known.clear()
        self._known[tokens.hash_token(secret)] = (principal, self._clock() + lifetime)
