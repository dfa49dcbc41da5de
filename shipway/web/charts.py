"""Charts drawn on the server as small inline SVG: bars or a line over a daily or hourly series.

Each chart is a `<figure>` whose SVG is an image labelled with its title and a summary, followed
by the same figures as a table that only screen readers see. No script draws anything, so a
chart shows without JavaScript and costs a few kilobytes at most.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

#: The drawing's own units; it scales to the width of the page.
WIDTH, HEIGHT = 420, 150
LEFT, RIGHT, TOP, BOTTOM = 46, 6, 10, 20

Format = Callable[[float], str]


@dataclass(frozen=True)
class Point:
    """One step of a series: its label on the x axis, and its value (None: nothing measured)."""

    label: str
    value: float | None


def number(value: float) -> str:
    """A count or a rate as people read it: `3`, `2.5`, `0.25`."""
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.3g}"


def bars(title: str, points: Sequence[Point], fmt: Format = number, tone: str = "") -> Markup:
    """A bar per point; TONE is an extra class of the bars (`bad` draws them red)."""
    top = _top(points)
    slot = _plot_width() / max(len(points), 1)
    marks = []
    for index, point in enumerate(points):
        if not point.value:
            continue
        height = point.value / top * _plot_height()
        marks.append(
            f'<rect class="{_classes("bar", tone)}" x="{_n(LEFT + index * slot + slot * 0.1)}" '
            f'y="{_n(TOP + _plot_height() - height)}" width="{_n(slot * 0.8)}" '
            f'height="{_n(height)}"><title>{escape(point.label)}: {escape(fmt(point.value))}'
            "</title></rect>"
        )
    return _figure(title, points, fmt, top, "".join(marks))


def line(title: str, points: Sequence[Point], fmt: Format = number) -> Markup:
    """A line through the points; a point without a value breaks it, a lone one is a dot."""
    top = _top(points)
    step = _plot_width() / max(len(points) - 1, 1)
    runs: list[list[tuple[float, float, Point]]] = [[]]
    for index, point in enumerate(points):
        if point.value is None:
            runs.append([])
            continue
        y = TOP + _plot_height() - point.value / top * _plot_height()
        runs[-1].append((LEFT + index * step, y, point))
    marks = []
    for run in runs:
        if len(run) > 1:
            path = " ".join(
                f"{'M' if i == 0 else 'L'}{_n(x)} {_n(y)}" for i, (x, y, _) in enumerate(run)
            )
            marks.append(f'<path class="line" d="{path}"/>')
        for x, y, point in run:
            tip = f"<title>{escape(point.label)}: {escape(fmt(point.value or 0))}</title>"
            marks.append(f'<circle class="dot" cx="{_n(x)}" cy="{_n(y)}" r="2.5">{tip}</circle>')
    return _figure(title, points, fmt, top, "".join(marks))


def _figure(title: str, points: Sequence[Point], fmt: Format, top: float, marks: str) -> Markup:
    measured = [p.value for p in points if p.value is not None]
    summary = (
        f"{title}: highest {fmt(max(measured))}, latest {fmt(measured[-1])}"
        if measured
        else f"{title}: nothing measured"
    )
    base = TOP + _plot_height()
    axis = f'<line class="axis" x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}"/>'
    axis += f'<text x="{LEFT - 4}" y="{base}" text-anchor="end">0</text>'
    if any(measured):
        top_label = escape(fmt(top))
        axis += f'<text x="{LEFT - 4}" y="{TOP + 8}" text-anchor="end">{top_label}</text>'
    if points:
        axis += (
            f'<text x="{LEFT}" y="{HEIGHT - 4}">{escape(points[0].label)}</text>'
            f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 4}" text-anchor="end">'
            f"{escape(points[-1].label)}</text>"
        )
    rows = "".join(
        f'<tr><th scope="row">{escape(p.label)}</th>'
        f"<td>{escape(fmt(p.value)) if p.value is not None else '—'}</td></tr>"
        for p in points
    )
    return Markup(
        f'<figure class="chart"><figcaption>{escape(title)}</figcaption>'
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(summary)}"><title>{escape(summary)}</title>{axis}{marks}</svg>'
        f'<table class="sr-only"><caption>{escape(title)}</caption><tbody>{rows}</tbody></table>'
        "</figure>"
    )


def _top(points: Sequence[Point]) -> float:
    """The value at the top of the chart: the highest, or 1 when nothing is above 0."""
    return max((p.value for p in points if p.value is not None and p.value > 0), default=1.0)


def _plot_width() -> float:
    return WIDTH - LEFT - RIGHT


def _plot_height() -> float:
    return HEIGHT - TOP - BOTTOM


def _classes(*names: str) -> str:
    return " ".join(n for n in names if n)


def _n(value: float) -> str:
    """A coordinate, short: whole or to a tenth."""
    return f"{value:.1f}".removesuffix(".0")
