"""What a page or an API answer needs, for the signed-in user: one function per view.

Pages render these dicts with templates and the API returns them as JSON, so both
always show the same figures. Findings and the report are read from the store;
transition figures from the cubes (``web.figures``), limited to the user's scope.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any, NamedTuple

from flask import abort, url_for
from sqlalchemy import func, select

from monitor import store
from monitor.analysis.cube import CubeSet
from monitor.analysis.finding_view import FindingView
from monitor.analysis.lifecycle import active_silences, silence_for
from monitor.analysis.transitions import transition_status
from monitor.store.models import (
    AnalysisRun,
    Finding,
    FindingLabel,
    FindingState,
    ImportRun,
    Silence,
    Transition,
)
from web import figures, it_figures, params
from web.db import get_cubes, get_db


def transition_ref(transition: Transition) -> dict[str, Any]:
    return {
        "id": transition.id,
        "name": transition.name,
        "go_live": transition.go_live.isoformat(),
        "scope": transition.scope,
        "description": transition.description,
    }


def freshness(cubes: CubeSet | None) -> dict[str, Any]:
    """How current the figures are: the analysis date, its last complete week, the last import."""
    session = get_db()
    run = session.execute(  # the columns only: the run's report is large
        select(AnalysisRun.as_of, AnalysisRun.finished_at)
        .where(AnalysisRun.status == "succeeded")
        .order_by(AnalysisRun.id.desc())
        .limit(1)
    ).first()
    last_import = session.scalar(select(func.max(ImportRun.finished_at)).where(ImportRun.status.in_(("succeeded", "partial"))))
    return {
        "analysed_as_of": None if run is None else run.as_of.isoformat(),
        "analysed_at": None if run is None else run.finished_at.isoformat(timespec="minutes"),
        "last_week": None if cubes is None else cubes.table.period_start(cubes.last_period).isoformat(),
        "last_import_at": None if last_import is None else last_import.isoformat(timespec="minutes"),
    }


def _silences() -> list[Silence]:
    return active_silences(get_db(), dt.date.today())


class _Ref(NamedTuple):
    """What ``silence_for`` looks at, for a finding known by its stored dict."""

    id: str
    root_id: str | None
    segment: dict[str, str]


def _base_entry(finding: Finding, k: int) -> dict[str, Any] | None:
    """The finding as the analysis reported it, through the disclosure rules (None: not shown)."""
    entry = FindingView.of(finding).as_dict(minimum=k)
    if entry is None:
        return None
    entry.setdefault("state", finding.state)
    entry.setdefault("root", finding.root)
    entry.setdefault("root_id", finding.root_id)
    entry.setdefault("last_reported", finding.last_reported.isoformat())
    return entry


def _bases() -> dict[str, dict[str, Any]]:
    """Every current finding by id. Findings change only when an analysis runs, which also
    replaces the cubes, so the list is memoised with them (labels and silences,
    which change any time, are added per request)."""
    k = params.anonymity()

    def load() -> dict[str, dict[str, Any]]:
        # The latest run's findings: older ones stay reachable by id (finding_detail).
        entries = {f.id: _base_entry(f, k) for f in store.current_findings(get_db())}
        return {key: entry for key, entry in entries.items() if entry is not None}

    cubes = get_cubes()
    return load() if cubes is None else figures.memoised(cubes, ("findings", k), load)


def _latest_labels() -> dict[str, dict[str, Any]]:
    labels: dict[str, dict[str, Any]] = {}
    for row in get_db().scalars(select(FindingLabel).order_by(FindingLabel.created_at, FindingLabel.id)):
        labels[row.finding_id] = _label_dict(row)
    return labels


def _label_dict(row: FindingLabel) -> dict[str, Any]:
    return {"label": row.label, "author": row.author, "note": row.note, "created_at": row.created_at.isoformat(timespec="minutes")}


def _with_state(base: dict[str, Any], labels: dict[str, dict[str, Any]], silences: list[Silence]) -> dict[str, Any]:
    """A finding's stored dict plus its latest label and the silence in force, if any."""
    silence = silence_for(_Ref(base["id"], base.get("root_id"), base["segment"]), silences)  # type: ignore[arg-type]
    return {
        **base,
        "label": labels.get(base["id"]),
        "silenced": None if silence is None else {
            "until": silence.until.isoformat(), "reason": silence.reason, "author": silence.author, "segment": silence.segment,
        },
    }


