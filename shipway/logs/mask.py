"""Secret masking: a line leaves its producer with every secret value, raw or encoded, hidden."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from urllib.parse import quote

HIDDEN = "***"

#: Shorter secrets are ignored: masking "abc" would blank out ordinary words.
MIN_SECRET = 4

#: Shorter base64 fragments (of a secret inside a longer base64 string) are ignored, likewise.
MIN_FRAGMENT = 6

_Encoder = Callable[[bytes], bytes]
_ENCODERS: tuple[_Encoder, ...] = (base64.b64encode, base64.urlsafe_b64encode)


def _fragment(encode: _Encoder, raw: bytes, shift: int) -> str:
    """The base64 characters that depend on RAW alone when RAW starts SHIFT bytes into a group.

    Character i of an encoding covers bits [6i, 6i + 6); RAW covers bits [8 * shift, 8 * end).
    """
    encoded = encode(b"\0" * shift + raw).decode()
    first = -(-8 * shift // 6)
    last = 8 * (shift + len(raw)) // 6
    return encoded[first:last]


def forms(secret: str) -> set[str]:
    """Every way SECRET may show up in a log: as is, line by line, URL-quoted and in base64."""
    if len(secret.strip()) < MIN_SECRET:
        return set()
    found = {secret, quote(secret, safe="")}
    found.update(p.strip() for p in secret.splitlines() if len(p.strip()) >= MIN_SECRET)
    raw = secret.encode()
    for encode in _ENCODERS:
        whole = encode(raw).decode()
        found.update((whole, whole.rstrip("=")))
        for shift in range(3):
            fragment = _fragment(encode, raw, shift)
            if len(fragment) >= MIN_FRAGMENT:
                found.add(fragment)
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

    def _spans(self, text: str) -> Iterable[tuple[int, int]]:
        for form in self._forms:
            at = text.find(form)
            while at != -1:
                yield at, at + len(form)
                at = text.find(form, at + 1)
