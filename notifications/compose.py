"""Build a subscription's digest content from what the analysis stored.

Only reads: the latest successful analysis run's report, the findings with their
lifecycle (state, labels, silences), the responses for charts and the "now"
figures, and the outbox's record of what this subscription was already told.

Which findings a digest shows:

* root findings only; an echo is folded into its root ("and 3 related");
* not labelled ``false_alarm`` or ``new_normal``; ``expected`` ones are shown as such;
* not silenced (a silence on the finding, its root, or a segment containing it);
* never one, nor a named segment, with fewer than ``anonymity_min_responses``
  responses on either side;
* new to this subscription (never announced to it) and still open: in full;
  announced before and still open: one line, "still open, week N";
  recovered and not yet announced as recovered, if this subscription heard of it
  or it recovered in the last four weeks: once, in "recovered";
  ended (its segment stopped answering): never "new" or "still open"; once, in
  "ended", if this subscription heard of it.

Which findings a subscription's scope takes in:

* transitions: the finding's transition is one of them, or it has none and it
  started after one of their go-lives inside that transition's scope;
* a segment filter (``assignment_group=MSP-Europe-L1``): the web view's rule,
  ``monitor.scope.finding_in_scope``: a finding whose own segment lies inside the
  filter. An echo inside the slice whose root is outside it stands on its own (as
  the web view lists it for a viewer with that scope); "and N related" counts the
  echoes inside the slice only.
* metrics (``happiness``, ``lost_time``, ``volume``, ``factors``, ``factor:<name>``)
  and a minimum severity (``severity_of``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from config import Settings
from detectors import metric_for
from monitor import store
from monitor.analysis.aggregate import (
    ResponseTable,
    as_frame,
    grouping_cube,
    load_responses,
)
from monitor.analysis.cube import CubeStore, CubeUnavailable
from monitor.analysis.finding_view import SHOWN_ALIASES, FindingView
from monitor.analysis.health import data_health
from monitor.analysis.lifecycle import active_silences, silence_for
from monitor.analysis.transitions import (
    TransitionStatus,
    protection_of,
    transition_figures,
    transition_status,
    worse_beyond_doubt,
)
from monitor.scope import Scope, finding_in_scope, segment_label
from monitor.store.app_models import Digest, DigestState, Severity, Subscription
from monitor.store.models import Finding, FindingState, Label, Transition
from notifications.channels.base import InlineImage
from notifications.charts import ChartSeries, transition_chart
from notifications.content import (
    DigestContent,
    Disconnect,
    FactorShift,
    FindingLine,
    Interval,
    MetricHeadline,
    NamedSegment,
    NewFinding,
    Reading,
    TransitionHeadline,
)
from notifications.subscriptions import SEVERITY_RATIO

HIDDEN_LABELS = {Label.FALSE_ALARM, Label.NEW_NORMAL}
DETAILED_NEW = 5  # new findings shown in full; the rest get a line each
CHART_WEEKS_BEFORE = 26  # weeks of history before go-live in a chart
RECENT_RECOVERY_DAYS = 28
HEADLINE_METRICS = ("happiness", "lost_time")
TOLD_STATES = (DigestState.SENDING, DigestState.SENT, DigestState.PARTIAL)


def severity_of(metric: str, before: float, delta: float) -> float:
    """How many times the metric's minimum effect the change is (1.0 = just reportable)."""
    definition = metric_for(metric)
    effect = abs(delta) / abs(before) if definition.relative_effect and before else abs(delta)
    return effect / definition.min_effect


