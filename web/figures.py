"""The numbers pages and the API show, computed from the latest analysis's cubes.

Everything here works on summed weekly statistics (``monitor.analysis.cube``) and reuses the
analysis's own window and comparison functions, so a page shows exactly what the
analysis would compute for the same responses, for any segment a user may see.
Results are memoised on the cube set, which a newer analysis replaces.

Anonymity: every figure goes through the transition's disclosure pattern
(``monitor.analysis.disclosure``): a segment, a heatmap cell, a week or a window is
shown only where the pattern shows it, so no hidden segment can be computed by
subtracting shown ones (including across filters, dimensions and weeks); drill-down
rows that are not shown are folded into one "other" row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from detectors import metric_for
from monitor.analysis import disclosure
from monitor.analysis.cube import CubeSet
from monitor.analysis.transitions import (
    TransitionStatus,
    Window,
    compare_windows,
    protection_of,
    transition_figures,
    transition_windows,
    window_totals,
)
from monitor.scope import Scope
from monitor.store.models import Transition

METRICS = ("happiness", "lost_time")
SUMMARY_METRICS = (*METRICS, "volume")
CONFIDENCE = 0.95
TREND_POOL = 4  # trend lines pool four weeks per point: single weeks of a segment are noise
METRIC_LABELS = {"happiness": "Happiness", "lost_time": "Lost time", "volume": "Responses per week"}
IMPACT_UNITS = {"happiness": "net promoters / week", "lost_time": "hours lost / week"}
Conditions = dict[str, tuple[str, ...]]
T = TypeVar("T")


class NotShown(LookupError):
    """The figures asked for would reveal too few responses, or there are none (one message for both)."""

    def __init__(self, message: str = disclosure.NOT_SHOWN) -> None:
        super().__init__(message)


def metric_label(name: str) -> str:
    return METRIC_LABELS.get(name) or name.removeprefix("factor:")


def conditions_for(
    transition_scope: Mapping[str, list[str]], user_scope: Mapping[str, list[str]], filters: Mapping[str, str]
) -> Conditions:
    """Responses a view covers: the transition's scope, the user's scope and the filters, all at once."""
    scope = Scope.of(transition_scope).intersect(Scope.of(user_scope))
    return scope.intersect(Scope.of({name: [value] for name, value in filters.items()})).conditions()


def memoised(cubes: CubeSet, key: Hashable, compute: Callable[[], T]) -> T:
    """``compute()``, once per process and analysis: the memo goes with the cubes."""
    if key not in cubes.memo:
        cubes.memo[key] = compute()
    return cubes.memo[key]


def _windows(cubes: CubeSet, transition: Transition) -> dict[str, Window]:
    windows = transition_windows(transition.go_live, transition.baseline_weeks, transition.observation_weeks, cubes.table)
    return {window.name: window for window in windows}


def _column(cubes: CubeSet, name: str) -> int:
    return cubes.stat_names.index(name)


def _window_sum(cubes: CubeSet, stats: np.ndarray, window: Window) -> np.ndarray:
    """Totals of a window, for every row of a (rows, periods, statistics) array."""
    first = max(window.first - cubes.first_period, 0)
    return stats[:, first : window.last - cubes.first_period + 1].sum(axis=1)


def protection(cubes: CubeSet, transition: Transition, k: int) -> disclosure.Protection:
    """The transition's disclosure pattern: one for every viewer, page and API answer (and digest)."""
    return protection_of(cubes, transition, k)


def _series(cubes: CubeSet, conditions: Conditions) -> np.ndarray | None:
    _, stats = cubes.series(conditions)
    return stats[0] if len(stats) else None


@dataclass(frozen=True)
class TransitionKey:
    """What a transition's figures depend on, for memoising them."""

    id: int
    go_live: dt.date
    baseline_weeks: int
    observation_weeks: int

    @classmethod
    def of(cls, transition: Transition) -> TransitionKey:
        return cls(transition.id, transition.go_live, transition.baseline_weeks, transition.observation_weeks)


