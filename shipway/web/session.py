"""The dashboard's session: the API tokens one browser logged in with, sealed in one cookie.

A browser may hold a token of each organization its user belongs to; one is active at a time.
The cookie is encrypted and authenticated with the installation's key (DATA/secret.key), so it
can be neither read nor forged, and it carries the CSRF token that the session's forms send back.
"""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass, replace

from cryptography.fernet import Fernet, InvalidToken

COOKIE = "shipway_session"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
#: Seconds a session lasts after its last login.
MAX_AGE = 7 * 24 * 3600
#: Organizations one session may hold; past that the oldest is dropped.
MAX_ORGANIZATIONS = 8


@dataclass(frozen=True)
class Login:
    """One organization's token, and the names the dashboard shows for it."""

    token: str
    organization: str
    role: str


@dataclass(frozen=True)
class Session:
    logins: tuple[Login, ...]
    active: int
    csrf: str

    @classmethod
    def start(cls, login: Login) -> Session:
        return cls((login,), 0, secrets.token_urlsafe(24))

    @property
    def current(self) -> Login:
        return self.logins[self.active]

    def adding(self, login: Login) -> Session:
        """Logged in with LOGIN too, which becomes the active one (replacing its organization's)."""
        others = tuple(k for k in self.logins if k.organization != login.organization)
        logins = (*others, login)[-MAX_ORGANIZATIONS:]
        return replace(self, logins=logins, active=len(logins) - 1)

    def switched(self, organization: str) -> Session | None:
        """The session acting for ORGANIZATION; None if it holds no token of it."""
        for index, login in enumerate(self.logins):
            if login.organization == organization:
                return replace(self, active=index)
        return None

    def allows(self, sent: str | None) -> bool:
        """Whether a form or request carried this session's CSRF token."""
        return sent is not None and hmac.compare_digest(sent.encode(), self.csrf.encode())


class Sealer:
    """Seals sessions into cookie values and opens them again."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def seal(self, session: Session) -> str:
        body = {
            "logins": [[k.token, k.organization, k.role] for k in session.logins],
            "active": session.active,
            "csrf": session.csrf,
        }
        return self.seal_text(json.dumps(body))

    def open(self, cookie: str | None) -> Session | None:
        """The session in COOKIE; None when there is none, or it is damaged, forged or too old."""
        opened = self.open_text(cookie, max_age=MAX_AGE)
        if opened is None:
            return None
        try:
            body = json.loads(opened)
            logins = tuple(Login(str(t), str(o), str(r)) for t, o, r in body["logins"])
            active = int(body["active"])
            csrf = str(body["csrf"])
        except (ValueError, KeyError, TypeError):
            return None
        if not logins or not 0 <= active < len(logins):
            return None
        return Session(logins, active, csrf)

    def seal_text(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode("ascii")

    def open_text(self, sealed: str | None, max_age: int) -> str | None:
        """The text sealed at most MAX_AGE seconds ago; None if absent, damaged or older."""
        if not sealed:
            return None
        try:
            return self._fernet.decrypt(sealed.encode("ascii"), ttl=max_age).decode()
        except (InvalidToken, UnicodeError):
            return None
