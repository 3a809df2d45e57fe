"""The weekly analysis as one call: load, detect, keep identities, compare transitions.

``run_analysis`` is what ``mspmon analyze`` and the scheduler call. It reads the
store, runs ``monitor.analysis.detect`` on the data as it stood on ``as_of``, records
the findings and a run row (failures included), and returns a report that the CLI
prints and later steps (digests, web) read.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select

from config import Settings
from detectors.it_metrics import is_it_metric
from monitor import store
from monitor.analysis.aggregate import (
    ResponseTable,
    Segment,
    history_periods,
    load_responses,
)
from monitor.analysis.attribution import AttributionOptions, attribute
from monitor.analysis.cube import write_cubes
from monitor.analysis.detect import (
    AnalysisOptions,
    DetectedChange,
    KnownDate,
    find_changes,
)
from monitor.analysis.finding_view import FindingView
from monitor.analysis.findings import known_findings, record_findings
from monitor.analysis.it_detect import TicketTable, find_it_changes, load_tickets
from monitor.analysis.it_notes import disconnect_notes
from monitor.analysis.transitions import transition_report
from monitor.analysis.voice import VoiceFlag, voice_flags
from monitor.periods import period_start
from monitor.scope import Scope
from monitor.store.db import session_scope
from monitor.store.models import AnalysisRun, Finding, FindingState, Transition
from monitor.targets import Target


@dataclass
class AnalysisReport:
    as_of: dt.date
    findings: list[FindingView] = field(default_factory=list)  # roots first, each followed by its echoes
    transitions: list[dict[str, Any]] = field(default_factory=list)
    responses: int = 0
    series_screened: int = 0
    series_detected: int = 0
    seconds: float = 0.0
    tickets: int = 0
    voice: list[VoiceFlag] = field(default_factory=list)  # response-rate and skew flags (data health reads them)

    def as_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "findings": [f.as_dict() for f in self.findings],
            "transitions": self.transitions,
            "voice": [flag.as_dict() for flag in self.voice],
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


def go_lives(transitions: list[Transition]) -> list[KnownDate]:
    """Each transition's go-live as a known change date: everyone, and each value its scope names."""
    known = []
    for transition in transitions:
        scoped = tuple(Segment.of({name: value}) for name, values in (transition.scope or {}).items() for value in values)
        known.append(KnownDate(transition.go_live, transition.name, kind="event", segments=(Segment(), *scoped)))
    return known


def last_responses(table: ResponseTable, segments: list[dict[str, str]]) -> dict[str, dt.date | None]:
    """Per segment key, the last day of the last period in which the segment had a response."""
    out: dict[str, dt.date | None] = {}
    for values in segments:
        segment = Segment.of(values)
        if segment.key() in out:
            continue
        periods = table.periods[table.of(segment)]
        out[segment.key()] = (
            None if not len(periods) else period_start(int(periods.max()), table.period) + _period_length(table)
        )
    return out


def _period_length(table: ResponseTable) -> dt.timedelta:
    return dt.timedelta(days=0 if table.period == "day" else 6)