def summary(cubes: CubeSet, transition: Transition, conditions: Conditions, k: int) -> dict[str, Any]:
    """Before/after per metric and window, recovery, and a status, for one view of a transition."""
    key = ("summary", TransitionKey.of(transition), tuple(conditions.items()), k)
    return memoised(cubes, key, lambda: _summary(cubes, transition, conditions, k))


def _summary(cubes: CubeSet, transition: Transition, conditions: Conditions, k: int) -> dict[str, Any]:
    series = _series(cubes, conditions)
    guard = protection(cubes, transition, k)
    if series is None or not guard.shown(conditions):
        return {"status": TransitionStatus.NO_DATA, "metrics": {}}
    figures = transition_figures(cubes.table, series, transition, k, CONFIDENCE)
    allowed = guard.window_names(conditions, len(series))
    for windows in figures["metrics"].values():
        for name in [name for name, value in windows.items() if isinstance(value, dict) and name not in allowed]:
            windows.pop(name)
    return figures


def weekly(cubes: CubeSet, transition: Transition, conditions: Conditions, metric_name: str, k: int) -> list[dict[str, Any]]:
    """The metric per week with its interval, for the weeks the disclosure pattern shows."""
    key = ("weekly", TransitionKey.of(transition), tuple(conditions.items()), metric_name, k)
    return memoised(cubes, key, lambda: _weekly(cubes, transition, conditions, metric_name, k))


def _weekly(cubes: CubeSet, transition: Transition, conditions: Conditions, metric_name: str, k: int) -> list[dict[str, Any]]:
    series = _series(cubes, conditions)
    if series is None:
        return []
    weeks = protection(cubes, transition, k).weeks(conditions, len(series))
    frame = pd.DataFrame(series, columns=list(cubes.stat_names))
    estimates = metric_for(metric_name).estimate_frame(frame, confidence=CONFIDENCE)
    responses = frame["n"].to_numpy()
    points = []
    for offset, row in enumerate(estimates.itertuples()):
        if not weeks[offset] or responses[offset] < k or not np.isfinite(row.value):
            continue
        points.append(
            {
                "week": cubes.table.period_start(cubes.first_period + offset).isoformat(),
                "value": round(float(row.value), 2),
                "ci_low": round(float(row.ci_low), 2),
                "ci_high": round(float(row.ci_high), 2),
                "n": int(responses[offset]),
            }
        )
    return points


