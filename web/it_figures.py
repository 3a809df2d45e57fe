"""IT metrics beside the experience ones on the transition page and the drill-down (issue 12).

Weekly SLA-met rate and survey response rate of the tickets a view covers (the same
conditions as its responses: transition scope, the viewer's scope, the filters),
computed from the stored tickets; and the before/after table of the analysis
report's ``it_metrics``. Anonymity: a week's SLA-met rate needs ``k`` resolved
tickets, its response rate ``k`` answered and ``k`` unanswered tickets (either side
alone would count a handful of respondents); a report row needs ``k`` tickets on
both sides. A viewer limited to a scope sees no report rows (the report covers the
whole transition), as for targets. Hiding a segment's small weeks is not enough:
everyone's week minus the other segments' would show it. The weeks each view may show
follow one pattern for every viewer (``it_pattern``): the survey series' disclosure
control (``monitor.analysis.disclosure.weekly_pattern``) applied to the tickets' own
counts, resolved, answered and unanswered; series of two dimensions are not shown.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from detectors import metric_for
from detectors.it_metrics import TICKET_STATS, ticket_cube
from monitor.analysis.disclosure import (
    CellCounts,
    Counts,
    WeeklyPattern,
    weekly_pattern,
)
from monitor.periods import period_of_day, period_start
from monitor.store.models import Dimension, DimensionValue
from monitor.store.tickets import load_ticket_arrays

EPOCH = dt.date(1970, 1, 1)
IT_TABLE_METRICS = ("sla_met", "resolution_hours", "reassignment_rate", "reopen_rate", "response_rate", "feedback_delay_hours")
WINDOW_ORDER = ("early", "settled", "since_go_live")


def _mask(connection: Any, arrays: Mapping[str, Any], conditions: Mapping[str, tuple[str, ...]]) -> np.ndarray | None:
    """Tickets matching every condition; None when a condition names a dimension tickets lack."""
    mask = np.ones(len(arrays["resolved_day"]), dtype=bool)
    for name, values in conditions.items():
        slot = connection.execute(select(Dimension.slot).where(Dimension.name == name)).scalar_one_or_none()
        if slot is None or slot not in arrays["slots"]:
            return None
        ids = connection.execute(
            select(DimensionValue.id).join(Dimension).where(Dimension.name == name, DimensionValue.value.in_(list(values)))
        ).scalars().all()
        mask &= np.isin(arrays["slots"][slot], np.array(ids, dtype=np.int64))
    return mask


# The ticket counts the weekly series publish, and the series each one guards.
PATTERN_COUNTS = ("resolved", "answered", "unanswered")
GUARDS = {"sla_met": ("resolved",), "response_rate": PATTERN_COUNTS}


@dataclass(frozen=True)
class TicketWindow:
    """The tickets resolved in the weeks shown, read once for a view's pattern and its
    weekly series (each read them on its own, twice per page on a cold cache)."""

    arrays: Mapping[str, Any]  # ``load_ticket_arrays``
    first: int  # the first week (period)
    periods: int  # number of weeks

    @classmethod
    def read(cls, connection: Any, first_week: dt.date, last_week: dt.date) -> TicketWindow:
        first_day, last_day = (first_week - EPOCH).days, (last_week - EPOCH).days + 6
        first = int(period_of_day(first_day, "week"))
        periods = int(period_of_day(last_day, "week")) - first + 1
        return cls(load_ticket_arrays(connection, first_day, last_day), first, periods)


def it_pattern(connection: Any, window: TicketWindow, k: int) -> dict[str, WeeklyPattern]:
    """Per ticket count (``PATTERN_COUNTS``), the weeks everyone's and each one-dimension
    segment's series may show: one pattern for every viewer and filter."""
    arrays, first, periods = window.arrays, window.first, window.periods
    week = np.asarray(period_of_day(arrays["resolved_day"], "week"), dtype=np.int64) - first
    answered = np.asarray(arrays["answered"], dtype=bool)
    weights = {"resolved": None, "answered": answered.astype(float), "unanswered": (~answered).astype(float)}
    names = dict(connection.execute(select(Dimension.slot, Dimension.name)).all())
    labels = dict(connection.execute(select(DimensionValue.id, DimensionValue.value)).all())
    dimensions = {names[slot]: codes for slot, codes in arrays["slots"].items() if slot in names}

    def counts_of(weight: np.ndarray | None) -> Counts:
        def counts(by: tuple[str, ...]) -> tuple[list[tuple[str, ...]], np.ndarray]:
            if not by:
                return [()], np.bincount(week, weights=weight, minlength=periods)[None, :periods]
            codes = np.asarray(dimensions[by[0]])
            known = codes >= 0
            values, row = np.unique(codes[known], return_inverse=True)
            flat = np.bincount(row * periods + week[known], weights=None if weight is None else weight[known],
                               minlength=len(values) * periods)
            return [(labels[int(v)],) for v in values], flat.reshape(len(values), periods)
        return counts

    return {name: weekly_pattern(CellCounts.read(tuple(dimensions), counts_of(weights[name])), (), first, k)
            for name in PATTERN_COUNTS}