def findings(
    *, transition: str | None = None, state: str | None = None, metric: str | None = None, since: dt.date | None = None
) -> list[dict[str, Any]]:
    """Visible findings, roots first (open before recovered, largest first), each followed by its echoes."""
    wanted = [
        b for b in _bases().values()
        if (transition is None or b["transition"] == transition)
        and (state is None or b["state"] == state)
        and (metric is None or b["metric"] == metric)
        and (since is None or b["change_date"] >= since.isoformat())
        and params.visible(b["segment"])
    ]
    labels, silences = _latest_labels(), _silences()
    ids = {b["id"] for b in wanted}

    def is_root(b: dict[str, Any]) -> bool:
        return bool(b["root"]) or b["root_id"] not in ids

    echoes: dict[str, list[dict[str, Any]]] = {}
    for b in wanted:
        if not is_root(b):
            echoes.setdefault(b["root_id"], []).append(b)

    def order(b: dict[str, Any]) -> tuple[Any, ...]:
        closed = b["recovered_on"] is not None or b["state"] == FindingState.ENDED
        return (closed, len(b["segment"]), -abs(b["delta"]), b["id"])

    result = []
    for root in sorted(filter(is_root, wanted), key=order):
        entry = _with_state(root, labels, silences)
        entry["echoes"] = [_with_state(e, labels, silences) for e in sorted(echoes.get(root["id"], []), key=order)]
        result.append(entry)
    return result


