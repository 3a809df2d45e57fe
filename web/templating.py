"""Template helpers: number formats, segment names, status labels and drill-down links."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from flask import Flask, url_for

from monitor.analysis.transitions import TransitionStatus
from web import charts, figures

MINUS = "\u2212"
STATUS = {status.value: (status.label, status.meaning) for status in TransitionStatus}
WINDOWS = {
    "early": "Weeks 1-4",
    "settled": "Weeks 5-12",
    "since_go_live": "Since go-live",
    "recent": "Last 4 weeks",
}
UNITS = {"happiness": "", "lost_time": " min", "volume": ""}


def number(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "\u2014"
    return f"{value:,.{digits}f}".replace("-", MINUS)


def signed(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "\u2014"
    return f"{value:+,.{digits}f}".replace("-", MINUS)


def interval(low: float | None, high: float | None, digits: int = 1) -> str:
    if low is None or high is None:
        return ""
    return f"{number(low, digits)} to {number(high, digits)}"


def percent(value: float | None) -> str:
    return "\u2014" if value is None else f"{value * 100:.0f}%".replace("-", MINUS)


def when(text: str | None) -> str:
    """An ISO time as 'YYYY-MM-DD HH:MM UTC' (stored times are UTC)."""
    if not text:
        return ""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return text
    return moment.strftime("%Y-%m-%d %H:%M") + (" UTC" if moment.utcoffset() is not None else "")


def segment_text(segment: Mapping[str, str] | None) -> str:
    if not segment:
        return "Everyone"
    return " \u00d7 ".join(f"{name} = {value}" for name, value in segment.items())


def drill_url(transition_id: int, filters: Mapping[str, str], **extra: Any) -> str:
    arguments = {name: value for name, value in extra.items() if value}
    return url_for(
        "transitions.segments",
        transition_id=transition_id,
        f=[f"{name}={value}" for name, value in filters.items()],
        **arguments,
    )


def init_app(app: Flask) -> None:
    app.jinja_env.filters.update(
        number=number, signed=signed, percent=percent, when=when, segment=segment_text, metric=figures.metric_label
    )
    app.jinja_env.globals.update(
        interval=interval,
        drill_url=drill_url,
        sparkline=charts.sparkline,
        trend_chart=charts.trend_chart,
        dual_chart=charts.dual_chart,
        IT_NAMES={"sla_met": "SLA met", "resolution_hours": "Median resolution time", "reassignment_rate": "Reassigned", "reopen_rate": "Reopened", "response_rate": "Survey response rate", "feedback_delay_hours": "Feedback delay (median)"},
        heat_class=charts.heat_class,
        STATUS=STATUS,
        WINDOWS=WINDOWS,
        UNITS=UNITS,
    )