def it_weekly(connection: Any, window: TicketWindow, conditions: Mapping[str, tuple[str, ...]], k: int,
              patterns: Mapping[str, WeeklyPattern]) -> dict[str, list[dict[str, Any]]]:
    """``sla_met`` and ``response_rate`` per week (percent, 95% interval, n tickets) of
    ``window``; only the weeks ``patterns`` (``it_pattern``) show for the view, and none
    under the threshold (module docstring)."""
    arrays, first, periods = window.arrays, window.first, window.periods
    empty: dict[str, list[dict[str, Any]]] = {"sla_met": [], "response_rate": []}
    if not len(arrays["resolved_day"]):
        return empty
    mask = _mask(connection, arrays, conditions)
    if mask is None or not mask.any():
        return empty
    week = np.asarray(period_of_day(arrays["resolved_day"][mask], "week")) - first
    cube = ticket_cube(
        week, np.zeros(len(week), dtype=np.int64), 1, periods,
        sla=arrays["sla"][mask], reassignments=arrays["reassignments"][mask], reopens=arrays["reopens"][mask],
        resolution_hours=arrays["resolution_hours"][mask], answered=arrays["answered"][mask],
        feedback_hours=arrays["feedback_hours"][mask],
    )[0]
    resolved = cube[:, TICKET_STATS.index("t_n")]
    answered = cube[:, TICKET_STATS.index("ans_k")]
    out = dict(empty)
    for name in out:
        metric = metric_for(name)
        allowed = np.logical_and.reduce([patterns[count].view_weeks(conditions, periods) for count in GUARDS[name]])
        points = []
        for offset in range(periods):
            shown = resolved[offset] >= k and bool(allowed[offset])
            if name == "response_rate":
                shown = shown and min(answered[offset], resolved[offset] - answered[offset]) >= k
            if not shown:
                continue
            estimate = metric.estimate(pd.Series(cube[offset], index=TICKET_STATS))
            if not np.isfinite(estimate.value):
                continue
            points.append({
                "week": period_start(first + offset, "week").isoformat(),
                "value": round(float(estimate.value), 2),
                "ci_low": round(float(estimate.ci_low), 2),
                "ci_high": round(float(estimate.ci_high), 2),
                "n": int(resolved[offset]),
            })
        out[name] = points
    return out


def it_windows(report_entry: Mapping[str, Any] | None, k: int) -> list[dict[str, Any]]:
    """Rows of the report's ``it_metrics`` (one per metric, baseline and each window),
    only windows with ``k`` tickets on both sides."""
    if not report_entry:
        return []
    rows = []
    for name in IT_TABLE_METRICS:
        windows = (report_entry.get("it_metrics") or {}).get(name) or {}
        shown = {w: windows[w] for w in WINDOW_ORDER if w in windows and min(windows[w].get("n_before") or 0, windows[w].get("n_after") or 0) >= k}
        if not shown:
            continue
        base = next(iter(shown.values()))
        rows.append({"metric": name, "before": base["before"], "before_ci": base["before_ci"], "n_before": base["n_before"], "windows": shown})
    return rows
