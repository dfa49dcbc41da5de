"""The server-drawn charts: what they draw, how they are labelled for screen readers, what they
escape, and how small they stay."""

from __future__ import annotations

import re
from xml.etree import ElementTree

from shipway.web import charts
from shipway.web.charts import Point

SVG = "{http://www.w3.org/2000/svg}"


def days(*values: float | None) -> list[Point]:
    return [Point(f"Dec {n}", v) for n, v in enumerate(values, 1)]


def parsed(chart: str) -> ElementTree.Element:
    """The chart as XML (it must be well formed), SVG in its namespace."""
    return ElementTree.fromstring(str(chart).replace("<svg ", f'<svg xmlns="{SVG[1:-1]}" ', 1))


def test_bars_are_as_tall_as_their_values_and_zero_draws_nothing() -> None:
    chart = charts.bars("Deployments per day", days(2, 0, 4, None))
    rects = parsed(chart).findall(f".//{SVG}rect")
    assert len(rects) == 2
    heights = [float(r.get("height", 0)) for r in rects]
    assert heights[1] == 2 * heights[0]
    assert heights[1] == charts.HEIGHT - charts.TOP - charts.BOTTOM  # the highest fills it
    assert [r.findtext(f"{SVG}title") for r in rects] == ["Dec 1: 2", "Dec 3: 4"]
    assert 'class="bar"' in chart
    assert 'class="bar bad"' in charts.bars("Failures", days(1), tone="bad")


def test_a_chart_is_labelled_and_its_figures_are_a_table_for_screen_readers() -> None:
    chart = charts.bars("Builds waiting", days(1, 3, 2), fmt=lambda v: f"{v:.0f} builds")
    figure = parsed(chart)
    svg = figure.find(f"{SVG}svg")
    assert svg is not None and svg.get("role") == "img"
    assert svg.get("aria-label") == "Builds waiting: highest 3 builds, latest 2 builds"
    assert svg.findtext(f"{SVG}title") == svg.get("aria-label")
    assert figure.findtext("figcaption") == "Builds waiting"
    table = figure.find("table")
    assert table is not None and table.get("class") == "sr-only"
    assert [th.get("scope") for th in table.iter("th")] == ["row"] * 3
    assert [td.text for td in table.iter("td")] == ["1 builds", "3 builds", "2 builds"]


def test_a_line_breaks_where_nothing_was_measured() -> None:
    chart = charts.line("Median wait", days(10, 20, None, 5, 15, None, 30))
    svg = parsed(chart)
    paths = [p.get("d", "") for p in svg.iter(f"{SVG}path")]
    assert len(paths) == 2 and all(p.startswith("M") for p in paths)
    assert [p.count("L") for p in paths] == [1, 1]
    assert len(list(svg.iter(f"{SVG}circle"))) == 5  # the lone 30 is a dot
    assert "<td>—</td>" in chart


def test_an_empty_or_silent_series_still_draws_an_honest_chart() -> None:
    for chart in (charts.bars("Nothing", []), charts.line("Quiet", days(None, 0, None))):
        parsed(chart)
        assert "nothing measured" in chart or "highest 0" in chart
    assert "<rect" not in charts.bars("Zeros", days(0, 0, 0))


def test_labels_and_titles_are_escaped() -> None:
    chart = charts.bars('<script>"x"</script>', [Point("<b>", 1)])
    assert "<script>" not in chart and "<b>" not in chart
    parsed(chart)


def test_a_month_of_days_is_a_few_kilobytes() -> None:
    month = days(*[float(n % 7) for n in range(30)])
    assert len(charts.bars("Deployments", month)) < 6000
    assert len(charts.line("Lead time", month)) < 6000
    drawn = str(charts.line("x", month)) + str(charts.bars("x", month))
    coordinates = re.findall(r' (?:x|y|width|height|cx|cy)="([^"]+)"', drawn)
    assert coordinates and all(re.fullmatch(r"\d+(\.\d)?", c) for c in coordinates)
