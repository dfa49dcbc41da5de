"""Domain events. Each state change emits one; the audit trail and other hooks hang off them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Event:
    """Something that happened to a tenant's resource, e.g. action="app.create"."""

    organization_id: int
    actor: str
    action: str
    subject: str
    payload: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()


Hook = Callable[[Session, Event], None]

_hooks: list[Hook] = []


def on_event(hook: Hook) -> Hook:
    """Register HOOK to run, inside the emitting transaction, after each event is recorded."""
    _hooks.append(hook)
    return hook


def emit(session: Session, event: Event) -> None:
    """Record EVENT in the audit trail within SESSION's transaction, then run the hooks."""
    from shipway.audit.record import record

    record(session, event)
    for hook in _hooks:
        hook(session, event)