def _parts(cubes: CubeSet, metric_name: str, totals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Additive numerator and denominator of a metric (value = numerator / denominator)."""

    def stat(name: str) -> np.ndarray:
        return totals[..., _column(cubes, name)]

    if metric_name == "happiness":
        return 100.0 * (stat("promoters") - stat("detractors")), stat("n")
    if metric_name == "lost_time":
        return stat("lt_sum"), stat("lt_n")
    return 100.0 * stat("f:" + metric_name.removeprefix("factor:")), stat("n")


def _impact(metric_name: str, per_week: float, delta: float | None) -> float | None:
    """Responses per week after go-live times the change: what the change costs each week."""
    if delta is None:
        return None
    if metric_name == "lost_time":
        return round(per_week * delta / 60.0, 1)
    return round(per_week * delta / 100.0, 1)


@dataclass(frozen=True)
class _Comparison:
    """Before (baseline) against after (since go-live) for rows of one view.

    A row's share of the change is its contribution to the view's change on the
    metric's additive parts (numerator over the view's denominator), so the
    shares of all rows, "other" included, add up to 1.
    """

    cubes: CubeSet
    metric_name: str
    baseline: Window
    since: Window
    total: np.ndarray  # (periods, statistics) of the whole view
    k: int
    guard: disclosure.Protection
    conditions: Conditions

    @classmethod
    def of(cls, cubes: CubeSet, transition: Transition, conditions: Conditions, metric_name: str, k: int) -> _Comparison:
        windows = _windows(cubes, transition)
        baseline, since = windows.get("baseline"), windows.get("since_go_live")
        total = _series(cubes, conditions)
        guard = protection(cubes, transition, k)
        if baseline is None or since is None or total is None or not guard.shown(conditions):
            raise NotShown()
        comparison = cls(cubes, metric_name, baseline, since, total, k, guard, conditions)
        if not comparison.shown(total[None])[0]:
            raise NotShown()
        return comparison

    def within(self, name: str, value: str) -> Conditions:
        return {**self.conditions, name: (value,)}

    def sums(self, stats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _window_sum(self.cubes, stats, self.baseline), _window_sum(self.cubes, stats, self.since)

    def shown(self, stats: np.ndarray) -> np.ndarray:
        """Rows with at least ``k`` responses both before and after."""
        n = _column(self.cubes, "n")
        before, after = self.sums(stats)
        return (before[:, n] >= self.k) & (after[:, n] >= self.k)

    def row(self, series: np.ndarray, segment: dict[str, str] | None, conditions: Conditions | None = None) -> dict[str, Any]:
        metric = metric_for(self.metric_name)
        compared = compare_windows(metric, self.cubes.table, series, [self.baseline, self.since], CONFIDENCE)
        compared = compared["since_go_live"]
        (sums_b, sums_a), (total_b, total_a) = self.sums(series[None]), self.sums(self.total[None])
        part_b, _ = _parts(self.cubes, self.metric_name, sums_b)
        part_a, count_a = _parts(self.cubes, self.metric_name, sums_a)
        all_b, den_b = _parts(self.cubes, self.metric_name, total_b)
        all_a, den_a = _parts(self.cubes, self.metric_name, total_a)
        with np.errstate(divide="ignore", invalid="ignore"):
            overall = float(all_a[0] / den_a[0] - all_b[0] / den_b[0])
            share = float((part_a[0] / den_a[0] - part_b[0] / den_b[0]) / overall) if abs(overall) > 1e-9 else None
        n = _column(self.cubes, "n")
        weeks_after = self.since.last - self.since.first + 1
        return {
            "segment": segment,
            "responses_before": int(sums_b[0, n]),
            "responses_after": int(sums_a[0, n]),
            **{name: compared[name] for name in ROW_FIELDS},
            "share": None if share is None or not np.isfinite(share) else round(share, 3),
            "impact": _impact(self.metric_name, float(count_a[0]) / weeks_after, compared["delta"]),
            "trend": _trend(
                self.cubes, self.metric_name, series, self.baseline.first, self.k,
                None if conditions is None else self.guard.weeks(conditions, len(series)),
            ),
        }


ROW_FIELDS = ("before", "before_ci", "after", "after_ci", "delta", "ci_low", "ci_high", "n_before", "n_after", "direction")


def segment_total(
    cubes: CubeSet, transition: Transition, conditions: Conditions, metric_name: str, k: int
) -> dict[str, Any]:
    """The whole view as one row (raises ``NotShown`` when it has too few responses)."""
    key = ("total", TransitionKey.of(transition), tuple(conditions.items()), metric_name, k)

    def compute() -> dict[str, Any]:
        comparison = _Comparison.of(cubes, transition, conditions, metric_name, k)
        return comparison.row(comparison.total, {}, conditions)

    return memoised(cubes, key, compute)


def drill(
    cubes: CubeSet, transition: Transition, conditions: Conditions, by: str, metric_name: str, k: int
) -> dict[str, Any]:
    """Each segment of ``by`` within the view: before (baseline) and after (since go-live)."""
    key = ("drill", TransitionKey.of(transition), tuple(conditions.items()), by, metric_name, k)
    return memoised(cubes, key, lambda: _drill(cubes, transition, conditions, by, metric_name, k))


def _drill(
    cubes: CubeSet, transition: Transition, conditions: Conditions, by: str, metric_name: str, k: int
) -> dict[str, Any]:
    comparison = _Comparison.of(cubes, transition, conditions, metric_name, k)
    keys, stats = cubes.series(conditions, (by,))
    # Shown where the disclosure pattern shows the segment (which implies k responses on each side).
    shown = comparison.shown(stats) & np.array([comparison.guard.shown(comparison.within(by, key[0])) for key in keys], dtype=bool)
    rows = [comparison.row(stats[i], {by: keys[i][0]}, comparison.within(by, keys[i][0])) for i in np.flatnonzero(shown)]
    rows.sort(key=lambda r: (r["share"] is None, -(r["share"] or 0.0)))
    # Responses without a value for ``by``, and segments too small to name, form "other".
    other = comparison.total[None] - stats[shown].sum(axis=0, keepdims=True)
    if comparison.shown(other)[0]:
        other_row: dict[str, Any] | None = comparison.row(other[0], None)
    else:
        other_row = {"segment": None, "hidden": True} if other[..., _column(cubes, "n")].sum() > 0 else None
    return {
        "by": by,
        "metric": metric_name,
        "impact_unit": IMPACT_UNITS.get(metric_name, "responses / week"),
        "window": {
            "before": [d.isoformat() for d in comparison.baseline.dates(cubes.table)],
            "after": [d.isoformat() for d in comparison.since.dates(cubes.table)],
        },
        "total": comparison.row(comparison.total, {}, conditions),
        "rows": rows,
        "other": other_row,
        "folded_segments": int((~shown).sum()),
        "trend_start": cubes.table.period_start(comparison.baseline.first + TREND_POOL - 1).isoformat(),
    }


def best_dimension(
    cubes: CubeSet, transition: Transition, conditions: Conditions, candidates: list[str], metric_name: str, k: int
) -> str | None:
    """The dimension where the change is most concentrated: one segment explaining far
    more of it than its share of responses. Where a drill-down should start."""

    def concentration(by: str) -> float:
        table = drill(cubes, transition, conditions, by, metric_name, k)
        total = max(table["total"]["responses_after"], 1)
        excess = [r["share"] - r["responses_after"] / total for r in table["rows"] if r["share"] is not None]
        return max(excess, default=float("-inf"))

    return max(candidates, key=concentration, default=None)


def trend(cubes: CubeSet, transition: Transition, conditions: Conditions, metric_name: str, k: int) -> list[float | None]:
    """The metric over pooled four-week windows across all the analysed weeks."""
    key = ("trend", TransitionKey.of(transition), tuple(conditions.items()), metric_name, k)

    def compute() -> list[float | None]:
        series = _series(cubes, conditions)
        weeks = protection(cubes, transition, k).weeks(conditions, len(series)) if series is not None else None
        return [] if series is None else _trend(cubes, metric_name, series, cubes.first_period, k, weeks)

    return memoised(cubes, key, compute)


def _trend(
    cubes: CubeSet, metric_name: str, series: np.ndarray, first_period: int, k: int, weeks: np.ndarray | None
) -> list[float | None]:
    """The metric over pooled four-week windows from the baseline on; None where too few answered
    or where a pooled week is not shown (a pool of shown weeks gives nothing new away)."""
    start = max(first_period - cubes.first_period, 0)
    if weeks is None:
        weeks = np.zeros(len(series), dtype=bool)
    pooled_shown = np.convolve(weeks[start:].astype(int), np.ones(TREND_POOL, dtype=int), mode="valid") == TREND_POOL
    cumulative = np.vstack([np.zeros(series.shape[1]), np.cumsum(series[start:], axis=0)])
    pooled = cumulative[TREND_POOL:] - cumulative[:-TREND_POOL]
    if not len(pooled):
        return []
    values = metric_for(metric_name).per_period(pd.DataFrame(pooled, columns=list(cubes.stat_names))).values
    responses = pooled[:, _column(cubes, "n")]
    return [
        round(float(v), 2) if r >= k and ok and np.isfinite(v) else None
        for v, r, ok in zip(values, responses, pooled_shown, strict=True)
    ]


def heatmap(
    cubes: CubeSet, transition: Transition, conditions: Conditions, by: str, by2: str, metric_name: str, k: int
) -> dict[str, Any]:
    """The change of a metric in every pair of ``by`` x ``by2`` segments; small cells stay blank."""
    key = ("heatmap", TransitionKey.of(transition), tuple(conditions.items()), by, by2, metric_name, k)
    return memoised(cubes, key, lambda: _heatmap(cubes, transition, conditions, by, by2, metric_name, k))


def _heatmap(
    cubes: CubeSet, transition: Transition, conditions: Conditions, by: str, by2: str, metric_name: str, k: int
) -> dict[str, Any]:
    windows = _windows(cubes, transition)
    baseline, since = windows.get("baseline"), windows.get("since_go_live")
    guard = protection(cubes, transition, k)
    if baseline is None or since is None or not guard.shown(conditions):
        raise NotShown()
    keys, stats = cubes.series(conditions, (by, by2))
    n = _column(cubes, "n")
    columns = list(cubes.stat_names)
    before, after = _window_sum(cubes, stats, baseline), _window_sum(cubes, stats, since)
    metric = metric_for(metric_name)
    value_b = metric.estimate_frame(pd.DataFrame(before, columns=columns))["value"].to_numpy()
    value_a = metric.estimate_frame(pd.DataFrame(after, columns=columns))["value"].to_numpy()
    cells = {}
    for (first, second), nb, na, vb, va in zip(keys, before[:, n], after[:, n], value_b, value_a, strict=True):
        if nb >= k and na >= k and np.isfinite(vb) and np.isfinite(va) and guard.shown({**conditions, by: (first,), by2: (second,)}):
            cells[(first, second)] = {"before": round(float(vb), 2), "after": round(float(va), 2), "delta": round(float(va - vb), 2), "n_after": int(na)}
    rows = sorted({first for first, _ in cells})
    cols = sorted({second for _, second in cells})
    return {
        "by": by,
        "by2": by2,
        "metric": metric_name,
        "rows": rows,
        "columns": cols,
        "cells": [{by: first, by2: second, **cell} for (first, second), cell in sorted(cells.items())],
    }


def factor_shifts(cubes: CubeSet, transition: Transition, conditions: Conditions, k: int) -> list[dict[str, Any]]:
    """Each feedback factor's share of responses before and after go-live, largest rise first."""
    key = ("factors", TransitionKey.of(transition), tuple(conditions.items()), k)
    return memoised(cubes, key, lambda: _factor_shifts(cubes, transition, conditions, k))


def _factor_shifts(cubes: CubeSet, transition: Transition, conditions: Conditions, k: int) -> list[dict[str, Any]]:
    windows = _windows(cubes, transition)
    baseline, since = windows.get("baseline"), windows.get("since_go_live")
    series = _series(cubes, conditions)
    if baseline is None or since is None or series is None or not protection(cubes, transition, k).shown(conditions):
        return []
    before, after = window_totals(cubes.table, series, baseline), window_totals(cubes.table, series, since)
    if min(before["n"], after["n"]) < k:
        return []
    shifts = []
    for column in cubes.stat_names:
        if not column.startswith("f:"):
            continue
        name = column.removeprefix("f:")
        delta = metric_for(f"factor:{name}").compare(before, after, confidence=CONFIDENCE)
        shifts.append(
            {
                "factor": name,
                "before_share": round(delta.before.value, 2),
                "after_share": round(delta.after.value, 2),
                "delta": round(delta.delta, 2),
                "ci_low": round(delta.ci_low, 2),
                "ci_high": round(delta.ci_high, 2),
                "p_value": delta.p_value,
            }
        )
    shifts.sort(key=lambda item: -item["delta"])
    return shifts
