"""Secret masking: a line leaves its producer with every secret value, raw or encoded, hidden.

The same Masker hides secrets in log lines and in JSON values (a function's result, its
error, its params), so everything a secret may reach is masked one way.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

HIDDEN = "***"

#: Shorter secrets are ignored: masking "abc" would blank out ordinary words.
MIN_SECRET = 4

#: Shorter base64 fragments (of a secret inside a longer base64 string) are ignored, likewise.
MIN_FRAGMENT = 6

_Encoder = Callable[[bytes], bytes]
_ENCODERS: tuple[_Encoder, ...] = (base64.b64encode, base64.urlsafe_b64encode)

#: The line widths base64 is wrapped at: PEM (64) and MIME (76, Python's base64.encodebytes).
WRAPS = (64, 76)


def _fragment(encode: _Encoder, raw: bytes, shift: int) -> str:
    """The base64 characters that depend on RAW alone when RAW starts SHIFT bytes into a group.

    Character i of an encoding covers bits [6i, 6i + 6); RAW covers bits [8 * shift, 8 * end).
    """
    encoded = encode(b"\0" * shift + raw).decode()
    first = -(-8 * shift // 6)
    last = 8 * (shift + len(raw)) // 6
    return encoded[first:last]


def _wrapped(encoded: str) -> set[str]:
    """The lines of ENCODED wrapped at each of WRAPS: a long value printed as PEM or MIME."""
    return {
        encoded[at : at + width]
        for width in WRAPS
        if len(encoded) > width
        for at in range(0, len(encoded), width)
        if len(encoded[at : at + width]) >= MIN_FRAGMENT
    }


def _quoted(secret: str) -> set[str]:
    """SECRET as it shows inside a JSON string (JSON.stringify, json.dumps) and URL-quoted."""
    return {
        quote(secret, safe=""),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
    }


def _encoded(raw: bytes) -> set[str]:
    """RAW in base64, standard and URL-safe, padded or not, wrapped or not, and inside a
    longer base64 string at each alignment."""
    found: set[str] = set()
    for encode in _ENCODERS:
        whole = encode(raw).decode()
        found.update((whole, whole.rstrip("=")), _wrapped(whole))
        for shift in range(3):
            fragment = _fragment(encode, raw, shift)
            if len(fragment) >= MIN_FRAGMENT:
                found.add(fragment)
    return found


def forms(secret: str) -> set[str]:
    """Every way SECRET may show up in a log: as is, line by line, quoted and in base64;
    with and without the whitespace around it (a PEM key's final newline)."""
    if len(secret.strip()) < MIN_SECRET:
        return set()
    found: set[str] = set()
    for value in {secret, secret.strip()}:
        found |= {value} | _quoted(value) | _encoded(value.encode())
    for line in (p.strip() for p in secret.splitlines()):
        if len(line) >= MIN_SECRET:
            found |= {line} | _quoted(line)
    return found


class Masker:
    """Hides secrets in text; overlapping matches of different secrets merge into one ***."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        every: set[str] = set()
        for secret in secrets:
            every |= forms(secret)
        self._forms = sorted(every, key=lambda f: (-len(f), f))

    def __bool__(self) -> bool:
        return bool(self._forms)

    def mask(self, text: str) -> str:
        """TEXT with every form of every secret replaced by ***."""
        spans = sorted(self._spans(text))
        if not spans:
            return text
        out: list[str] = []
        done = 0
        start, end = spans[0]
        for s, e in spans[1:]:
            if s <= end:
                end = max(end, e)
                continue
            out += (text[done:start], HIDDEN)
            done, start, end = end, s, e
        out += (text[done:start], HIDDEN, text[end:])
        return "".join(out)

    def mask_json(self, value: Any) -> Any:
        """VALUE (decoded JSON) with secrets masked in every string, key and number: a
        number that spells a secret becomes masked text."""
        if not self._forms:
            return value
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, dict):
            return {self.mask(str(k)): self.mask_json(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.mask_json(item) for item in value]
        if isinstance(value, int | float) and not isinstance(value, bool):
            text = json.dumps(value)
            masked = self.mask(text)
            return value if masked == text else masked
        return value

    def _spans(self, text: str) -> Iterable[tuple[int, int]]:
        for form in self._forms:
            at = text.find(form)
            while at != -1:
                yield at, at + len(form)
                at = text.find(form, at + 1)
