"""JSON read from a request or a delivery: what cannot be read is refused with the caller's
error, naming WHAT it was, never a 500 (malformed, not UTF-8, nested too deeply, a lone
UTF-16 surrogate that no store or response can encode, an integer beyond 64 bits)."""

from __future__ import annotations

import json
from typing import Any

from shipway.errors import ValidationError

#: The deepest nesting of arrays and objects taken: JSON stores and serializers (and search
#: over stored payloads) all have a depth limit of their own, and none is below this.
MAX_DEPTH = 64
#: The range of integers taken: every engine that stores or runs them holds 64 bits.
MIN_INT, MAX_INT = -(2**63), 2**63 - 1


def loads(raw: str | bytes, what: str, error: type[ValidationError] = ValidationError) -> Any:
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise error(f"{what} is not valid JSON: {ascii_text(str(e))}") from None
    except RecursionError:
        raise error(_too_deep(what), details={"limit": MAX_DEPTH}) from None
    check(value, what, error)
    return value


def check(value: Any, what: str, error: type[ValidationError] = ValidationError) -> None:
    """Refuse VALUE (read from JSON) if any part of it is one JSON read here may not hold,
    naming where."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict | list) and len(path) >= MAX_DEPTH:
            raise error(_too_deep(what), details={"limit": MAX_DEPTH})
        if isinstance(node, dict):
            for key, child in node.items():
                stack.append((key, (*path, key)))  # a key is text too
                stack.append((child, (*path, key)))
        elif isinstance(node, list):
            stack.extend((child, (*path, index)) for index, child in enumerate(node))
        elif (rule := _scalar(node)) is not None:
            field = _where(path)
            raise error(f"{field or what}: {rule}", details={"field": field or None})


def ascii_text(text: str) -> str:
    """TEXT with anything but printable ASCII escaped: safe to echo in any error or log."""
    return text if text.isascii() and text.isprintable() else ascii(text)[1:-1]


def _where(path: tuple[str | int, ...]) -> str:
    """PATH as a reader would write it: payload.items[2].name."""
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{ascii_text(p)}" for p in path)
    return text.removeprefix(".")


_SURROGATE = "holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not text"


def _scalar(value: Any) -> str | None:
    if isinstance(value, str):
        return _SURROGATE if _surrogate(value) else None
    if isinstance(value, int) and not isinstance(value, bool) and not MIN_INT <= value <= MAX_INT:
        return f"the integer is beyond 64 bits ({MIN_INT} to {MAX_INT})"
    return None


def _surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _too_deep(what: str) -> str:
    return f"{what} is nested more than {MAX_DEPTH} levels deep (the limit is {MAX_DEPTH})"