class DigestSource:
    """What every subscription's digest reads, loaded once per sending run."""

    def __init__(self, session: Session, settings: Settings, today: dt.date) -> None:
        self.settings = settings
        run = store.latest_run(session)
        self.report: dict[str, Any] | None = run.report if run is not None else None
        self.as_of = dt.date.fromisoformat(self.report["as_of"]) if self.report else None
        self.transitions = {t.name: t for t in store.list_transitions(session)}
        findings = store.current_findings(session)
        self.echoes: dict[str, list[Finding]] = {}
        for finding in findings:
            if not finding.root and finding.root_id:
                self.echoes.setdefault(finding.root_id, []).append(finding)
        silences = active_silences(session, today)
        # Roots and echoes alike: for a slice, an echo whose root lies outside it is its finding.
        self.findings = [f for f in findings if self._visible(f, silences)]
        self._session = session
        self._table: ResponseTable | None = None
        # The analysis's kept cubes: the same per-segment series the web view reads.
        self.cubes = CubeStore().current(session) if self.report else None

    def _visible(self, finding: Finding, silences: list) -> bool:  # type: ignore[type-arg]
        label = finding.label
        return (
            (label is None or label.label not in HIDDEN_LABELS)
            and silence_for(finding, silences) is None
            and min(finding.n_before, finding.n_after) >= self.settings.anonymity_min_responses
        )

    def health(self, scope: dict[str, list[str]]) -> tuple[str, ...]:
        if self.as_of is None:
            return ()
        items = data_health(self._session, self.as_of, min_responses=self.settings.anonymity_min_responses, scope=scope)
        return tuple(item.message for item in items)

    def series(self, scope: Scope) -> tuple[ResponseTable, np.ndarray] | None:
        """Per-period statistics of a slice: from the kept cubes, or from the responses
        (read once per sending run) when the slice is deeper than the cubes go."""
        if self.cubes is not None:
            try:
                _, stats = self.cubes.series(scope.conditions())
                return (self.cubes.table, stats[0]) if len(stats) else None
            except CubeUnavailable:
                pass
        if self.as_of is None:
            return None
        if self._table is None:
            self._table = load_responses(self._session.connection(), period="week", as_of=self.as_of)
        table = self._table.within(scope.as_dict())
        if not len(table):
            return None
        _, (series,) = grouping_cube(table, ())
        return table, series


def told(session: Session, subscription_id: int, period: str) -> tuple[set[str], set[str]]:
    """Finding ids this subscription was told about before ``period``: (open, recovered)."""
    announced: set[str] = set()
    recovered: set[str] = set()
    for sections in session.scalars(
        select(Digest.findings).where(
            Digest.subscription_id == subscription_id, Digest.period != period, Digest.state.in_(TOLD_STATES)
        )
    ):
        announced.update(sections.get("new", []), sections.get("ongoing", []))
        recovered.update(sections.get("recovered", []), sections.get("ended", []))
    return announced, recovered


def compose(
    source: DigestSource, subscription: Subscription, period: str, history: tuple[set[str], set[str]]
) -> DigestContent:
    """The digest of ``subscription`` for ``period`` (see the module docstring for the rules)."""
    base = source.settings.base_url.rstrip("/")
    transitions = _transitions_in_scope(source, subscription)
    scope = Scope.of(subscription.segments)
    inside = [f for f in source.findings if _in_scope(source, f, subscription, transitions)]
    ids = {f.id for f in inside}
    # Echoes fold into their root when it is in the slice too (the web view nests them the same way).
    findings = [f for f in inside if f.root or f.root_id not in ids]
    related = {f.id: sum(1 for e in source.echoes.get(f.id, []) if finding_in_scope(scope, e.segment)) for f in findings}
    announced, recovered_before = history
    new, ongoing, recovered, ended = [], [], [], []
    for finding in findings:
        is_recovered = finding.recovered_on is not None or finding.state == FindingState.RECOVERED
        if finding.state == FindingState.ENDED or finding.ended_on is not None:
            # Closed: its segment stopped answering. Said once to those who heard of it.
            if finding.id in announced and finding.id not in recovered_before:
                ended.append(finding)
        elif not is_recovered:
            (ongoing if finding.id in announced else new).append(finding)
        elif finding.id not in recovered_before and (
            finding.id in announced or _recent_recovery(finding, source.as_of)
        ):
            recovered.append(finding)
    new.sort(key=lambda f: (-(f.impact or 0.0), -severity_of(f.metric, f.before, f.delta), f.id))
    ongoing.sort(key=lambda f: (f.change_date, f.id))
    return DigestContent(
        subscription_id=subscription.id,
        subscription=subscription.name,
        period=period,
        as_of=source.as_of,
        transitions=tuple(_headline(source, t, subscription, findings) for t in transitions),
        new=_detailed(source, new[:DETAILED_NEW], base, related),
        more_new=tuple(_line(source, f, base) for f in new[DETAILED_NEW:]),
        ongoing=tuple(_line(source, f, base) for f in ongoing),
        recovered=tuple(_line(source, f, base) for f in recovered),
        ended=tuple(_line(source, f, base) for f in ended),
        health=source.health(subscription.segments),
        manage_link=f"{base}/subscriptions/{subscription.id}",
        web_link=base,
        disconnects=disconnects(new + ongoing, base),
        finding_ids={
            "new": [f.id for f in new],
            "ongoing": [f.id for f in ongoing],
            "recovered": [f.id for f in recovered],
            "ended": [f.id for f in ended],
        },
    )


