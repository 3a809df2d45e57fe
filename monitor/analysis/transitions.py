"""Transition figures: windows around a go-live, before/after per metric, recovery, targets.

The one computation of a transition's figures: the analysis run's report, the web
view and the digests all call it, so they cannot disagree about the same week.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd

from detectors import (
    Delta,
    Direction,
    Estimate,
    Metric,
    lost_time_summary,
    metric_for,
    pool,
    pool_ranges,
    test_known_date,
)
from detectors.attribution import diff_in_diff, worse_sign
from detectors.it_metrics import DETECTED_IT_METRICS, is_it_metric
from monitor.analysis import disclosure
from monitor.analysis.aggregate import (
    ResponseTable,
    Segment,
    as_frame,
    grouping_cube,
    period_of_day,
)
from monitor.analysis.cube import CubeSet
from monitor.analysis.detect import AnalysisOptions
from monitor.analysis.it_detect import TicketTable
from monitor.periods import EPOCH, period_start, periods_per_week
from monitor.store.models import Transition
from monitor.targets import JUDGE_PERIODS, Target

TRANSITION_METRICS = ("happiness", "lost_time", "volume")
STATUS_METRICS = ("happiness", "lost_time")  # the ones a transition's status is judged on
RECENT_PERIODS = 4  # "recent": the last four complete periods, on the web view and in digests


class TransitionStatus(StrEnum):
    """Where a transition stands; the web view and the digests show the same one."""

    NO_DATA = "no_data"  # too few responses before and after go-live
    ON_TARGET = "on_target"  # no lasting change for the worse
    DIPPING = "dipping"  # worse than before go-live and not improving
    RECOVERING = "recovering"  # better lately, or back overall while segments are still worse
    RECOVERED = "recovered"  # back within the baseline's interval for good

    @property
    def on_track(self) -> bool:
        return self in (TransitionStatus.ON_TARGET, TransitionStatus.RECOVERED, TransitionStatus.NO_DATA)

    @property
    def label(self) -> str:
        return STATUS_TEXT[self][0]

    @property
    def meaning(self) -> str:
        return STATUS_TEXT[self][1]


STATUS_TEXT = {
    TransitionStatus.DIPPING: ("Dipping", "Worse than before go-live and not improving"),
    TransitionStatus.RECOVERING: ("Recovering", "Better in the last weeks, or back overall while some segments are still worse"),
    TransitionStatus.RECOVERED: ("Recovered", "Back within the baseline's interval"),
    TransitionStatus.ON_TARGET: ("On target", "No lasting change for the worse"),
    TransitionStatus.NO_DATA: ("No data", "Too few responses before and after go-live"),
}


@dataclass(frozen=True)
class Window:
    name: str
    first: int  # period numbers, inclusive
    last: int

    def dates(self, table: ResponseTable) -> tuple[dt.date, dt.date]:
        return table.period_start(self.first), table.period_start(self.last)


def transition_windows(
    go_live: dt.date, baseline_weeks: int, observation_weeks: int, table: ResponseTable
) -> list[Window]:
    """Baseline before go-live, and since / early (weeks 1-4) / settled (5-12) after.

    Clipped to the periods with data: a baseline starts no earlier than the first
    response (its dates say what was actually pooled), and no window runs past
    the last complete period.
    """
    live = period_of_day((go_live - EPOCH).days, table.period)
    per_week = periods_per_week(table.period)
    last = table.last_period
    first = int(table.periods.min()) if len(table) else table.first_period
    early_end = min(live + 4 * per_week - 1, last)
    windows = [
        Window("baseline", max(live - baseline_weeks * per_week, first), live - 1),
        Window("since_go_live", live, last),
        Window("early", live, early_end),
        Window("settled", live + 4 * per_week, min(live + observation_weeks * per_week - 1, last)),
    ]
    return [w for w in windows if w.first <= w.last]


def window_totals(table: ResponseTable, series: np.ndarray, window: Window) -> pd.Series:
    first = max(window.first - table.first_period, 0)
    last = window.last - table.first_period + 1
    frame = pd.DataFrame(series[first:last], columns=list(table.stat_names))
    return pool(frame)


def compare_windows(
    metric: Metric, table: ResponseTable, series: np.ndarray, windows: Iterable[Window], confidence: float
) -> dict[str, dict]:
    """Each window after go-live against the baseline: before, after, delta with CI and n."""
    windows = list(windows)
    baseline = next((w for w in windows if w.name == "baseline"), None)
    if baseline is None:
        return {}
    before = window_totals(table, series, baseline)
    compared = {}
    for window in windows:
        if window is baseline:
            continue
        delta = metric.compare(before, window_totals(table, series, window), confidence=confidence)
        compared[window.name] = comparison_entry(metric, delta, *window.dates(table))
    return compared


def comparison_entry(metric: Metric, delta: Delta, start: dt.date, end: dt.date) -> dict[str, Any]:
    """One window against the baseline, as the report, the web view and the digests show it."""
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "before": _rounded(delta.before.value),
        "before_ci": [_rounded(delta.before.ci_low), _rounded(delta.before.ci_high)],
        "after": _rounded(delta.after.value),
        "after_ci": [_rounded(delta.after.ci_low), _rounded(delta.after.ci_high)],
        "delta": _rounded(delta.delta),
        "ci_low": _rounded(delta.ci_low),
        "ci_high": _rounded(delta.ci_high),
        "n_before": delta.n_before,
        "n_after": delta.n_after,
        "direction": str(metric.direction(delta.delta)) if np.isfinite(delta.delta) else "unchanged",
    }


RECOVERY_WINDOW = 4  # periods pooled per step when judging recovery
# A step shows recovery only with at least this share of the usual volume of
# RECOVERY_WINDOW periods (the baseline's median period with responses): holiday
# weeks carrying a fifth of the responses cannot show it.
RECOVERY_MIN_VOLUME = 0.5
# Back for this many steps in a row is a recovery, whatever comes later: a new dip
# months after is another change, not a sign the first never ended.
RECOVERY_HOLD = 13
# Steps cut short by a later change (``until``) keep at least this many periods.
RECOVERY_MIN_STEP = 2


def recovery_period(
    metric: Metric,
    table: ResponseTable,
    series: np.ndarray,
    baseline: Window,
    live: int,
    confidence: float,
    *,
    min_n: int = 1,
    until: int | None = None,
) -> dt.date | None:
    """First period from which the metric is back to its baseline (or better) and stays.

    Weekly values of a segment are too noisy to compare one by one; each step
    pools ``RECOVERY_WINDOW`` periods. A step is back when it has enough
    responses to show it (``min_n``, and ``RECOVERY_MIN_VOLUME`` of the usual
    volume), its interval overlaps the baseline's or its value is better than the
    baseline's, and it excludes the dip level
    (the first four weeks after go-live, when they were worse than the baseline).
    The answer is the start of the first run of such steps that lasts
    ``RECOVERY_HOLD`` steps or to the end: the end of the data, or ``until``, the
    period a later change of the same respondents starts (a dip back to normal
    for two weeks before the next one began has recovered; the next one is
    another change). Steps are cut short there, down to ``RECOVERY_MIN_STEP``.
    """
    base = metric.estimate(window_totals(table, series, baseline), confidence=confidence)
    counts = _period_counts(table, series, baseline)
    usual = float(np.median(counts[counts > 0])) if (counts > 0).any() else 0.0
    early = Window("early", live, min(live + RECOVERY_WINDOW - 1, table.last_period))
    dip = metric.estimate(window_totals(table, series, early), confidence=confidence)
    worse = np.isfinite(dip.value) and metric.direction(dip.value - base.value) is Direction.WORSE
    end = table.last_period if until is None else min(table.last_period, until - 1)
    shortest = RECOVERY_WINDOW if end == table.last_period else RECOVERY_MIN_STEP
    recovered_from = None
    starts = np.arange(live, end - shortest + 2)
    for start, estimate in zip(starts.tolist(), _step_estimates(metric, table, series, starts, end, confidence)):
        needed = max(min_n, RECOVERY_MIN_VOLUME * usual * (min(start + RECOVERY_WINDOW - 1, end) - start + 1))
        inside = (
            estimate.n >= needed
            and metric.is_back(estimate, base)
            and not (worse and estimate.ci_low <= dip.value <= estimate.ci_high)
        )
        if inside and recovered_from is None:
            recovered_from = start
        elif not inside:
            recovered_from = None
        if recovered_from is not None and start - recovered_from + 1 >= RECOVERY_HOLD:
            break
    return None if recovered_from is None else table.period_start(recovered_from)


def _step_estimates(
    metric: Metric, table: ResponseTable, series: np.ndarray, starts: np.ndarray, end: int, confidence: float
) -> list[Estimate]:
    """``window_totals`` of each step from ``starts`` (``RECOVERY_WINDOW`` periods, cut at
    ``end``) estimated at once, not one pandas estimate per step."""
    firsts = np.maximum(starts - table.first_period, 0)
    # A step before the first period holds nothing (a go-live before the first response).
    lasts = np.maximum(np.minimum(starts + RECOVERY_WINDOW - 1, end) - table.first_period + 1, firsts)
    frame = pool_ranges(pd.DataFrame(series, columns=list(table.stat_names)), firsts, lasts)
    return metric.estimates(frame, confidence=confidence) if len(frame) else []


def _period_counts(table: ResponseTable, series: np.ndarray, window: Window) -> np.ndarray:
    """Responses per period of ``window`` (the count column of the series)."""
    first = max(window.first - table.first_period, 0)
    last = max(window.last - table.first_period + 1, first)
    return np.asarray(series[first:last, table.stat_names.index("n")], dtype=float)


def baseline_history(
    table: ResponseTable, series: np.ndarray, go_live: dt.date, baseline_weeks: int, options: AnalysisOptions
) -> dict[str, Any]:
    """How much history the go-live can be judged against, and what is missing.

    One complete week before the go-live with ``min_n`` responses is enough to
    test the go-live itself (a known date needs no search); the baseline
    window asks for ``baseline_weeks``. Said in words when short, so a short
    history is visible instead of a silent absence of findings.
    """
    live = period_of_day((go_live - EPOCH).days, table.period)
    per_week = periods_per_week(table.period)
    wanted = Window("baseline", live - baseline_weeks * per_week, live - 1)
    counts = _period_counts(table, series, wanted) if len(table) else np.zeros(0)
    periods, responses = int((counts > 0).sum()), int(counts.sum())
    first = None if not len(table) else table.period_start(int(table.periods.min()))
    enough_to_test = periods >= 1 and responses >= options.min_n
    missing = []
    if periods < baseline_weeks * per_week:
        since = f" (responses start {first.isoformat()})" if first is not None else ""
        missing.append(f"{periods} of {baseline_weeks * per_week} baseline periods have responses{since}")
    if responses < options.min_n:
        missing.append(f"{responses} responses before go-live, {options.min_n} needed to test it")
    return {
        "periods": periods,
        "responses": responses,
        "enough_to_test": enough_to_test,
        "full_baseline": not missing,
        "missing": "; ".join(missing) or None,
    }


def go_live_test(
    metric: Metric, table: ResponseTable, series: np.ndarray, go_live: dt.date, options: AnalysisOptions
) -> dict[str, Any]:
    """The go-live tested directly as a change point (no search): status, reason, delta."""
    frame = as_frame(table, series)
    result = test_known_date(metric, frame, go_live, min_n=options.min_n, confidence=options.confidence)
    return {
        "status": str(result.status),
        "reason": result.reason,
        "periods_before": result.periods_before,
        "periods_after": result.periods_after,
        "delta": None if result.delta is None else _rounded(result.delta),
        "ci": None if result.ci_low is None else [_rounded(result.ci_low), _rounded(result.ci_high)],
        "p_value": result.p_value,
        "n_before": result.n_before,
        "n_after": result.n_after,
    }


def _rounded(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 2)


def transition_report(
    everyone: ResponseTable,
    transition: Transition,
    as_of: dt.date,
    options: AnalysisOptions,
    *,
    tickets: TicketTable | None = None,
) -> dict[str, Any]:
    """Before/after per metric, overall in scope and per single-dimension segment.

    With ``tickets``, IT targets (``sla_met>=95@12w``) are judged on the tickets in
    scope, and ``it_metrics`` gives each IT metric's before/after like the survey's.
    """
    if tickets is not None and transition.scope:
        tickets = tickets.subset(tickets.mask(transition.scope))
    table = everyone.within(transition.scope)
    windows = transition_windows(transition.go_live, transition.baseline_weeks, transition.observation_weeks, table)
    weeks_since = (as_of - transition.go_live).days // 7
    entry: dict[str, Any] = {
        "name": transition.name,
        "go_live": transition.go_live.isoformat(),
        "scope": transition.scope,
        "weeks_since_go_live": weeks_since,
        "metrics": {},
        "segments": [],
        "targets": [],
    }
    if tickets is not None and len(tickets):
        entry["it_metrics"] = it_comparisons(tickets, transition, options)
    if not len(table):
        entry["targets"] = [_judge_any(Target.from_dict(t), table, tickets, transition, as_of) for t in transition.targets]
        return entry
    _, overall = grouping_cube(table, ())
    series = overall[0]
    baseline = next((w for w in windows if w.name == "baseline"), None)
    live_period = next((w.first for w in windows if w.name == "since_go_live"), None)
    entry["history"] = baseline_history(table, series, transition.go_live, transition.baseline_weeks, options)
    for name in TRANSITION_METRICS:
        metric = metric_for(name)
        compared = compare_windows(metric, table, series, windows, options.confidence)
        if baseline is not None and live_period is not None:
            recovered = recovery_period(
                metric, table, series, baseline, live_period, options.confidence, min_n=options.min_n
            )
            compared["recovered_from"] = None if recovered is None else recovered.isoformat()
        if name != "volume":
            compared["go_live_test"] = go_live_test(metric, table, series, transition.go_live, options)
        entry["metrics"][name] = compared
    if transition.scope:
        _add_diff_in_diff(entry["metrics"], everyone.outside(transition.scope), table, series, windows, options)
    entry["lost_time_distribution"] = _lost_time_distribution(table, windows, options)
    entry["segments"] = _segment_comparisons(table, windows, options)
    entry["targets"] = [_judge_any(Target.from_dict(t), table, tickets, transition, as_of) for t in transition.targets]
    return entry


def _judge_any(
    target: Target, table: ResponseTable, tickets: TicketTable | None, transition: Transition, as_of: dt.date
) -> dict[str, Any]:
    """An experience target on the responses, an IT target on the tickets."""
    if is_it_metric(target.metric):
        if tickets is None or not len(tickets):
            return {**_unjudgeable(target, transition, as_of), "evidence": "no tickets in scope"}
        return _judge_it_target(target, tickets, transition, as_of)
    if not len(table):
        return _unjudgeable(target, transition, as_of)
    return _judge_target(target, table, transition, as_of)


def _judge_it_target(target: Target, tickets: TicketTable, transition: Transition, as_of: dt.date) -> dict[str, Any]:
    """As ``_judge_target``, on the tickets resolved in the four periods ending with the deadline week."""
    keep = tickets.mask({name: [value] for name, value in target.segment.items()})
    if not keep.any():
        return {**_unjudgeable(target, transition, as_of), "evidence": "no tickets in the segment"}
    deadline = target.deadline(transition.go_live)
    first, last = _judged_periods(deadline, tickets.first_period, tickets.last_period, tickets.period)
    frame = tickets.frame(tickets.cube_of(keep))
    totals = pool(frame.iloc[first - tickets.first_period : last - tickets.first_period + 1])
    estimate = metric_for(target.metric).estimate(totals)
    window = (period_start(first, tickets.period), period_start(last, tickets.period))
    return _verdict(target, deadline, as_of, estimate, window)


def it_comparisons(tickets: TicketTable, transition: Transition, options: AnalysisOptions) -> dict[str, Any]:
    """Each IT metric's baseline against since / early / settled, as ``compare_windows`` does for the survey's."""
    live = period_of_day((transition.go_live - EPOCH).days, tickets.period)
    per_week = periods_per_week(tickets.period)
    last = tickets.last_period
    windows = {
        "baseline": (max(live - transition.baseline_weeks * per_week, tickets.first_period), live - 1),
        "since_go_live": (live, last),
        "early": (live, min(live + 4 * per_week - 1, last)),
        "settled": (live + 4 * per_week, min(live + transition.observation_weeks * per_week - 1, last)),
    }
    windows = {name: w for name, w in windows.items() if w[0] <= w[1]}
    if "baseline" not in windows:
        return {}
    frame = tickets.frame(tickets.cube_of())

    def totals(window: tuple[int, int]) -> pd.Series:
        return pool(frame.iloc[window[0] - tickets.first_period : window[1] - tickets.first_period + 1])

    out: dict[str, Any] = {}
    before = totals(windows["baseline"])
    for name in DETECTED_IT_METRICS:
        metric = metric_for(name)
        compared = {}
        for window_name, window in windows.items():
            if window_name == "baseline":
                continue
            delta = metric.compare(before, totals(window), confidence=options.confidence)
            compared[window_name] = comparison_entry(
                metric, delta, period_start(window[0], tickets.period), period_start(window[1], tickets.period)
            )
        out[name] = compared
    return out


def _add_diff_in_diff(
    metrics: dict[str, Any],
    control: ResponseTable,
    table: ResponseTable,
    series: np.ndarray,
    windows: list[Window],
    options: AnalysisOptions,
) -> None:
    """Next to each before/after delta, the same delta net of the control group's.

    Respondents outside the transition's scope lived through the same weeks
    (holidays, a company-wide outage) without the change.
    """
    if not len(control):
        return
    _, control_cube = grouping_cube(control, ())
    baseline = next(w for w in windows if w.name == "baseline")
    for name in ("happiness", "lost_time"):
        metric = metric_for(name)
        for window in windows:
            compared = metrics[name].get(window.name)
            if window is baseline or compared is None:
                continue
            result = diff_in_diff(
                metric,
                (window_totals(table, series, baseline), window_totals(table, series, window)),
                (window_totals(control, control_cube[0], baseline), window_totals(control, control_cube[0], window)),
                confidence=options.confidence,
            )
            compared["did"] = None if result is None else result.as_dict()


def _lost_time_distribution(table: ResponseTable, windows: list[Window], options: AnalysisOptions) -> dict[str, Any]:
    """Mean and median lost minutes per window from the raw answers, bootstrap intervals.

    Lost time is heavily skewed: the median says what a typical respondent lost,
    the mean what the organisation lost in total; both are reported.
    """
    answered = table.stats[:, table.stat_names.index("lt_n")] > 0
    minutes = table.stats[:, table.stat_names.index("lt_sum")]
    summary = {}
    for window in windows:
        inside = answered & (table.periods >= window.first) & (table.periods <= window.last)
        if inside.sum() < options.anonymity_min_responses:
            continue
        result = lost_time_summary(minutes[inside], n_boot=1000, confidence=options.confidence)
        summary[window.name] = {
            kind: {"value": round(e.value, 1), "ci": [round(e.ci_low, 1), round(e.ci_high, 1)], "n": e.n}
            for kind, e in (("mean", result.mean), ("median", result.median))
        }
    return summary


def _segment_comparisons(table: ResponseTable, windows: list[Window], options: AnalysisOptions) -> list[dict[str, Any]]:
    """Happiness and lost time per single-dimension segment since go-live, by impact.

    Segments with fewer than the anonymity threshold of responses in the baseline
    or since go-live are never named: their responses are summed into one
    "other" row per dimension (shown only if that row clears the threshold too).
    """
    wanted = [w for w in windows if w.name in ("baseline", "since_go_live")]
    if len(wanted) < 2:
        return []
    # The same disclosure pattern as the web view's (read from the same groupings).
    n = table.stat_names.index("n")

    def counts(by: tuple[str, ...]) -> tuple[list[tuple[str, ...]], np.ndarray]:
        segments, cube = grouping_cube(table, by)
        return [tuple(segment.as_dict()[name] for name in by) for segment in segments], cube[..., n]

    cells = disclosure.CellCounts.read(list(table.labels), counts, [by for by in table.cubes if len(by) == 2])
    pattern = disclosure.protection(
        cells, {w.name: (w.first, w.last) for w in wanted}, table.first_period, options.anonymity_min_responses
    ).pattern
    _, (everyone,) = grouping_cube(table, ())
    rows = []
    for name in table.labels:
        segments, cube = grouping_cube(table, (name,))
        small = [not pattern.shown(((name, segment.as_dict()[name]),)) for segment in segments]
        named = [(segment.as_dict(), series) for segment, series, hide in zip(segments, cube, small, strict=True) if not hide]
        if any(small):
            # Everyone not in a named segment (no value included): what the named rows leave over.
            named.append(({name: "other"}, everyone - sum((series for _, series in named), np.zeros_like(everyone))))
        for segment, series in named:
            row: dict[str, Any] = {"segment": segment, "metrics": {}}
            for metric_name in ("happiness", "lost_time"):
                metric = metric_for(metric_name)
                since = compare_windows(metric, table, series, wanted, options.confidence).get("since_go_live")
                if since is None or min(since["n_before"], since["n_after"]) < options.anonymity_min_responses:
                    continue
                if since["delta"] is not None:
                    since["impact"] = round(worse_sign(metric) * since["n_after"] * since["delta"], 1)
                row["metrics"][metric_name] = since
            if "happiness" in row["metrics"]:
                rows.append(row)
    return sorted(rows, key=lambda r: -(r["metrics"]["happiness"].get("impact") or 0.0))


def _unjudgeable(target: Target, transition: Transition, as_of: dt.date) -> dict[str, Any]:
    """A target with no responses to judge it by: at risk until its deadline, then missed."""
    deadline = target.deadline(transition.go_live)
    return {
        "target": target.text(),
        "deadline": deadline.isoformat(),
        "status": "not_met" if as_of >= deadline else "at_risk",
        "evidence": "no responses in scope",
        "value": None,
        "n": 0,
    }


def _judge_target(target: Target, table: ResponseTable, transition: Transition, as_of: dt.date) -> dict[str, Any]:
    """Judge a target on the four periods ending with its deadline week (or the latest one)."""
    if any(name not in table.labels for name in target.segment):
        return _unjudgeable(target, transition, as_of)
    segments, cube = grouping_cube(table, tuple(target.segment))
    wanted = Segment.of(target.segment)
    series = next((s for segment, s in zip(segments, cube, strict=True) if segment == wanted), None)
    if series is None:
        return _unjudgeable(target, transition, as_of)
    deadline = target.deadline(transition.go_live)
    first, last = _judged_periods(deadline, table.first_period, table.last_period, table.period)
    estimate = metric_for(target.metric).estimate(window_totals(table, series, Window("target", first, last)))
    return _verdict(target, deadline, as_of, estimate, (table.period_start(first), table.period_start(last)))


def _judged_periods(deadline: dt.date, first_period: int, last_period: int, period: str) -> tuple[int, int]:
    """The ``JUDGE_PERIODS`` periods ending with the deadline's (or the data's last) period."""
    last = min(last_period, period_of_day((deadline - EPOCH).days - 1, period))
    return max(last - JUDGE_PERIODS + 1, first_period), last


def _verdict(
    target: Target, deadline: dt.date, as_of: dt.date, estimate: Estimate, window: tuple[dt.date, dt.date]
) -> dict[str, Any]:
    """A judged target: met, else at risk until its deadline and missed after it."""
    meets = bool(np.isfinite(estimate.value) and target.met_by(estimate.value))
    return {
        "target": target.text(),
        "deadline": deadline.isoformat(),
        "status": "met" if meets else ("not_met" if as_of >= deadline else "at_risk"),
        "value": None if not np.isfinite(estimate.value) else round(estimate.value, 2),
        "ci": [round(estimate.ci_low, 2), round(estimate.ci_high, 2)] if np.isfinite(estimate.ci_low) else None,
        "n": estimate.n,
        "window": [window[0].isoformat(), window[1].isoformat()],
    }


def transition_figures(
    table: ResponseTable, series: np.ndarray, transition: Transition, k: int, confidence: float = 0.95
) -> dict[str, Any]:
    """Before/after per metric and window (the recent weeks included), recovery, and the status.

    ``series`` holds the per-period statistics of the responses one view covers (a
    cube series or a raw table's); windows with fewer than ``k`` responses (a scoped
    viewer's last weeks, say) are left out.
    """
    windows = {w.name: w for w in transition_windows(transition.go_live, transition.baseline_weeks, transition.observation_weeks, table)}
    entry: dict[str, Any] = {"status": TransitionStatus.NO_DATA, "metrics": {}}
    baseline, since = windows.get("baseline"), windows.get("since_go_live")
    if baseline is None or since is None:
        return entry
    if min(window_totals(table, series, w)["n"] for w in (baseline, since)) < k:
        return entry
    recent = Window("recent", max(since.first, since.last - RECENT_PERIODS + 1), since.last)
    shown = [w for w in (*windows.values(), recent) if window_totals(table, series, w)["n"] >= k]
    for name in TRANSITION_METRICS:
        metric = metric_for(name)
        compared = compare_windows(metric, table, series, shown, confidence)
        recovered = recovery_period(metric, table, series, baseline, since.first, confidence)
        compared["recovered_from"] = None if recovered is None else recovered.isoformat()
        entry["metrics"][name] = compared
    entry["status"] = transition_status(entry["metrics"])
    return entry


def worse_beyond_doubt(window: Mapping[str, Any] | None) -> bool:
    """Worse than the baseline, and the interval of the change excludes zero."""
    if not window or window.get("direction") != "worse" or window.get("ci_low") is None:
        return False
    return window["ci_low"] > 0 or window["ci_high"] < 0


def transition_status(metrics: Mapping[str, Mapping[str, Any]], open_findings: int = 0) -> TransitionStatus:
    """The status from Happiness and lost time, and the root findings still open in the transition.

    On target: neither ever got worse beyond doubt. Recovered: every metric that did
    is back within its baseline interval for good. Recovering: the last weeks are no
    longer worse, or at most half as bad as the worst window; also when everyone is
    back but a root finding inside the transition is still open (a segment is still
    worse: not over for the people in it). Dipping otherwise.
    """
    if not metrics:
        return TransitionStatus.NO_DATA
    judged = ("early", "settled", "since_go_live")
    dipped = [name for name in STATUS_METRICS if any(worse_beyond_doubt(metrics.get(name, {}).get(w)) for w in judged)]
    still_open = [name for name in dipped if not metrics[name].get("recovered_from")]
    for name in still_open:
        recent = metrics[name].get("recent")
        worst = max(abs(metrics[name][w]["delta"] or 0) for w in judged if metrics[name].get(w))
        if worse_beyond_doubt(recent) and abs(recent["delta"]) > worst / 2:
            return TransitionStatus.DIPPING
    if still_open or open_findings:
        return TransitionStatus.RECOVERING
    return TransitionStatus.RECOVERED if dipped else TransitionStatus.ON_TARGET


def cube_cells(cubes: CubeSet) -> disclosure.CellCounts:
    """Responses per period of every cell the kept cubes hold, read once per analysis."""
    if ("cells",) not in cubes.memo:
        n = cubes.stat_names.index("n")

        def counts(by: tuple[str, ...]) -> tuple[list[tuple[str, ...]], np.ndarray]:
            keys, stats = cubes.series({}, by)
            return keys, stats[..., n]

        pairs = [tuple(dims) for dims in cubes.groupings if len(dims) == 2]
        cubes.memo[("cells",)] = disclosure.CellCounts.read(cubes.dimensions, counts, pairs)  # type: ignore[arg-type]
    return cubes.memo[("cells",)]


_PROTECTIONS: dict[tuple[Any, ...], disclosure.Protection] = {}
_PROTECTIONS_KEPT = 32


def protection_of(cubes: CubeSet, transition: Transition, k: int) -> disclosure.Protection:
    """A transition's disclosure pattern over the kept cubes: the one every publisher of its figures
    (pages, API, digests) asks, whoever the viewer.

    Computing it takes up to seconds (the exact audit solves the published equations), so it
    is kept per process for the cubes of one analysis (their build time names them), not
    only per ``CubeSet``: every worker, digest run and test app reading the same analysis
    shares it.
    """
    key = (cubes.built_at, cubes.as_of, transition.go_live, transition.baseline_weeks, transition.observation_weeks, k)
    found = _PROTECTIONS.get(key)
    if found is None:
        windows = {
            w.name: (w.first, w.last)
            for w in transition_windows(transition.go_live, transition.baseline_weeks, transition.observation_weeks, cubes.table)
        }
        if "since_go_live" in windows:
            first, last = windows["since_go_live"]
            windows["recent"] = (max(first, last - RECENT_PERIODS + 1), last)
        found = disclosure.protection(cube_cells(cubes), windows, cubes.first_period, k)
        if len(_PROTECTIONS) >= _PROTECTIONS_KEPT:
            _PROTECTIONS.pop(next(iter(_PROTECTIONS)))
        _PROTECTIONS[key] = found
    return found
