"""Charts as inline SVG geometry, computed here and drawn by the templates.

Server-side SVG needs no JavaScript library and no CDN (the view runs on closed
networks), prints well, and passes a strict Content-Security-Policy: only
presentation attributes and classes, no inline styles.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

WIDTH, HEIGHT = 760, 280
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 16, 30
SPARK_WIDTH, SPARK_HEIGHT = 120, 28


@dataclass
class Chart:
    """Everything ``_chart.html`` draws, in SVG user units."""

    width: int = WIDTH
    height: int = HEIGHT
    lines: list[str] = field(default_factory=list)  # value line path per run of weeks
    bands: list[str] = field(default_factory=list)  # interval area per run of weeks
    dots: list[dict[str, Any]] = field(default_factory=list)
    baseline: dict[str, float] | None = None
    go_live: float | None = None
    changes: list[dict[str, Any]] = field(default_factory=list)
    x_ticks: list[dict[str, Any]] = field(default_factory=list)
    y_ticks: list[dict[str, Any]] = field(default_factory=list)
    plot: dict[str, float] = field(default_factory=dict)


def _nice_step(span: float, count: int = 5) -> float:
    raw = span / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)


def _runs(items: Sequence[tuple[float, dict[str, Any]]], gap: float) -> list[list[tuple[float, dict[str, Any]]]]:
    """Consecutive weeks together: a hidden (too small) week breaks the line."""
    runs: list[list[tuple[float, dict[str, Any]]]] = []
    for item in items:
        if runs and item[0] - runs[-1][-1][0] <= gap:
            runs[-1].append(item)
        else:
            runs.append([item])
    return runs


def _date(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def trend_chart(
    points: list[dict[str, Any]],
    *,
    go_live: str | None,
    baseline: dict[str, Any] | None,
    changes: list[dict[str, Any]],
    unit: str = "",
) -> Chart | None:
    """Weekly values with intervals, the baseline's interval as a band, go-live and changes marked."""
    if not points:
        return None
    chart = Chart()
    first, last = _date(points[0]["week"]), _date(points[-1]["week"])
    days = max((last - first).days, 7)
    x0, x1 = LEFT, WIDTH - RIGHT
    y0, y1 = TOP, HEIGHT - BOTTOM
    chart.plot = {"x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0}

    def x(day: dt.date) -> float:
        return round(x0 + (x1 - x0) * (day - first).days / days, 1)

    lows = [p["ci_low"] for p in points] + ([baseline["ci"][0]] if baseline else [])
    highs = [p["ci_high"] for p in points] + ([baseline["ci"][1]] if baseline else [])
    y, chart.y_ticks = _value_axis(min(lows), max(highs), unit, y0, y1)
    chart.x_ticks = _month_ticks(first, last, days, x)
    placed = [(x(_date(p["week"])), p) for p in points]
    _interval_lines(chart, placed, y, gap=(x1 - x0) * 7.5 / days)
    chart.dots = [
        {"x": px, "y": y(p["value"]), "title": f"week of {p['week']}: {p['value']:g}{unit} (95% CI {p['ci_low']:g} to {p['ci_high']:g}), {p['n']} responses"}
        for px, p in placed
    ]
    if baseline is not None:
        chart.baseline = {"y": y(baseline["ci"][1]), "height": round(y(baseline["ci"][0]) - y(baseline["ci"][1]), 1), "value_y": y(baseline["value"])}
    if go_live and first <= _date(go_live) <= last:
        chart.go_live = x(_date(go_live))
    chart.changes = [
        {"x": x(_date(c["date"])), "title": c["title"], "href": c.get("href")}
        for c in changes
        if first <= _date(c["date"]) <= last
    ]
    return chart


def _value_axis(
    low: float, high: float, unit: str, y0: float, y1: float
) -> tuple[Callable[[float], float], list[dict[str, Any]]]:
    """A value axis from ``low`` to ``high`` rounded out to a nice step: the y of a value, and the ticks."""
    step = _nice_step(max(high - low, 1e-6))
    low, high = math.floor(low / step) * step, math.ceil(high / step) * step

    def y(value: float) -> float:
        return round(y1 - (y1 - y0) * (value - low) / max(high - low, 1e-9), 1)

    ticks = []
    tick = low
    while tick <= high + step / 2:
        ticks.append({"y": y(tick), "label": f"{tick:g}{unit}"})
        tick += step
    return y, ticks


def _month_ticks(first: dt.date, last: dt.date, days: int, x: Callable[[dt.date], float]) -> list[dict[str, Any]]:
    """About eight month labels along the time axis, the year on the first and on January."""
    ticks: list[dict[str, Any]] = []
    month = dt.date(first.year, first.month, 1)
    every = max(1, round(days / 30 / 8))
    index = 0
    while month <= last:
        if month >= first and index % every == 0:
            ticks.append({"x": x(month), "label": month.strftime("%b %Y" if month.month == 1 or not ticks else "%b")})
        index += 1
        month = dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return ticks


def _interval_lines(chart: Chart, placed: list[tuple[float, dict[str, Any]]], y: Callable[[float], float], gap: float) -> None:
    """The value line and its interval band, broken where weeks are missing."""
    for run in _runs(placed, gap):
        chart.lines.append("M" + " L".join(f"{px},{y(p['value'])}" for px, p in run))
        upper = [f"{px},{y(p['ci_high'])}" for px, p in run]
        lower = [f"{px},{y(p['ci_low'])}" for px, p in reversed(run)]
        chart.bands.append("M" + " L".join(upper + lower) + " Z")


def sparkline(values: Sequence[float | None], width: int = SPARK_WIDTH, height: int = SPARK_HEIGHT) -> dict[str, Any] | None:
    """A small trend path; None values (hidden or empty) break it."""
    known = [v for v in values if v is not None]
    if len(known) < 2:
        return None
    low, high = min(known), max(known)
    span = max(high - low, 1e-9)
    count = max(len(values) - 1, 1)
    placed = [
        (round(2 + (width - 4) * i / count, 1), round(height - 3 - (height - 6) * (v - low) / span, 1))
        for i, v in enumerate(values)
        if v is not None
    ]
    runs = _runs([(px, {"y": py}) for px, py in placed], (width - 4) / count * 1.5)
    path = " ".join("M" + " L".join(f"{px},{p['y']}" for px, p in run) for run in runs)
    return {"path": path, "last": placed[-1], "width": width, "height": height}


def heat_class(metric: str, before: float, delta: float) -> str:
    """CSS class for a heatmap cell: how much worse or better, read through the metric's polarity."""
    if metric == "lost_time":
        relative = delta / before if before else 0.0
        badness = relative / 0.1  # ten percent more lost time per step
    else:
        badness = -delta / 5.0  # five points of Happiness per step
    level = min(int(abs(badness)), 3)
    if level == 0:
        return "heat-0"
    return f"heat-{'bad' if badness > 0 else 'good'}-{level}"


@dataclass
class DualChart(Chart):
    """A ``Chart`` of the left metric plus a second metric on its own right-hand axis."""

    second_lines: list[str] = field(default_factory=list)
    second_dots: list[dict[str, Any]] = field(default_factory=list)
    right_ticks: list[dict[str, Any]] = field(default_factory=list)


def dual_chart(
    left: list[dict[str, Any]],
    right: list[dict[str, Any]],
    *,
    go_live: str | None,
    left_unit: str = "",
    right_unit: str = "%",
    right_name: str = "SLA met",
) -> DualChart | None:
    """Happiness (left axis, with its interval band) and SLA met (right axis, 0-100%)
    per week on one time axis: the two lines that should move together."""
    if not left and not right:
        return None
    weeks = sorted({p["week"] for p in [*left, *right]})
    first, last = _date(weeks[0]), _date(weeks[-1])
    days = max((last - first).days, 7)
    x0, x1 = LEFT, WIDTH - RIGHT - 32  # room for the right-hand axis labels
    y0, y1 = TOP, HEIGHT - BOTTOM
    chart = DualChart()
    chart.plot = {"x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0}

    def x(day: dt.date) -> float:
        return round(x0 + (x1 - x0) * (day - first).days / days, 1)

    gap = (x1 - x0) * 7.5 / days
    if left:
        low, high = min(p["ci_low"] for p in left), max(p["ci_high"] for p in left)
        yl, chart.y_ticks = _value_axis(low, high, left_unit, y0, y1)
        placed = [(x(_date(p["week"])), p) for p in left]
        _interval_lines(chart, placed, yl, gap)
        chart.dots = [
            {"x": px, "y": yl(p["value"]), "title": f"week of {p['week']}: Happiness {p['value']:g}{left_unit} (95% CI {p['ci_low']:g} to {p['ci_high']:g}), {p['n']} responses"}
            for px, p in placed
        ]
    chart.x_ticks = _month_ticks(first, last, days, x)
    if go_live and first <= _date(go_live) <= last:
        chart.go_live = x(_date(go_live))

    def y(value: float) -> float:  # right axis: 0-100%
        return round(y1 - (y1 - y0) * value / 100.0, 1)

    chart.right_ticks = [{"x": x1 + 6, "y": y(v), "label": f"{v}{right_unit}"} for v in (0, 25, 50, 75, 100)]
    placed = [(x(_date(p["week"])), p) for p in right]
    for run in _runs(placed, gap):
        chart.second_lines.append("M" + " L".join(f"{px},{y(p['value'])}" for px, p in run))
    chart.second_dots = [
        {"x": px, "y": y(p["value"]), "title": f"week of {p['week']}: {right_name} {p['value']:g}{right_unit} (95% CI {p['ci_low']:g} to {p['ci_high']:g}), {p['n']} tickets"}
        for px, p in placed
    ]
    return chart
