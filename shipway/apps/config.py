"""An app's config vars: list and change them, and turn them into a release's environment.

Secret values are stored encrypted (see secretbox); plain values are stored as they are.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shipway.accounts.roles import Principal, Role
from shipway.apps import service
from shipway.apps.secretbox import SecretBox
from shipway.errors import Conflict, ValidationError
from shipway.events import Event, emit
from shipway.store.tables import Addon, App, ConfigVar
from shipway.store.types import utcnow

KEY_RULE = r"^[A-Za-z_][A-Za-z0-9_]*$"
_KEY = re.compile(KEY_RULE)
MAX_KEY = 255
MAX_VALUE = 32 * 1024
MAX_VARS = 200
RESERVED = frozenset({"PORT"})
RESERVED_PREFIX = "SHIPWAY_"

#: What listings show in place of a secret's value.
HIDDEN = "***"


@dataclass(frozen=True)
class Change:
    """What one change did, and the app's config vars after it."""

    app: App
    set: list[str]
    unset: list[str]
    vars: list[ConfigVar]

    @property
    def changed(self) -> bool:
        """False when the change only named keys that were not set: nothing to roll out."""
        return bool(self.set or self.unset)


def check_key(key: object) -> str:
    """Return KEY if it can name an environment variable shipway does not reserve, else raise."""
    if isinstance(key, str) and len(key) > MAX_KEY:
        raise ValidationError(
            f"config var name must be at most {MAX_KEY} characters; '{key[:20]}…' has {len(key)}",
            details={"key": key[:MAX_KEY]},
        )
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ValidationError(
            f"config var name {key!r} must match {KEY_RULE}: letters, digits and '_', "
            "not starting with a digit",
            details={"key": key},
        )
    if key in RESERVED or key.startswith(RESERVED_PREFIX):
        raise ValidationError(
            f"config var name {key!r} is reserved: shipway sets PORT and SHIPWAY_* itself",
            details={"key": key},
        )
    return key


def check_value(key: str, value: object) -> str:
    """Return VALUE if an environment variable can carry it and it fits the size limit."""
    if not isinstance(value, str):
        raise ValidationError(f"value of {key} must be a string", details={"key": key})
    if "\0" in value:
        raise ValidationError(
            f"value of {key} must not contain a NUL character", details={"key": key}
        )
    size = len(value.encode())
    if size > MAX_VALUE:
        raise ValidationError(
            f"value of {key} must be at most 32 KiB ({MAX_VALUE} bytes); it has {size}",
            details={"key": key, "bytes": size},
        )
    return value


def check_change(values: Mapping[str, object], unset: Collection[str]) -> None:
    """Raise unless VALUES and UNSET make one non-empty change that names each key once."""
    if not values and not unset:
        raise ValidationError("nothing to change: give config vars to set or keys to unset")
    for key, value in values.items():
        check_value(check_key(key), value)
    for key in unset:
        check_key(key)
    both = sorted(set(values) & set(unset))
    if both:
        raise ValidationError(
            f"{', '.join(both)} cannot be both set and unset in one change",
            details={"keys": both},
        )


def list_vars(session: Session, principal: Principal, name: str) -> list[ConfigVar]:
    """The app's config vars by key; secret values stay encrypted."""
    principal.require(Role.VIEWER)
    return _vars(session, service.get(session, principal, name).id)


def change(
    session: Session,
    principal: Principal,
    name: str,
    *,
    values: Mapping[str, str],
    unset: Collection[str] = (),
    secret: bool = False,
    box: SecretBox,
) -> Change:
    """Set VALUES (encrypted when SECRET) and remove UNSET as one change with one event.

    A key that is set again takes the new value and the new secret flag. Unsetting a key
    that is not set is not an error, so scripts can repeat a change.
    """
    principal.require(Role.DEPLOYER)
    app = service.get(session, principal, name)
    check_change(values, unset)
    _check_unowned(session, app, [*values, *unset])
    current = {var.key: var for var in _vars(session, app.id)}
    removed = sorted(set(unset) & current.keys())
    _check_count((current.keys() - set(removed)) | values.keys())
    for key in removed:
        session.delete(current.pop(key))
    _put(session, app.id, current, values, box if secret else None)
    _flush(session, name)
    done = Change(app, sorted(values), removed, _sorted(current.values()))
    if done.changed:
        payload = {"set": done.set, "unset": done.unset, "secret": secret}
        event = Event(
            principal.organization_id, principal.actor, "config.changed", f"app:{name}", payload
        )
        emit(session, event)
    return done