def _recent_recovery(finding: Finding, as_of: dt.date | None) -> bool:
    return (
        as_of is not None
        and finding.recovered_on is not None
        and (as_of - finding.recovered_on).days <= RECENT_RECOVERY_DAYS
    )


def _transitions_in_scope(source: DigestSource, subscription: Subscription) -> list[Transition]:
    names = subscription.transitions or list(source.transitions)
    return [source.transitions[name] for name in names if name in source.transitions]


def _in_transition(finding: Finding, transition: Transition) -> bool:
    if finding.transition is not None:
        return finding.transition == transition.name
    return finding.change_date >= transition.go_live - dt.timedelta(weeks=1) and Scope.of(transition.scope).overlaps(
        finding.segment
    )


def _metric_wanted(metric: str, wanted: Iterable[str]) -> bool:
    wanted = list(wanted)
    return not wanted or metric in wanted or ("factors" in wanted and metric.startswith("factor:"))


def _in_scope(source: DigestSource, finding: Finding, subscription: Subscription, transitions: list[Transition]) -> bool:
    if subscription.transitions and not any(_in_transition(finding, t) for t in transitions):
        return False
    if not _metric_wanted(finding.metric, subscription.metrics):
        return False
    if severity_of(finding.metric, finding.before, finding.delta) < SEVERITY_RATIO[Severity(subscription.min_severity)]:
        return False
    return finding_in_scope(Scope.of(subscription.segments), finding.segment)


def _interval(entry: Mapping[str, Any], side: str) -> Interval:
    low, high = entry[f"{side}_ci"]
    return Interval(entry[side], low, high, entry[f"n_{side}"])


def _headline(
    source: DigestSource, transition: Transition, subscription: Subscription, findings: list[Finding]
) -> TransitionHeadline:
    """Baseline against the last four weeks per metric, the verdict, targets and the chart."""
    report = next((t for t in (source.report or {}).get("transitions", []) if t["name"] == transition.name), {})
    weeks_since = report.get("weeks_since_go_live", 0)
    scope = Scope.of(transition.scope).intersect(Scope.of(subscription.segments))
    # Through the transition's disclosure pattern, the web view's: a slice it does not
    # show (too few responses, hidden to protect another, or deeper than the cubes) gets no figures.
    guard = None if source.cubes is None else protection_of(source.cubes, transition, source.settings.anonymity_min_responses)
    view = source.series(scope) if guard is not None and guard.shown(scope.conditions()) else None
    metrics: list[MetricHeadline] = []
    chart = None
    status = TransitionStatus.NO_DATA
    if view is not None and guard is not None:
        table, series = view
        # The same figures and status as the web view's page for this transition and slice.
        figures = transition_figures(table, series, transition, source.settings.anonymity_min_responses)
        allowed = guard.window_names(scope.conditions(), len(series))
        for windows in figures["metrics"].values():
            for name in [n for n, value in windows.items() if isinstance(value, dict) and n not in allowed]:
                windows.pop(name)
        open_roots = [f for f in findings if f.recovered_on is None and _in_transition(f, transition)]
        status = transition_status(figures["metrics"], open_findings=len(open_roots))
        for name in HEADLINE_METRICS:
            recent = figures["metrics"].get(name, {}).get("recent")
            if recent is not None:
                metrics.append(_metric_headline(source, name, recent, transition, weeks_since))
        chart = _chart(source, transition, subscription, table, series, findings, metrics, guard.weeks(scope.conditions(), len(series)))
    targets = tuple(
        f"{t['target']} by {t['deadline']}: {t['status'].replace('_', ' ')}"
        + (f" ({t['value']})" if t.get("value") is not None else "")
        for t in report.get("targets", [])
    )
    on_track = status.on_track and not any(t.get("status") == "not_met" for t in report.get("targets", []))
    return TransitionHeadline(
        name=transition.name,
        go_live=transition.go_live,
        weeks_since_go_live=weeks_since,
        slice_label=scope.label(),
        status=status,
        metrics=tuple(metrics),
        targets=targets,
        on_track=on_track,
        chart=chart,
    )


