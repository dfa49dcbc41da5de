"""npm's version ranges (`>=18`, `20.x`, `^20.1.0`, `~1.2`, `1.2.3 - 2`, `<21 || >=22`), as
package.json's `engines.node` writes them, matched against the versions of host interpreters.

A range is alternatives joined by `||`; each is comparators joined by spaces, all of which
must hold. Every form is brought down to `>=`, `>`, `<`, `<=` and `=` against full versions,
as node-semver does: `^1.2` is `>=1.2.0 <2.0.0-0`, `1.x` is `>=1.0.0 <2.0.0-0`.

Host interpreters are releases, so a pre-release in a range is only a point just below its
release (`<2.0.0-0` excludes 2.0.0 and nothing else); the versions compared are releases.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

#: major, minor, patch, then 0 for a pre-release of that version and 1 for the release.
Version = tuple[int, int, int, int]
#: A partial version as written: None where it stops or says x, X or *.
_Parts = tuple[int | None, int | None, int | None]
_Comparator = tuple[str, Version]

_OPERATORS: dict[str, Callable[[Version, Version], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "=": operator.eq,
}
_NUMBER = r"0|[1-9]\d*"
_PART = rf"{_NUMBER}|[xX*]"
_PARTIAL = re.compile(
    rf"v?(?P<major>{_PART})"
    rf"(?:\.(?P<minor>{_PART})"
    rf"(?:\.(?P<patch>{_PART})(?P<pre>-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?)?)?"
)
_COMPARATOR = re.compile(r"(?P<op><=|>=|<|>|=|~>|~|\^)?(?P<version>.+)")
#: An operator may stand apart from its version: `>= 18`.
_LOOSE_OPERATOR = re.compile(r"(<=|>=|<|>|=|~>|~|\^)\s+")
_HYPHEN = re.compile(r"(?P<low>\S+)\s+-\s+(?P<high>\S+)")
#: What no version is below: a comparator set that holds for none.
_NOTHING: list[_Comparator] = [("<", (0, 0, 0, 0))]


def parse_version(text: str) -> Version:
    """A release or pre-release version, as a host interpreter reports it ("v20.20.2")."""
    match = _PARTIAL.fullmatch(text.strip())
    major, minor, patch = _parts(match) if match else (None, None, None)
    if match is None or major is None or minor is None or patch is None:
        raise ValueError(f"`{text}` is not a version like 20.1.0")
    return (major, minor, patch, 0 if match["pre"] else 1)


def show(version: Version) -> str:
    """A version as people write it: 20.20.2."""
    return ".".join(map(str, version[:3])) + ("" if version[3] else "-pre")


@dataclass(frozen=True)
class Range:
    """A parsed range; matches() tells whether a version is in it."""

    text: str
    alternatives: tuple[tuple[_Comparator, ...], ...]

    @classmethod
    def parse(cls, text: str) -> Range:
        """ValueError names the part of TEXT that is not a version range."""
        alternatives = tuple(tuple(_comparators(alt)) for alt in text.split("||"))
        return cls(text=text, alternatives=alternatives)

    def matches(self, version: Version) -> bool:
        return any(
            all(_OPERATORS[op](version, bound) for op, bound in comparators)
            for comparators in self.alternatives
        )


def _comparators(alternative: str) -> list[_Comparator]:
    """The comparators that must all hold for ALTERNATIVE (one side of `||`)."""
    text = _LOOSE_OPERATOR.sub(r"\1", alternative.strip())
    hyphen = _HYPHEN.fullmatch(text)
    if hyphen:
        return _hyphen(_partial(hyphen["low"]), _partial(hyphen["high"]))
    found: list[_Comparator] = []
    for token in text.split():
        match = _COMPARATOR.fullmatch(token)
        assert match is not None  # any non-empty token matches
        found += _desugar(match["op"] or "=", _partial(match["version"]))
    return found


def _partial(text: str) -> tuple[_Parts, bool]:
    """TEXT's parts, and whether it names a pre-release."""
    match = _PARTIAL.fullmatch(text)
    if match is None:
        raise ValueError(f"`{text}` is not a version or a partial one like 20 or 20.1")
    return _parts(match), bool(match["pre"])


def _parts(match: re.Match[str]) -> _Parts:
    parts: list[int | None] = []
    for name in ("major", "minor", "patch"):
        value = match[name]
        wild = value is None or value in {"x", "X", "*"} or (parts and parts[-1] is None)
        parts.append(None if wild else int(value))
    return parts[0], parts[1], parts[2]


def _floor(parts: _Parts, pre: bool = False) -> Version:
    """The first version PARTS covers: 1.2 → 1.2.0."""
    major, minor, patch = (p or 0 for p in parts)
    return (major, minor, patch, 0 if pre else 1)


def _past(parts: _Parts) -> Version:
    """The first version past all those a partial PARTS covers: 1.2 → 1.3.0-0, 1 → 2.0.0-0."""
    major, minor, _ = parts
    assert major is not None
    return (major + 1, 0, 0, 0) if minor is None else (major, minor + 1, 0, 0)


def _desugar(op: str, version: tuple[_Parts, bool]) -> list[_Comparator]:
    parts, pre = version
    major, minor, patch = parts
    if major is None:  # *, x: any version for =, >=, <=, ^, ~; none for > and <.
        return _NOTHING if op in {"<", ">"} else []
    full = patch is not None
    if op == "^":
        if major > 0 or minor is None:
            upper = (major + 1, 0, 0, 0)
        elif minor > 0 or patch is None:
            upper = (0, minor + 1, 0, 0)
        else:
            upper = (0, 0, patch + 1, 0)
        return [(">=", _floor(parts, pre)), ("<", upper)]
    if op in {"~", "~>"}:
        upper = (major + 1, 0, 0, 0) if minor is None else (major, minor + 1, 0, 0)
        return [(">=", _floor(parts, pre)), ("<", upper)]
    if full or op in {">=", "<"}:
        return [(op, _floor(parts, pre))]
    if op == ">":
        return [(">=", _past(parts))]
    if op == "<=":
        return [("<", _past(parts))]
    return [(">=", _floor(parts)), ("<", _past(parts))]  # = with a partial: an x-range


def _hyphen(low: tuple[_Parts, bool], high: tuple[_Parts, bool]) -> list[_Comparator]:
    """`A - B`: from A's first version to B's last."""
    found = _desugar(">=", low)
    (major, _, patch), pre = high
    if major is None:
        return found
    if patch is not None:
        return [*found, ("<=", _floor(high[0], pre))]
    return [*found, ("<", _past(high[0]))]
