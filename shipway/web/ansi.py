"""Terminal colours in log lines, as HTML: SGR colour and bold codes become classed spans, every
other escape sequence is dropped, and the text is escaped."""

from __future__ import annotations

import re
from html import escape

#: CSI sequences (SGR and the rest) and the two-character escapes.
_ESCAPE = re.compile(r"\x1b(?:\[([0-9;?]*)([@-~])|[@-Z\\-_])")
#: Words that mark a line as where a build or an app went wrong.
_ERROR = re.compile(
    r"(^|\W)(error|failed|fatal|traceback|exception|npm err!)(\W|$)",
    re.IGNORECASE,
)


def html(line: str) -> str:
    """LINE as escaped HTML, its colours as `<span class="fgN b">`."""
    out: list[str] = []
    style: tuple[str, ...] = ()
    position = 0
    for match in _ESCAPE.finditer(line):
        out.append(_span(line[position : match.start()], style))
        position = match.end()
        if match.group(2) == "m":
            style = _apply(style, match.group(1) or "0")
    out.append(_span(line[position:], style))
    return "".join(out)


def plain(line: str) -> str:
    """LINE without its escape sequences."""
    return _ESCAPE.sub("", line)


def is_error(line: str) -> bool:
    """Whether LINE reads as an error: the first such line is where a reader jumps to."""
    return _ERROR.search(plain(line)) is not None


def _span(text: str, style: tuple[str, ...]) -> str:
    if not text:
        return ""
    if not style:
        return escape(text)
    return f'<span class="{" ".join(style)}">{escape(text)}</span>'


def _apply(style: tuple[str, ...], codes: str) -> tuple[str, ...]:
    current = list(style)
    for raw in codes.split(";"):
        code = int(raw) if raw.isdigit() else 0
        if code == 0:
            current = []
        elif code == 1:
            current = [*_without(current, "b"), "b"]
        elif code == 22:
            current = _without(current, "b")
        elif 30 <= code <= 37 or 90 <= code <= 97:
            current = [*_without(current, "fg"), f"fg{code - 30 if code < 90 else code - 82}"]
        elif code == 39:
            current = _without(current, "fg")
    return tuple(current)


def _without(style: list[str], prefix: str) -> list[str]:
    return [s for s in style if not s.startswith(prefix)]