def open_roots(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Root findings still open: not recovered, not ended (the segment stopped answering), not silenced."""
    closed = (FindingState.RECOVERED, FindingState.ENDED)
    return [e for e in entries if not e["recovered_on"] and e.get("state") not in closed and not e.get("ended_on") and not e["silenced"]]


def transition_summary(cubes: CubeSet | None, transition: Transition) -> dict[str, Any]:
    """One transition for the overview: status, Happiness and lost time before -> now, open root findings."""
    entry = transition_ref(transition)
    entry["weeks_since_go_live"] = (dt.date.today() - transition.go_live).days // 7
    if cubes is None:
        entry.update(status="no_data", metrics={}, trend=[])
    else:
        conditions = figures.conditions_for(transition.scope, params.user_scope(), {})
        entry.update(figures.summary(cubes, transition, conditions, params.anonymity()))
        entry["trend"] = figures.trend(cubes, transition, conditions, "happiness", params.anonymity())
        entry["weeks_since_go_live"] = (cubes.as_of - transition.go_live).days // 7
    still_open = open_roots(findings(transition=transition.name))
    entry["open_findings"] = len(still_open)
    entry["top_finding"] = still_open[0] if still_open else None
    entry["status"] = transition_status(entry["metrics"], open_findings=len(still_open))
    return entry


def overview() -> dict[str, Any]:
    cubes = get_cubes()
    transitions = store.list_transitions(get_db())
    return {
        "freshness": freshness(cubes),
        "transitions": [transition_summary(cubes, t) for t in transitions],
    }


def _report_entry(cubes: CubeSet, transition: Transition) -> dict[str, Any] | None:
    """The transition's entry in the latest run's report, read once per analysis."""

    def load() -> dict[str, Any] | None:
        run = store.latest_run(get_db())
        if run is None or not run.report:
            return None
        return next((t for t in run.report.get("transitions", []) if t.get("name") == transition.name), None)

    return figures.memoised(cubes, ("report", transition.name), load)


def transition_detail(transition: Transition, metric: str) -> dict[str, Any]:
    """The transition page: summary, weekly series of ``metric``, targets, findings."""
    cubes = params.require_cubes()
    entry = transition_summary(cubes, transition)
    conditions = figures.conditions_for(transition.scope, params.user_scope(), {})
    entry["metric"] = metric
    entry["weekly"] = figures.weekly(cubes, transition, conditions, metric, params.anonymity())
    # Targets and the lost-time median need raw answers: the report has them for
    # the whole transition, which a scoped viewer must not see.
    report = _report_entry(cubes, transition) if not params.user_scope() else None
    entry["targets"] = [] if report is None else report.get("targets", [])
    entry["lost_time_distribution"] = {} if report is None else report.get("lost_time_distribution", {})
    entry["findings"] = findings(transition=transition.name)
    # Changes of everyone's figures in this metric, marked on the chart.
    entry["changes"] = [
        {"date": f["change_date"], "title": f"Detected change {f['change_date']}: {f['delta']:+.1f}", "href": url_for("findings.show", finding_id=f["id"])}
        for root in entry["findings"]
        for f in (root, *root["echoes"])
        if f["metric"] == metric and not f["segment"]
    ]
    entry["freshness"] = freshness(cubes)
    entry["dimensions"] = deeper_dimensions(cubes, conditions)
    entry["drill"] = None
    if entry["status"] != "no_data":
        by = figures.best_dimension(cubes, transition, conditions, entry["dimensions"], metric, params.anonymity())
        entry["drill"] = None if by is None else figures.drill(cubes, transition, conditions, by, metric, params.anonymity())
    return entry


def deeper_dimensions(cubes: CubeSet, conditions: figures.Conditions) -> list[str]:
    """Dimensions a view can still be split by: the analysis keeps cubes of up to two."""
    return [
        name for name in cubes.dimensions
        if name not in conditions and frozenset([*conditions, name]) in cubes.groupings
    ]


def _parent_share(cubes: CubeSet, transition: Transition, filters: dict[str, str], metric: str) -> dict[str, Any] | None:
    """The segment's share of the change one level up (the view without its last filter)."""
    *above, (name, value) = filters.items()
    parent = dict(above)
    conditions = figures.conditions_for(transition.scope, params.user_scope(), parent)
    try:
        table = figures.drill(cubes, transition, conditions, name, metric, params.anonymity())
    except LookupError:
        return None
    row = next((r for r in table["rows"] if r["segment"] == {name: value}), None)
    return None if row is None else {"share": row["share"], "of": parent}


def segment_view(
    transition: Transition, filters: dict[str, str], by: str | None, by2: str | None, metric: str
) -> dict[str, Any]:
    """The drill-down: the filtered segment's figures, a table by ``by``, a heatmap with ``by2``."""
    cubes = params.require_cubes()
    k = params.anonymity()
    conditions = figures.conditions_for(transition.scope, params.user_scope(), filters)
    view: dict[str, Any] = {"transition": transition_ref(transition), "filters": filters, "metric": metric, "by": by, "by2": by2}
    if any(not values for values in conditions.values()):
        raise figures.NotShown()
    view["dimensions"] = deeper_dimensions(cubes, conditions)
    view["segment"] = figures.segment_total(cubes, transition, conditions, metric, k)
    view["parent_share"] = _parent_share(cubes, transition, filters, metric) if filters else None
    if by is None:
        # No choice made: start where the change is most concentrated.
        by = view["by"] = figures.best_dimension(cubes, transition, conditions, view["dimensions"], metric, k)
    elif by not in view["dimensions"]:
        raise figures.NotShown(f"{by} cannot split this view further: pick one of {', '.join(view['dimensions']) or 'none'}")
    view["drill"] = None if by is None else figures.drill(cubes, transition, conditions, by, metric, k)
    view["pair_dimensions"] = [] if by is None else [
        name for name in view["dimensions"] if name != by and frozenset([*conditions, by, name]) in cubes.groupings
    ]
    if by2 is not None and by2 not in view["pair_dimensions"]:
        raise figures.NotShown(f"no heatmap of {by} by {by2} here: pick one of {', '.join(view['pair_dimensions']) or 'none'}")
    view["heatmap"] = None if by is None or by2 is None else figures.heatmap(cubes, transition, conditions, by, by2, metric, k)
    view["factors"] = figures.factor_shifts(cubes, transition, conditions, k) if filters else []
    view["weekly"] = figures.weekly(cubes, transition, conditions, metric, k) if filters else []
    # Roots and echoes alike: an echo in this segment is news here even when its root lies elsewhere.
    everything = [item for root in findings(transition=transition.name) for item in (root, *root["echoes"])]
    view["findings"] = [
        {**item, "echoes": []} for item in everything if filters and filters.items() <= item["segment"].items()
    ]
    return view


def finding_detail(finding: Finding) -> dict[str, Any]:
    """One finding with its root or echoes, label history, and factor shifts.

    Factor shifts come from the attribution when it has them; otherwise from the
    cubes, for the finding's segment before and after its transition's go-live.
    """
    session = get_db()
    bases, labels, silences = _bases(), _latest_labels(), _silences()
    base = bases.get(finding.id) or _base_entry(finding, params.anonymity())
    if base is None:  # the same answer as for an id that does not exist
        abort(404, description=f"no finding with id {finding.id!r}")
    entry = _with_state(base, labels, silences)
    root = bases.get(finding.root_id or "")
    entry["root_finding"] = None if root is None or not params.visible(root["segment"]) else _with_state(root, labels, silences)
    # Echoes of the same run: an older run may have folded other changes under it.
    entry["echoes"] = [
        _with_state(b, labels, silences)
        for b in bases.values()
        if b["root_id"] == finding.id and b["last_reported"] == entry["last_reported"] and params.visible(b["segment"])
    ]
    entry["history"] = [_label_dict(item) for item in reversed(finding.labels)]
    transition = store.find_transition(session, finding.transition) if finding.transition else None
    entry["transition_ref"] = None if transition is None else transition_ref(transition)
    cubes = get_cubes()
    if not entry.get("factors") and transition is not None and cubes is not None:
        conditions = figures.conditions_for(transition.scope, params.user_scope(), finding.segment)
        try:
            entry["factors"] = figures.factor_shifts(cubes, transition, conditions, params.anonymity())
            entry["factors_source"] = "go_live"
        except LookupError:
            entry["factors"] = []
    return entry


def it_view(transition: Transition, filters: dict[str, str]) -> dict[str, Any] | None:
    """IT metrics beside the experience (issue 12): weekly Happiness and SLA met, the
    response rate, and (on the whole transition) the report's before/after table.
    None when no ticket falls in the view. See ``web.it_figures`` for what is hidden."""
    cubes = params.require_cubes()
    k = params.anonymity()
    conditions = figures.conditions_for(transition.scope, params.user_scope(), filters)
    if any(not values for values in conditions.values()):
        return None
    happiness = figures.weekly(cubes, transition, conditions, "happiness", k)
    first = cubes.table.period_start(cubes.first_period)
    last = cubes.table.period_start(cubes.last_period)
    window = functools.cache(lambda: it_figures.TicketWindow.read(get_db().connection(), first, last))
    patterns = figures.memoised(cubes, ("it_pattern", k), lambda: it_figures.it_pattern(get_db().connection(), window(), k))
    weekly = figures.memoised(
        cubes, ("it_weekly", tuple(conditions.items()), k),
        lambda: it_figures.it_weekly(get_db().connection(), window(), conditions, k, patterns),
    )
    if not weekly["sla_met"] and not weekly["response_rate"]:
        return None
    report = _report_entry(cubes, transition) if not params.user_scope() and not filters else None
    return {
        "happiness": happiness,
        "sla_met": weekly["sla_met"],
        "response_rate": weekly["response_rate"],
        "windows": it_figures.it_windows(report, k),
        "go_live": transition.go_live.isoformat(),
    }
