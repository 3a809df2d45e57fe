"""A root renamed by more data keeps its id (issue 11: ids stable across weekly runs)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import select

from detectors import Change, Estimate, metric_for
from detectors.metrics import Delta
from monitor.analysis.aggregate import Segment
from monitor.analysis.attribution import Role
from monitor.analysis.detect import DetectedChange
from monitor.analysis.finding_text import root_summary
from monitor.analysis.finding_view import FindingView
from monitor.analysis.findings import record_findings
from monitor.store.db import session_scope
from monitor.store.models import Finding

DIP = dt.date(2025, 3, 3)
PAIR = Segment.of({"country": "ES", "group": "IH-Team1"})
GROUP = Segment.of({"group": "IH-Team1"})
OTHER = Segment.of({"group": "IH-Team2"})


def _dip(segment: Segment, day: dt.date = DIP, metric: str = "happiness") -> DetectedChange:
    delta = Delta(Estimate(40.0, 35.0, 45.0, 400), Estimate(0.0, -6.0, 6.0, 300), -40.0, -48.0, -32.0, 400, 300, 1e-9)
    change = Change.of(metric_for(metric), delta, index=10, change_date=pd.Timestamp(day), recovered_at=None,
                       finding=True)
    return DetectedChange(metric, segment, change)


def _run(engine, as_of: dt.date, roots: list[DetectedChange], echoes: dict[int, int] | None = None) -> list[Finding]:
    """Record one weekly run: ``echoes`` maps an echo's index to its root's index."""
    roles = {c.key: Role() for c in roots}
    for echo, root in (echoes or {}).items():
        roles[roots[echo].key] = Role(root=False, root_key=roots[root].key)
    with session_scope(engine) as session:
        found = record_findings(session, roots, as_of, {}, roles)
        return [(f.id, f.root, dict(f.segment), (f.attribution or {}).get("first_named")) for f in found]


def test_a_root_renamed_to_its_parent_keeps_its_id_and_its_first_name(engine):
    [(first_id, _, _, _)] = _run(engine, DIP + dt.timedelta(weeks=2), [_dip(PAIR)])
    found = _run(engine, DIP + dt.timedelta(weeks=3), [_dip(GROUP), _dip(PAIR)], echoes={1: 0})
    (root_id, is_root, segment, first_named), (echo_id, echo_is_root, _, _) = found
    assert (root_id, is_root, segment, first_named) == (first_id, True, GROUP.as_dict(), PAIR.as_dict())
    assert not echo_is_root and echo_id != first_id
    # A week later the root is found under the same name: same id, the first name still told.
    [(later_id, _, later_segment, later_first)] = _run(engine, DIP + dt.timedelta(weeks=4), [_dip(GROUP)])
    assert (later_id, later_segment, later_first) == (first_id, GROUP.as_dict(), PAIR.as_dict())
    with session_scope(engine) as session:
        assert len(session.scalars(select(Finding)).all()) == 2  # the root and the pair's echo
        view = FindingView.of(session.get(Finding, first_id))
    assert view.as_dict()["first_named"] == PAIR.as_dict()
    assert "    first reported as country=ES x group=IH-Team1" in root_summary(view)


def test_a_root_is_not_renamed_across_segments_dates_or_metrics_that_do_not_match(engine):
    [(first_id, _, _, _)] = _run(engine, DIP + dt.timedelta(weeks=2), [_dip(PAIR)])
    later = DIP + dt.timedelta(weeks=3)
    found = _run(engine, later, [
        _dip(OTHER),  # a segment that does not nest with the pair
        _dip(GROUP, DIP + dt.timedelta(weeks=2)),  # dated two weeks later: another change
        _dip(GROUP, metric="lost_time"),  # another metric
    ])
    assert first_id not in {f[0] for f in found}
    assert all(f[3] is None for f in found)


def test_a_root_still_found_under_its_own_name_is_not_taken_by_another(engine):
    [(first_id, _, _, _)] = _run(engine, DIP + dt.timedelta(weeks=2), [_dip(PAIR)])
    found = _run(engine, DIP + dt.timedelta(weeks=3), [_dip(GROUP), _dip(PAIR)])
    by_segment = {tuple(sorted(f[2].items())): f for f in found}
    assert by_segment[PAIR.items][0] == first_id and by_segment[PAIR.items][3] is None
    assert by_segment[GROUP.items][0] != first_id and by_segment[GROUP.items][3] is None
