"""Entries as people read them: a text template per action, `{field}` and `{payload.a.b}`
filled in from the entry; an action without one reads generically."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from shipway.store.tables import AuditEntry

TEMPLATES: Mapping[str, str] = {
    "organization.create": "{actor} created organization {payload.name}",
    "app.create": "{actor} created {subject}",
    "app.update": "{actor} changed the settings of {subject}",
    "app.delete": "{actor} deleted {subject}",
    "deploy.upload": "{actor} uploaded a deploy of {subject} to {payload.environment}",
    "push": "{actor} pushed {payload.ref} ({payload.sha}) to {subject}",
    "build.start": "{subject} of app:{payload.app} started",
    "build.end": "{subject} of app:{payload.app} ended: {payload.status}",
    "deployment.live": "{subject} of app:{payload.app} is live",
    "deployment.failed": "{subject} of app:{payload.app} failed: {payload.reason}",
    "rollback": "{actor} rolled {subject} back to v{payload.to}",
    "config.changed": "{actor} changed the config of {subject}: set {payload.set}; "
    "unset {payload.unset}",
    "scale": "{actor} scaled {subject} to {payload}",
    "scale.reverted": "scaling {subject} was reverted: {payload.reason}",
    "environment.delete": "{actor} removed the environment {subject}",
    "function.deploy": "{actor} deployed {subject} v{payload.version}",
    "function.rollback": "{actor} rolled {subject} back to v{payload.to}",
    "function.delete": "{actor} deleted {subject}",
    "function.triggers": "{actor} set the triggers of {subject}: {payload.triggers}",
    "function.run.failed": "run {payload.run} of {subject} {payload.status}: {payload.message}",
    "function.apply.failed": "the functions of {subject} were not applied: {payload.message}",
    "token.create": "{actor} created {subject}, {payload.name} ({payload.role})",
    "token.revoke": "{actor} revoked {subject}, {payload.name}",
    "login": "{actor} logged in",
}
GENERIC = "{actor} {action} {subject}"
_FIELD = re.compile(r"\{([a-z_]+(?:\.[A-Za-z0-9_\-]+)*)\}")


def render(entry: AuditEntry, templates: Mapping[str, str] = TEMPLATES) -> str:
    """ENTRY in words; a field the entry lacks reads as `?`."""
    fields = {
        "actor": entry.actor,
        "action": entry.action,
        "subject": entry.subject,
        "payload": entry.payload,
    }
    template = templates.get(entry.action, GENERIC)
    return _FIELD.sub(lambda m: _show(_lookup(fields, m.group(1).split("."))), template)


def _lookup(fields: Mapping[str, Any], path: list[str]) -> Any:
    value: Any = fields
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def _show(value: Any) -> str:
    if value is None:
        return "?"
    if isinstance(value, list):
        return ", ".join(map(_show, value))
    if isinstance(value, dict):
        return ", ".join(f"{k}={_show(v)}" for k, v in value.items())
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