def _metric_headline(
    source: DigestSource,
    name: str,
    compared: dict[str, Any],
    transition: Transition,
    weeks_since: int,
) -> MetricHeadline:
    minimum = source.settings.anonymity_min_responses
    before = _interval(compared, "before") if compared["n_before"] >= minimum else None
    now = _interval(compared, "after") if compared["n_after"] >= minimum else None
    delta = None
    if before is not None and now is not None:
        delta = Interval(compared["delta"], compared["ci_low"], compared["ci_high"], compared["n_after"])
    expected_by = transition.observation_weeks
    worse = worse_beyond_doubt(compared) and before is not None and now is not None
    if now is None:
        verdict, on_track = "too few responses lately to show", True
    elif before is None:
        verdict, on_track = "no baseline: too few responses before go-live", True
    elif not worse:
        verdict, on_track = "within or better than baseline", True
    elif weeks_since < expected_by:
        verdict, on_track = f"below baseline; recovery expected by week {expected_by}", True
    else:
        verdict, on_track = f"not back to baseline after {weeks_since} weeks (expected by week {expected_by})", False
    return MetricHeadline(name, before, now, delta, dt.date.fromisoformat(compared["from"]), verdict, on_track)


def _chart(
    source: DigestSource,
    transition: Transition,
    subscription: Subscription,
    table: ResponseTable,
    series: np.ndarray,
    findings: list[Finding],
    metrics: list[MetricHeadline],
    weeks: np.ndarray,
) -> InlineImage | None:
    """Weekly Happiness and lost time from half a year before go-live, weeks the disclosure pattern hides left out."""
    frame = as_frame(table, series)
    start = max(0, int(np.searchsorted(frame.index.date, transition.go_live - dt.timedelta(weeks=CHART_WEEKS_BEFORE))))
    frame = frame.iloc[start:]
    shown = weeks[start:]
    if frame.empty:
        return None
    values = {}
    for name in HEADLINE_METRICS:
        per_period = metric_for(name).per_period(frame)
        values[name] = np.where(shown & (per_period.n >= source.settings.anonymity_min_responses), per_period.values, np.nan)
    baselines = {m.metric: m.before.value for m in metrics if m.before is not None}
    changes = sorted(
        {(f.change_date, f.metric) for f in findings if f.metric in HEADLINE_METRICS and _in_transition(f, transition)}
    )
    title = f"{transition.name}: {Scope.of(transition.scope).intersect(Scope.of(subscription.segments)).label()}, weekly"
    png = transition_chart(
        ChartSeries(
            title=title,
            weeks=tuple(frame.index.date),
            happiness=values["happiness"],
            lost_time=values["lost_time"],
            happiness_baseline=baselines.get("happiness"),
            lost_time_baseline=baselines.get("lost_time"),
            go_live=transition.go_live,
            changes=tuple(changes),
        )
    )
    cid = f"chart-{subscription.id}-{sorted(source.transitions).index(transition.name)}@mspmon"
    return InlineImage(cid=cid, png=png, alt=f"{transition.name}: Happiness and lost time by week, go-live marked")


def _expected(finding: Finding) -> bool:
    label = finding.label
    return label is not None and label.label == Label.EXPECTED


