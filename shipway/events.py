"""Domain events. Each state change emits one; what reacts to them subscribes here.

Two kinds of subscriber:

- a **recorder** runs inside the emitting transaction, so the change and its record commit
  together or not at all (the audit trail: shipway.audit.record);
- a **listener** runs after that transaction commits, with the events it emitted, and only
  then: a rolled-back change tells no one (publishing events on NATS for the processes that
  wait on them: shipway.eventbus).

Each process wires its subscribers at start (shipway.hooks). Emitting with no recorder
subscribed is an error rather than a change without its audit entry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, SessionTransaction

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """Something that happened to a tenant's resource, e.g. action="app.create"."""

    organization_id: int
    actor: str
    action: str
    subject: str
    payload: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()


Recorder = Callable[[Session, Event], Any]
Listener = Callable[[Event], None]

_recorders: list[Recorder] = []
_listeners: list[Listener] = []
#: Where a session keeps the events it emitted until it commits.
_PENDING = "shipway.events"


class Unrecorded(RuntimeError):
    """An event was emitted in a process that wired no recorder: a bug in its start-up."""


def subscribe(recorder: Recorder) -> None:
    """Run RECORDER inside each emitting transaction (once, however often subscribed)."""
    if recorder not in _recorders:
        _recorders.append(recorder)


def listen(listener: Listener) -> None:
    """Run LISTENER with each event once its transaction has committed."""
    if listener not in _listeners:
        _listeners.append(listener)


def unlisten(listener: Listener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def emit(session: Session, event: Event) -> None:
    """Record EVENT within SESSION's transaction; tell the listeners once it commits."""
    if not _recorders:
        raise Unrecorded(f"nothing records events here, so {event.action} cannot be emitted")
    for recorder in _recorders:
        recorder(session, event)
    if _listeners:
        session.info.setdefault(_PENDING, []).append(event)


@sa_event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    for emitted in session.info.pop(_PENDING, ()):
        for listener in list(_listeners):
            try:
                listener(emitted)
            except Exception:  # the change is committed: a listener cannot undo it
                log.exception("a listener failed on %s", emitted.action)


@sa_event.listens_for(Session, "after_transaction_end")
def _ended(session: Session, transaction: SessionTransaction) -> None:
    """A transaction that ends without a commit (rolled back) tells no one."""
    if transaction.parent is None:
        session.info.pop(_PENDING, None)