def run_analysis(
    engine: Engine, settings: Settings, as_of: dt.date, *, pairs: bool = True, history_weeks: int | None = None
) -> AnalysisReport:
    """Analyse the data as it stood on ``as_of`` and record the findings.

    ``history_weeks``: how far back from ``as_of`` responses are analysed
    (default ``monitor.analysis.aggregate.DEFAULT_HISTORY_WEEKS``).
    """
    started = time.perf_counter()
    started_at = dt.datetime.now(dt.UTC)
    report = AnalysisReport(as_of)
    # A finding names its segment and n: it needs the anonymity threshold on each side too.
    min_n = max(AnalysisOptions.min_n, settings.anonymity_min_responses)
    options = AnalysisOptions(min_n=min_n, anonymity_min_responses=settings.anonymity_min_responses, pairs=pairs,
                              factor_polarity=settings.factor_polarity)
    explain = AttributionOptions(
        anonymity_min_responses=settings.anonymity_min_responses,
        min_n=min_n,
        pairs=pairs,
        suggestions=settings.suggestions,
        factor_polarity=settings.factor_polarity,
    )
    try:
        history = None if history_weeks is None else history_periods(settings.period, history_weeks)
        with engine.connect() as connection:
            table = load_responses(connection, period=settings.period, as_of=as_of, history=history)
            tickets = load_tickets(connection, period=settings.period, as_of=as_of, history=history)
            report.voice = voice_flags(
                connection, tickets, as_of, anonymity_min_responses=settings.anonymity_min_responses
            )
        report.responses, report.tickets = len(table), len(tickets)
        with session_scope(engine) as session:
            known = go_lives(store.list_transitions(session)) + known_findings(session, as_of)
        result = find_changes(table, options, known) if len(table) else None
        it_result = find_it_changes(tickets, options, known, dimensions=tuple(table.labels) or None)
        if result:
            explain = dataclasses.replace(explain, searched_series=result.series_screened,
                                          searched_periods=table.last_period - table.first_period + 1)
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
            open_segments = [
                f.segment
                for f in session.scalars(select(Finding).where(Finding.state.in_([FindingState.NEW, FindingState.ONGOING])))
            ]
            findings = record_findings(
                session,
                attributed.changes,
                as_of,
                names,
                attributed.roles,
                # Measured against the last week with any response, so a feed that
                # stopped altogether (data health reports it) ends nothing.
                last_response=last_responses(table, open_segments + [c.segment.as_dict() for c in attributed.changes])
                if len(table)
                else None,
                data_until=period_start(int(table.periods.max()), table.period) + _period_length(table)
                if len(table)
                else None,
                ends=lambda metric: not is_it_metric(metric),
            )
            for item in it_result.changes:
                transition = _transition_of(item, transitions)
                names[item.key] = None if transition is None else transition.name
            findings += record_findings(
                session,
                it_result.changes,
                as_of,
                names,
                last_response=_last_tickets(tickets, session) if len(tickets) else None,
                data_until=period_start(tickets.last_period, tickets.period) + _period_length(table)
                if len(tickets)
                else None,
                ends=is_it_metric,
            )
            _add_notes(findings, attributed.changes + it_result.changes, table, tickets, transitions, names, report.voice, options)
            report.findings = [FindingView.of(f) for f in _ordered(findings)]
            report.transitions = [transition_report(table, t, as_of, options, tickets=tickets) for t in transitions]
            write_cubes(session, table, as_of)  # the web view's per-segment weekly figures
        if result:
            report.series_screened, report.series_detected = result.series_screened, result.series_detected
        report.series_screened += it_result.series_screened
        report.series_detected += it_result.series_detected
    except Exception as exc:
        _record_run(engine, as_of, "failed", report, started_at, f"{type(exc).__name__}: {exc}")
        raise
    report.seconds = time.perf_counter() - started
    _record_run(engine, as_of, "succeeded", report, started_at, "")
    return report


def _last_tickets(tickets: TicketTable, session: Any) -> dict[str, dt.date | None]:
    """Per segment key of the open IT findings, the last day of the last period with a resolved ticket."""
    out: dict[str, dt.date | None] = {}
    query = select(Finding).where(Finding.state.in_([FindingState.NEW, FindingState.ONGOING, FindingState.ENDED]))
    for finding in session.scalars(query):
        if not is_it_metric(finding.metric) or finding.segment_key in out:
            continue
        periods = tickets.periods[tickets.mask({k: [v] for k, v in finding.segment.items()})]
        out[finding.segment_key] = (
            None if not len(periods) else period_start(int(periods.max()), tickets.period) + dt.timedelta(days=0 if tickets.period == "day" else 6)
        )
    return out


def _add_notes(
    findings: list[Finding],
    changes: list[DetectedChange],
    table: ResponseTable,
    tickets: TicketTable,
    transitions: list[Transition],
    names: dict[Any, str | None],
    voice: list[VoiceFlag],
    options: AnalysisOptions,
) -> None:
    """The disconnect notes (``it_notes``) and the voice flags covering each finding's segment."""
    sla_targets = {
        t.name: [target.value for target in map(Target.from_dict, t.targets) if target.metric == "sla_met" and target.op == ">="]
        for t in transitions
    }
    by_key = disconnect_notes(
        changes,
        table,
        tickets,
        min_n=options.min_n,
        anonymity_min_responses=options.anonymity_min_responses,
        sla_targets=sla_targets,
        transitions=names,
    )
    for finding in findings:
        notes = dict(by_key.get((finding.metric, finding.segment_key, finding.change_date), {}))
        if not is_it_metric(finding.metric):
            flags = [flag for flag in voice if flag.covers(finding.segment)]
            if flags:
                notes["voice"] = [{"kind": f.kind, "segment": f.segment, "message": f.message} for f in flags]
        finding.notes = notes or None


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