def attach(session: Session, app_id: int, key: str, value: str, box: SecretBox) -> None:
    """Set KEY, the config var an add-on owns, to VALUE as a secret."""
    current = {var.key: var for var in _vars(session, app_id)}
    _put(session, app_id, current, {key: value}, box)


def detach(session: Session, app_id: int, key: str) -> None:
    """Remove KEY, the config var of an add-on that goes."""
    var = session.scalar(select(ConfigVar).where(ConfigVar.app_id == app_id, ConfigVar.key == key))
    if var is not None:
        session.delete(var)


def _check_unowned(session: Session, app: App, keys: Collection[str]) -> None:
    """Refuse a change to a config var an attached add-on owns."""
    owned = session.execute(
        select(Addon.env_var, Addon.name).where(
            Addon.app_id == app.id, Addon.parent_id.is_(None), Addon.env_var.in_(list(keys))
        )
    ).first()
    if owned is not None:
        key, addon = owned
        raise Conflict(
            f"{key} belongs to the add-on {addon}: detach it first "
            f"(`shipway addons destroy {addon} --confirm {app.name}`)",
            details={"key": key, "addon": addon},
        )


def describe(done: Change) -> str:
    """The release description of a change: "Set FOO, BAR; unset BAZ"."""
    parts = []
    if done.set:
        parts.append("Set " + ", ".join(done.set))
    if done.unset:
        parts.append(
            "unset " + ", ".join(done.unset) if parts else "Unset " + ", ".join(done.unset)
        )
    return "; ".join(parts)


def snapshot(session: Session, app_id: int) -> dict[str, dict[str, Any]]:
    """The app's config vars as a new release stores them; secret values stay encrypted."""
    return {var.key: {"value": var.value, "secret": var.secret} for var in _vars(session, app_id)}


def environment(snapshot: Mapping[str, Mapping[str, Any]], box: SecretBox) -> dict[str, str]:
    """The environment variables an instance of a release with SNAPSHOT starts with."""
    return {
        key: box.decrypt(var["value"]) if var["secret"] else var["value"]
        for key, var in snapshot.items()
    }


def secret_values(snapshot: Mapping[str, Mapping[str, Any]], box: SecretBox) -> list[str]:
    """The plain secret values of SNAPSHOT, so its logs can be masked."""
    return [box.decrypt(var["value"]) for var in snapshot.values() if var["secret"]]


def _vars(session: Session, app_id: int) -> list[ConfigVar]:
    """Sorted here, not in SQL, so the order is the same under every database collation."""
    return _sorted(session.scalars(select(ConfigVar).where(ConfigVar.app_id == app_id)))


def _sorted(variables: Iterable[ConfigVar]) -> list[ConfigVar]:
    return sorted(variables, key=lambda var: var.key)


def _put(
    session: Session,
    app_id: int,
    current: dict[str, ConfigVar],
    values: Mapping[str, str],
    box: SecretBox | None,
) -> None:
    """Add or replace VALUES in CURRENT; with a BOX they are stored encrypted, as secrets."""
    now = utcnow()
    for key, value in values.items():
        var = current.get(key)
        if var is None:
            var = current[key] = ConfigVar(app_id=app_id, key=key, created_at=now)
            session.add(var)
        var.value = value if box is None else box.encrypt(value)
        var.secret, var.updated_at = box is not None, now


def _check_count(keys: Collection[str]) -> None:
    if len(keys) > MAX_VARS:
        raise ValidationError(
            f"an app has at most {MAX_VARS} config vars; this change would make {len(keys)}",
            details={"count": len(keys), "limit": MAX_VARS},
        )


def _flush(session: Session, name: str) -> None:
    """Write now, so a key added at the same moment by another change is a clean conflict."""
    try:
        session.flush()
    except IntegrityError as e:
        raise Conflict(
            f"the config vars of {name!r} changed at the same time; try again",
            details={"name": name},
        ) from e
