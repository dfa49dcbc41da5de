"""Pools: named groups of builders that build what the dispatch rules send them. A pool's name
is also the Temporal task queue its builders pull from (shipway.builder.messages)."""

from __future__ import annotations

import re

from shipway.errors import ValidationError

#: Where a build goes when no rule sends it elsewhere.
DEFAULT_POOL = "default"
NAME = re.compile(r"[a-z][a-z0-9-]{0,39}")


def check_pool(pool: object, where: str = "pool") -> str:
    """POOL, if it is a pool's name; else ValidationError naming WHERE it was given."""
    if not isinstance(pool, str) or not NAME.fullmatch(pool):
        raise ValidationError(
            f"{where} must be 1-40 characters of a-z, 0-9 and '-', starting with a letter; "
            f"got {pool!r}"
        )
    return pool
