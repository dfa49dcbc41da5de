"""Bearer secrets remembered for a moment: never past the TTL or the token's expiry, and a
revocation through this process is seen at once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from shipway.accounts import tokens
from shipway.accounts.organizations import ADMIN_ORG
from shipway.accounts.roles import Role
from shipway.accounts.tokencache import TokenCache
from shipway.errors import Unauthorized
from shipway.store import Store
from shipway.store.tables import ApiToken, Organization
from shipway.store.types import utcnow


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def token(store: Store, expires_in: timedelta | None = None) -> str:
    with store.transaction() as session:
        org = session.query(Organization).filter_by(name=ADMIN_ORG).one()
        minted = tokens.mint(session, org.id, name="ci", role=Role.DEPLOYER, expires_in=expires_in)
        return minted.secret


def revoke_behind_its_back(store: Store) -> None:
    with store.transaction() as session:
        session.execute(update(ApiToken).values(revoked_at=utcnow()))


def test_a_principal_is_remembered_for_the_ttl_only(store: Store, admin_token: str) -> None:
    secret, clock = token(store), Clock()
    cache = TokenCache(store, ttl=2.0, clock=clock)
    assert cache.cached(secret) is None
    principal = cache.authenticate(secret)
    assert principal.role is Role.DEPLOYER
    revoke_behind_its_back(store)  # as another process would
    clock.now += 1.9
    assert cache.authenticate(secret) == principal
    clock.now += 0.2
    assert cache.cached(secret) is None
    with pytest.raises(Unauthorized, match="revoked"):
        cache.authenticate(secret)


def test_forget_sees_a_revocation_at_once(store: Store, admin_token: str) -> None:
    secret = token(store)
    cache = TokenCache(store, clock=Clock())
    cache.authenticate(secret)
    revoke_behind_its_back(store)
    cache.forget()
    with pytest.raises(Unauthorized):
        cache.authenticate(secret)


def test_a_token_is_not_remembered_past_its_expiry(store: Store, admin_token: str) -> None:
    secret, clock = token(store, expires_in=timedelta(seconds=5)), Clock()
    cache = TokenCache(store, ttl=3600.0, clock=clock)
    cache.authenticate(secret)
    clock.now += 4.0
    assert cache.cached(secret) is not None
    clock.now += 1.5
    assert cache.cached(secret) is None


def test_bad_secrets_are_never_remembered(store: Store, admin_token: str) -> None:
    cache = TokenCache(store)
    for bad in ("nope", "swt_" + "x" * 40):
        with pytest.raises(Unauthorized):
            cache.authenticate(bad)
        assert cache.cached(bad) is None
