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

from sqlalchemy import Engine

from config import Settings
from monitor import store
from monitor.analysis.aggregate import (
    load_responses,
)
from monitor.analysis.attribution import AttributionOptions, attribute
from monitor.analysis.cube import write_cubes
from monitor.analysis.detect import (
    AnalysisOptions,
    DetectedChange,
    find_changes,
)
from monitor.analysis.finding_view import FindingView
from monitor.analysis.findings import record_findings
from monitor.analysis.transitions import transition_report
from monitor.scope import Scope
from monitor.store.db import session_scope
from monitor.store.models import AnalysisRun, Finding, Transition


@dataclass
class AnalysisReport:
    as_of: dt.date
    findings: list[FindingView] = field(default_factory=list)  # roots first, each followed by its echoes
    transitions: list[dict[str, Any]] = field(default_factory=list)
    responses: int = 0
    series_screened: int = 0
    series_detected: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "findings": [f.as_dict() for f in self.findings],
            "transitions": self.transitions,
        }


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
        factor_polarity=settings.factor_polarity,
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
            report.findings = [FindingView.of(f) for f in _ordered(findings)]
            report.transitions = [transition_report(table, t, as_of, options) for t in transitions]
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
