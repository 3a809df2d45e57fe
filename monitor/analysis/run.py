"""The weekly analysis as one call: load, detect, keep identities, compare transitions.

``run_analysis`` is what ``mspmon analyze`` and the scheduler call. It reads the
store, runs ``monitor.analysis.detect`` on the data as it stood on ``as_of``, records
the findings and a run row (failures included), and returns a report that the CLI
prints and later steps (digests, web) read.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Engine

from config import Settings
from detectors import lost_time_summary, metric_for
from detectors.attribution import diff_in_diff, worse_sign
from monitor import store
from monitor.analysis.aggregate import (
    ResponseTable,
    Segment,
    grouping_cube,
    load_responses,
    period_of_day,
)
from monitor.analysis.attribution import AttributionOptions, attribute
from monitor.analysis.cube import write_cubes
from monitor.analysis.detect import (
    AnalysisOptions,
    DetectedChange,
    Window,
    compare_windows,
    find_changes,
    recovery_period,
    transition_windows,
    window_totals,
)
from monitor.analysis.findings import record_findings
from monitor.periods import EPOCH
from monitor.scope import Scope
from monitor.store.db import session_scope
from monitor.store.models import AnalysisRun, Finding, Transition
from monitor.targets import JUDGE_PERIODS, Target

TRANSITION_METRICS = ("happiness", "lost_time", "volume")


@dataclass
class AnalysisReport:
    as_of: dt.date
    findings: list[dict[str, Any]] = field(default_factory=list)
    transitions: list[dict[str, Any]] = field(default_factory=list)
    responses: int = 0
    series_screened: int = 0
    series_detected: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"as_of": self.as_of.isoformat(), "findings": self.findings, "transitions": self.transitions}


def _transition_of(change: DetectedChange, transitions: list[Transition]) -> Transition | None:
    """The transition whose go-live week or observation window holds the change."""
    date = change.change.change_date.date()
    best = None
    for transition in transitions:
        start = transition.go_live - dt.timedelta(weeks=1)
        end = transition.go_live + dt.timedelta(weeks=transition.observation_weeks)
        if start <= date < end and Scope.of(transition.scope).overlaps(change.segment.as_dict()):
            if best is None or transition.go_live > best.go_live:
                best = transition
    return best


def _scope_of(change: DetectedChange, transitions: list[Transition]) -> tuple[str, dict[str, list[str]]] | None:
    transition = _transition_of(change, transitions)
    return None if transition is None else (transition.name, transition.scope)


def finding_dict(finding: Finding) -> dict[str, Any]:
    """A finding as ``analyze --json``, the digests and the API show it."""
    attribution = finding.attribution or {}
    label = finding.label
    return {
        "id": finding.id,
        "metric": finding.metric,
        "segment": finding.segment,
        "change_date": finding.change_date.isoformat(),
        "direction": finding.direction,
        "before": round(finding.before, 2),
        "after": round(finding.after, 2),
        "delta": round(finding.delta, 2),
        "ci_low": round(finding.ci_low, 2),
        "ci_high": round(finding.ci_high, 2),
        "n_before": finding.n_before,
        "n_after": finding.n_after,
        "p_value": finding.p_value,
        "recovered_on": None if finding.recovered_on is None else finding.recovered_on.isoformat(),
        "transition": finding.transition,
        "first_reported": finding.first_reported.isoformat(),
        "last_reported": finding.last_reported.isoformat(),
        "state": finding.state,
        "root": finding.root,
        "root_id": finding.root_id,
        "children": attribution.get("children", []),
        "scope": finding.scope,
        "explains": finding.explains,
        "overall_effect": attribution.get("overall_effect"),
        "impact": finding.impact,
        "segments": attribution.get("segments", []),
        "factors": attribution.get("factors", []),
        "suggestions": attribution.get("suggestions", []),
        "mix_rate": attribution.get("mix_rate"),
        "did": attribution.get("did"),
        "tree": attribution.get("tree"),
        "label": None if label is None else {
            "label": label.label, "author": label.author, "note": label.note,
            "created_at": label.created_at.isoformat(),
        },
    }


def run_analysis(engine: Engine, settings: Settings, as_of: dt.date, *, pairs: bool = True) -> AnalysisReport:
    """Analyse the data as it stood on ``as_of`` and record the findings."""
    started = time.perf_counter()
    started_at = dt.datetime.now(dt.UTC)
    report = AnalysisReport(as_of)
    # A finding names its segment and n: it needs the anonymity threshold on each side too.
    min_n = max(AnalysisOptions.min_n, settings.anonymity_min_responses)
    options = AnalysisOptions(min_n=min_n, anonymity_min_responses=settings.anonymity_min_responses, pairs=pairs)
    explain = AttributionOptions(
        anonymity_min_responses=settings.anonymity_min_responses,
        min_n=min_n,
        pairs=pairs,
        suggestions=settings.suggestions,
    )
    try:
        with engine.connect() as connection:
            table = load_responses(connection, period=settings.period, as_of=as_of)
        report.responses = len(table)
        result = find_changes(table, options) if len(table) else None
        with session_scope(engine) as session:
            transitions = store.list_transitions(session)
            detected = result.changes if result else []
            attributed = attribute(
                table, detected, explain, functools.partial(_scope_of, transitions=transitions)
            )
            names = {}
            for item in attributed.changes:
                transition = _transition_of(item, transitions)
                names[item.key] = None if transition is None else transition.name
            findings = record_findings(session, attributed.changes, as_of, names, attributed.roles)
            report.findings = [finding_dict(f) for f in _ordered(findings)]
            report.transitions = [_transition_report(table, t, as_of, options) for t in transitions]
            write_cubes(session, table, as_of)  # the web view's per-segment weekly figures
        if result:
            report.series_screened, report.series_detected = result.series_screened, result.series_detected
    except Exception as exc:
        _record_run(engine, as_of, "failed", report, started_at, f"{type(exc).__name__}: {exc}")
        raise
    report.seconds = time.perf_counter() - started
    _record_run(engine, as_of, "succeeded", report, started_at, "")
    return report


def _ordered(findings: list[Finding]) -> list[Finding]:
    """Roots first, largest impact first, each root followed by its echoes."""
    roots = sorted(
        (f for f in findings if f.root),
        key=lambda f: (-(f.impact or 0.0), len(f.segment), -abs(f.delta), f.metric, f.id),
    )
    echoes: dict[str | None, list[Finding]] = {}
    for finding in findings:
        if not finding.root:
            echoes.setdefault(finding.root_id, []).append(finding)
    ordered = []
    for root in roots:
        ordered.append(root)
        ordered.extend(sorted(echoes.pop(root.id, []), key=lambda f: (len(f.segment), -abs(f.delta), f.id)))
    return ordered + [f for rest in echoes.values() for f in rest]


def _record_run(
    engine: Engine, as_of: dt.date, status: str, report: AnalysisReport, started_at: dt.datetime, message: str
) -> None:
    with session_scope(engine) as session:
        session.add(
            AnalysisRun(
                as_of=as_of,
                status=status,
                findings=len(report.findings),
                series=report.series_screened,
                message=message,
                started_at=started_at,
                finished_at=dt.datetime.now(dt.UTC),
                report=report.as_dict() if status == "succeeded" else None,
            )
        )


def _transition_report(
    everyone: ResponseTable, transition: Transition, as_of: dt.date, options: AnalysisOptions
) -> dict[str, Any]:
    """Before/after per metric, overall in scope and per single-dimension segment."""
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
    if not len(table):
        entry["targets"] = [_unjudgeable(Target.from_dict(t), transition, as_of) for t in transition.targets]
        return entry
    _, overall = grouping_cube(table, ())
    series = overall[0]
    baseline = next((w for w in windows if w.name == "baseline"), None)
    live_period = next((w.first for w in windows if w.name == "since_go_live"), None)
    for name in TRANSITION_METRICS:
        metric = metric_for(name)
        compared = compare_windows(metric, table, series, windows, options.confidence)
        if baseline is not None and live_period is not None:
            recovered = recovery_period(metric, table, series, baseline, live_period, options.confidence)
            compared["recovered_from"] = None if recovered is None else recovered.isoformat()
        entry["metrics"][name] = compared
    if transition.scope:
        _add_diff_in_diff(entry["metrics"], everyone.outside(transition.scope), table, series, windows, options)
    entry["lost_time_distribution"] = _lost_time_distribution(table, windows, options)
    entry["segments"] = _segment_comparisons(table, windows, options)
    entry["targets"] = [
        _judge_target(Target.from_dict(t), table, transition, as_of) for t in transition.targets
    ]
    return entry


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
    rows = []
    for name in table.labels:
        segments, cube = grouping_cube(table, (name,))
        counts = [
            [window_totals(table, series, window)["n"] for window in wanted] for series in cube
        ]
        small = [min(pair) < options.anonymity_min_responses for pair in counts]
        named = [(segment.as_dict(), series) for segment, series, hide in zip(segments, cube, small, strict=True) if not hide]
        if any(small):
            named.append(({name: "other"}, cube[np.array(small)].sum(axis=0)))
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
    last = min(table.last_period, period_of_day((deadline - EPOCH).days - 1, table.period))
    first = max(last - JUDGE_PERIODS + 1, table.first_period)
    estimate = metric_for(target.metric).estimate(window_totals(table, series, Window("target", first, last)))
    meets = bool(np.isfinite(estimate.value) and target.met_by(estimate.value))
    return {
        "target": target.text(),
        "deadline": deadline.isoformat(),
        "status": "met" if meets else ("not_met" if as_of >= deadline else "at_risk"),
        "value": None if not np.isfinite(estimate.value) else round(estimate.value, 2),
        "ci": [round(estimate.ci_low, 2), round(estimate.ci_high, 2)] if np.isfinite(estimate.ci_low) else None,
        "n": estimate.n,
        "window": [table.period_start(first).isoformat(), table.period_start(last).isoformat()],
    }