def _line(source: DigestSource, finding: Finding, base: str) -> FindingLine:
    as_of = source.as_of or finding.last_reported
    return FindingLine(
        id=finding.id,
        metric=finding.metric,
        where=segment_label(finding.segment),
        since=finding.change_date,
        delta=finding.delta,
        weeks_open=max(1, (as_of - finding.change_date).days // 7),
        recovered_on=finding.recovered_on,
        expected=_expected(finding),
        link=f"{base}/findings/{finding.id}",
        ended_on=finding.ended_on,
        ended_reason=finding.ended_reason,
    )


def _detailed(source: DigestSource, findings: list[Finding], base: str, related: dict[str, int]) -> tuple[NewFinding, ...]:
    """New findings in full; a course correction already suggested above is not repeated."""
    said: set[str] = set()
    detailed = []
    for finding in findings:
        item = _new_finding(source, finding, base, related.get(finding.id, 0))
        fresh = tuple(text for text in item.suggestions if text not in said)
        said.update(fresh)
        detailed.append(dataclasses.replace(item, suggestions=fresh))
    return tuple(detailed)


def _new_finding(source: DigestSource, finding: Finding, base: str, related: int) -> NewFinding:
    minimum = source.settings.anonymity_min_responses
    view = FindingView.of(finding)
    explanation = (view.protected(minimum) or view).explanation  # _visible already kept out the small ones
    segments = tuple(
        NamedSegment(segment_label(item.segment), item.share, item.delta, item.n_after)
        for item in explanation.segments
        if min(item.n_before or 0, item.n_after or 0) >= minimum
        and not (item.segment == finding.segment and item.share is None)  # says nothing new
    )
    factors = tuple(
        FactorShift(item.factor, item.before_share, item.after_share) for item in explanation.factors if item.delta > 0
    )
    return NewFinding(
        id=finding.id,
        metric=finding.metric,
        # "service desk SD-Internal-DE x service Laptop (= DE x Laptop before go-live)":
        # the same respondents under the names readers knew before the MSP's.
        where=segment_label(finding.segment)
        + "".join(f" ({alias.text()})" for alias in explanation.aliases[:SHOWN_ALIASES])
        + ("" if explanation.first_named is None else f" (first reported as {segment_label(explanation.first_named)})"),
        scope=finding.scope,
        since=finding.change_date,
        before=finding.before,
        after=finding.after,
        delta=Interval(finding.delta, finding.ci_low, finding.ci_high, finding.n_after),
        n_before=finding.n_before,
        segments=segments,
        factors=factors,
        suggestions=explanation.suggestions,
        related=related,
        expected=_expected(finding),
        link=f"{base}/findings/{finding.id}",
    )


def _pair(values: Any) -> tuple[float, float] | None:
    if not values or len(values) != 2 or any(v is None for v in values):
        return None
    return (float(values[0]), float(values[1]))


def _note_reading(metric: str, note: Mapping[str, Any]) -> Reading | None:
    """A reading from a disconnect note (``monitor.analysis.it_notes``); None if incomplete."""
    if any(note.get(key) is None for key in ("before", "after", "delta", "n_before", "n_after")):
        return None
    ci = _pair(note.get("ci")) or (float("nan"), float("nan"))
    return Reading(metric, float(note["before"]), _pair(note.get("before_ci")), float(note["after"]),
                   _pair(note.get("after_ci")), Interval(float(note["delta"]), ci[0], ci[1], int(note["n_after"])))


def _finding_reading(finding: Finding) -> Reading:
    return Reading(finding.metric, finding.before, None, finding.after, None,
                   Interval(finding.delta, finding.ci_low, finding.ci_high, finding.n_after))


def disconnects(findings: Iterable[Finding], base: str) -> tuple[Disconnect, ...]:
    """Open findings where the SLA and experience disagree: Happiness findings whose
    SLA held (``notes.sla.status == "held"``), then SLA-met findings nobody felt
    (``notes.happiness.status == "not_felt"``). The notes were made with the same
    anonymity threshold as the findings (too few answers: no figures, no note)."""
    out: list[Disconnect] = []
    for finding in findings:
        notes = finding.notes or {}
        if finding.metric == "happiness" and (notes.get("sla") or {}).get("status") == "held":
            sla = _note_reading("sla_met", notes["sla"])
            if sla is not None:
                out.append(Disconnect("sla_held", finding.id, segment_label(finding.segment), finding.change_date,
                                      _finding_reading(finding), sla, f"{base}/findings/{finding.id}"))
        elif finding.metric == "sla_met" and (notes.get("happiness") or {}).get("status") == "not_felt":
            happiness = _note_reading("happiness", notes["happiness"])
            if happiness is not None:
                out.append(Disconnect("not_felt", finding.id, segment_label(finding.segment), finding.change_date,
                                      happiness, _finding_reading(finding), f"{base}/findings/{finding.id}"))
    out.sort(key=lambda d: (d.kind != "sla_held", d.since, d.id))
    return tuple(out)
