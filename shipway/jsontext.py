"""JSON read from a request or a delivery: what cannot be read is refused with the caller's
error, naming WHAT it was, never a 500 (malformed, not UTF-8, or nested past Python's
recursion limit)."""

from __future__ import annotations

import json
from typing import Any

from shipway.errors import ValidationError


def loads(raw: str | bytes, what: str, error: type[ValidationError] = ValidationError) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise error(f"{what} is not valid JSON: {e}") from None
    except RecursionError:
        raise error(f"{what} is nested too deeply") from None
