"""Name rules shared by apps, organizations and tokens."""

from __future__ import annotations

import re

from shipway.errors import ValidationError

_DNS_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")

DNS_RULE = (
    "must be a lowercase DNS label of 1-{limit} characters: a-z, 0-9 and '-', "
    "starting and ending with a letter or digit"
)


def check_dns_label(value: object, *, what: str, limit: int = 40) -> str:
    """Return VALUE if it is a lowercase DNS label of at most LIMIT characters, else raise."""
    rule = f"{what} {DNS_RULE.format(limit=limit)}"
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= limit
        or not _DNS_LABEL.fullmatch(value)
    ):
        raise ValidationError(rule, details={"field": what.split()[-1], "value": value})
    if "--" in value:
        raise ValidationError(
            f"{rule}; '--' is reserved for preview hosts", details={"value": value}
        )
    return value


def check_label(value: object, *, what: str, limit: int = 64) -> str:
    """Return VALUE if it is a printable label of 1-LIMIT characters, else raise."""
    if not isinstance(value, str) or not 1 <= len(value) <= limit or not _LABEL.fullmatch(value):
        raise ValidationError(
            f"{what} must be 1-{limit} characters of letters, digits, space, '.', '_' or '-', "
            "starting with a letter or digit",
            details={"value": value},
        )
    return value
