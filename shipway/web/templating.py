"""The dashboard's Jinja2 environment: templates from the package, escaped by default, and the
filters the pages format times, durations and commits with."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from shipway.web import ansi


@functools.cache
def environment() -> Environment:
    """The one environment of the process: each template is compiled once."""
    env = Environment(
        loader=PackageLoader("shipway.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        ago=ago, duration=duration, short=short, ansi=lambda s: Markup(ansi.html(s)), when=when
    )
    return env


def _moment(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def when(value: Any) -> str:
    """An ISO time as `2026-12-03 21:40:05 UTC`."""
    moment = _moment(value)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else ""


def ago(value: Any, now: datetime | None = None) -> str:
    """An ISO time as how long ago it was: `just now`, `5 min ago`, `3 h ago`, `2 d ago`."""
    moment = _moment(value)
    if moment is None:
        return ""
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    if seconds < 0:
        return "in " + duration(-seconds)
    if seconds < 45:
        return "just now"
    return duration(seconds) + " ago"


def duration(seconds: Any) -> str:
    """Seconds as `850 ms`, `12.3 s`, `4 min 5 s`, `3 h 2 min`, `2 d 4 h`."""
    if seconds is None or seconds == "":
        return ""
    s = float(seconds)
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 60:
        return f"{s:.1f} s"
    minutes, s = divmod(int(s), 60)
    if minutes < 60:
        return f"{minutes} min {s} s" if s else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def short(sha: Any) -> str:
    return str(sha)[:7] if sha else ""
