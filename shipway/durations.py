"""Short durations as people type them: 90s, 15m, 12h, 30d, 2w."""

from __future__ import annotations

import re
from datetime import timedelta

#: Up to six digits: a million weeks is past any limit shipway has, and far from overflow.
_SHORT = re.compile(r"([0-9]{1,6})([smhdw])")
#: Up to twelve digits of plain seconds: past any limit shipway has, far from int's.
_SECONDS = re.compile(r"[0-9]{1,12}")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
EXAMPLES = "90s, 15m, 12h, 30d or 2w"


def parse(text: str) -> timedelta | None:
    """TEXT (surrounding space aside) as a timedelta, or None when it is no such duration."""
    found = _SHORT.fullmatch(text.strip())
    return timedelta(**{_UNITS[found[2]]: int(found[1])}) if found else None


def seconds(text: str) -> int | None:
    """TEXT as whole seconds, typed as 300 or as a duration such as 15m; None when it is
    neither."""
    if _SECONDS.fullmatch(text.strip()):
        return int(text)
    found = parse(text)
    return int(found.total_seconds()) if found else None
