"""The dashboard's session cookie: sealed, tamper-proof, bounded, and its CSRF check."""

from __future__ import annotations

from cryptography.fernet import Fernet

from shipway.web import session
from shipway.web.session import Login, Sealer, Session

ACME = Login("swt_acme", "acme", "owner")
BETA = Login("swt_beta", "beta", "viewer")


def test_a_sealed_session_opens_as_it_was() -> None:
    sealer = Sealer(Fernet.generate_key())
    started = Session.start(ACME).adding(BETA)
    opened = sealer.open(sealer.seal(started))
    assert opened == started
    assert opened.current == BETA
    assert ACME.token not in sealer.seal(started)


def test_a_forged_damaged_or_foreign_cookie_opens_as_no_session() -> None:
    sealer = Sealer(Fernet.generate_key())
    other = Sealer(Fernet.generate_key())
    sealed = sealer.seal(Session.start(ACME))
    assert other.open(sealed) is None
    assert sealer.open(sealed[:-4] + "AAAA") is None
    assert sealer.open("not a cookie") is None
    assert sealer.open("") is None
    assert sealer.open(None) is None
    assert sealer.open(sealer.seal_text('{"logins": [], "active": 0, "csrf": "x"}')) is None
    assert sealer.open(sealer.seal_text('{"logins": [["t", "o", "r"]], "active": 3}')) is None


def test_logging_in_to_an_organization_again_replaces_its_token() -> None:
    newer = Login("swt_acme2", "acme", "deployer")
    started = Session.start(ACME).adding(BETA).adding(newer)
    assert [k.organization for k in started.logins] == ["beta", "acme"]
    assert started.current == newer


def test_switching_acts_for_another_held_organization_only() -> None:
    started = Session.start(ACME).adding(BETA)
    switched = started.switched("acme")
    assert switched is not None and switched.current == ACME
    assert started.switched("gamma") is None


def test_a_session_holds_a_bounded_number_of_organizations() -> None:
    held = Session.start(ACME)
    for n in range(session.MAX_ORGANIZATIONS + 3):
        held = held.adding(Login(f"swt_{n}", f"org{n}", "owner"))
    assert len(held.logins) == session.MAX_ORGANIZATIONS
    assert held.current.organization == f"org{session.MAX_ORGANIZATIONS + 2}"


def test_only_the_sessions_own_csrf_token_is_allowed() -> None:
    started = Session.start(ACME)
    assert started.allows(started.csrf)
    assert not started.allows(None)
    assert not started.allows("")
    assert not started.allows(Session.start(ACME).csrf)
