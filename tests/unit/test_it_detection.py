"""IT metrics in the weekly run (issue 12): planted effects on random synthetic tickets.

Each test draws several seeds (random groups, sizes and onset weeks) and asserts that
each planted effect is reported as the right kind of finding, note or flag, at the
right segment and week; nothing is tuned to one draw.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from detectors import metric_for
from detectors.it_metrics import (
    DETECTED_IT_METRICS,
    TICKET_STATS,
    median_estimate,
    ticket_cube,
)
from monitor.analysis.detect import AnalysisOptions, find_changes
from monitor.analysis.it_detect import find_it_changes
from monitor.analysis.it_notes import disconnect_notes
from monitor.analysis.transitions import _judge_it_target
from monitor.analysis.voice import answered_flags, extreme_flags, response_rate_flags
from monitor.dev.it_world import FIRST_PERIOD, ITEffect, it_world
from monitor.periods import period_start
from monitor.targets import parse_target

SEEDS = (11, 23, 37)
OPTIONS = AnalysisOptions(workers=1, pairs=False)


def _week(offset: int) -> dt.date:
    return period_start(FIRST_PERIOD + offset, "week")


def _at(changes, metric, group, onset, slack=2):
    return [
        c for c in changes
        if c.metric == metric and c.segment.as_dict() == {"assignment_group": group}
        and abs((c.change.change_date.date() - _week(onset)).days) <= 7 * slack
    ]


@pytest.fixture(scope="module", params=SEEDS)
def world(request):
    w = it_world(request.param)
    it = find_it_changes(w.tickets, OPTIONS)
    survey = find_changes(w.responses, OPTIONS)
    return w, it.changes, survey.changes


def effect(world, kind):
    return next(e for e in world[0].effects if e.kind == kind)


def test_every_it_metric_is_detectable_on_its_own_series():
    """Each IT metric, planted alone in everyone's series, is found at its week, for the worse."""
    rng = np.random.default_rng(5)
    periods, n, onset = 40, 40_000, 26
    period = rng.integers(0, periods, n)
    after = period >= onset
    base = dict(
        sla=(rng.random(n) < 0.93).astype(float),
        reassignments=rng.poisson(0.25, n).astype(float),
        reopens=(rng.random(n) < 0.04).astype(float),
        resolution_hours=rng.lognormal(2, 1, n),
        answered=rng.random(n) < 0.2,
        feedback_hours=rng.lognormal(1, 1, n),
    )
    worse = {
        "sla_met": dict(sla=(rng.random(n) < np.where(after, 0.80, 0.93)).astype(float)),
        "reassignment_rate": dict(reassignments=rng.poisson(np.where(after, 0.6, 0.25)).astype(float)),
        "reopen_rate": dict(reopens=(rng.random(n) < np.where(after, 0.12, 0.04)).astype(float)),
        "resolution_hours": dict(resolution_hours=base["resolution_hours"] * np.where(after, 2.0, 1.0)),
        "response_rate": dict(answered=rng.random(n) < np.where(after, 0.08, 0.2)),
        "feedback_delay_hours": dict(feedback_hours=base["feedback_hours"] * np.where(after, 3.0, 1.0)),
        "resolved_volume": None,
    }
    index = pd.date_range("2025-01-06", periods=periods, freq="7D")
    for name in DETECTED_IT_METRICS:
        if worse[name] is None:
            keep = ~after | (rng.random(n) < 0.3)
            columns = {k: v[keep] for k, v in base.items()}
            cube = ticket_cube(period[keep], np.zeros(keep.sum(), int), 1, periods, **columns)
        else:
            cube = ticket_cube(period, np.zeros(n, int), 1, periods, **{**base, **worse[name]})
        from detectors import detect_changes

        metric = metric_for(name)
        found = [c for c in detect_changes(metric, pd.DataFrame(cube[0], index=index, columns=TICKET_STATS), min_n=30,
                                           min_size=4 if name == "resolved_volume" else 2,
                                           min_effect=0.5 if name == "resolved_volume" else None) if c.finding]
        assert found, name
        assert abs(found[0].index - onset) <= 1, (name, found[0].index)
        assert metric.direction(found[0].delta) == "worse", name


def test_binned_median_matches_the_exact_median():
    rng = np.random.default_rng(3)
    hours = rng.lognormal(1.5, 1.3, 5000)
    cube = ticket_cube(np.zeros(5000, int), np.zeros(5000, int), 1, 1, sla=np.full(5000, np.nan),
                       reassignments=np.full(5000, np.nan), reopens=np.full(5000, np.nan),
                       resolution_hours=hours, answered=np.zeros(5000, bool), feedback_hours=np.full(5000, np.nan))
    binned = metric_for("resolution_hours").estimate(pd.Series(cube[0, 0], index=TICKET_STATS))
    exact = median_estimate(hours)
    assert binned.value == pytest.approx(exact.value, rel=0.02)
    assert binned.ci_low == pytest.approx(exact.ci_low, rel=0.03) and binned.ci_high == pytest.approx(exact.ci_high, rel=0.03)


def test_an_sla_collapse_people_feel_is_an_sla_finding_felt(world):
    w, it, survey = world
    e = effect(world, "sla_collapse")
    sla = _at(it, "sla_met", e.group, e.onset)
    assert sla and sla[0].change.delta < -20
    assert _at(it, "resolution_hours", e.group, e.onset)
    notes = disconnect_notes(it + survey, w.responses, w.tickets, min_n=30, anonymity_min_responses=5)
    assert notes[sla[0].key]["happiness"]["status"] == "felt"
    happiness = _at(survey, "happiness", e.group, e.onset)
    assert happiness and notes[happiness[0].key]["sla"]["status"] == "broke"


@pytest.mark.parametrize("seed", SEEDS)
def test_an_sla_break_nobody_minds_is_reported_as_not_felt(seed):
    # "Not felt" needs an interval that excludes a 10-point dip: enough answers for it.
    rng = np.random.default_rng(seed)
    e = ITEffect("sla_unfelt", f"G0{rng.integers(0, 4)}", int(rng.integers(18, 28)))
    w = it_world(seed, [e], weekly=1000.0, groups=4)
    it = find_it_changes(w.tickets, OPTIONS).changes
    sla = _at(it, "sla_met", e.group, e.onset)
    assert sla
    notes = disconnect_notes(it, w.responses, w.tickets, min_n=30, anonymity_min_responses=5)
    note = notes[sla[0].key]["happiness"]
    assert note["status"] == "not_felt" and min(note["n_before"], note["n_after"]) >= 5
    assert note["ci"][0] > -10


def test_a_watermelon_is_a_happiness_finding_whose_sla_held(world):
    w, it, survey = world
    e = effect(world, "watermelon")
    assert not _at(it, "sla_met", e.group, e.onset, slack=4)
    happiness = _at(survey, "happiness", e.group, e.onset)
    assert happiness
    notes = disconnect_notes(it + survey, w.responses, w.tickets, min_n=30, anonymity_min_responses=5)
    sla = notes[happiness[0].key]["sla"]
    assert sla["status"] == "held" and sla["watermelon"]
    assert sla["before_ci"][0] <= sla["before"] <= sla["before_ci"][1] and sla["after"] > 85


def test_a_response_rate_fall_is_a_finding_and_a_blind_spot(world):
    w, it, _ = world
    e = effect(world, "response_fall")
    fall = _at(it, "response_rate", e.group, e.onset)
    assert fall and fall[0].change.delta < -8
    flags = response_rate_flags(w.tickets, anonymity_min_responses=5)
    assert {"assignment_group": e.group} in [f.segment for f in flags if f.kind == "response_rate_low"]
    others = {f.segment.get("assignment_group") for f in flags if f.kind == "response_rate_low"} - {e.group}
    assert not others - {None}


def test_response_rate_fell_is_flagged_over_the_recent_weeks():
    w = it_world(7, [ITEffect("response_fall", "G02", 36)])
    flags = response_rate_flags(w.tickets, anonymity_min_responses=5)
    fell = [f for f in flags if f.kind == "response_rate_fell"]
    assert [f.segment for f in fell] == [{"assignment_group": "G02"}]
    assert fell[0].figures["after"] < fell[0].figures["before"] - 10


def test_the_segment_whose_answered_tickets_are_the_fast_ones(world):
    w, _, _ = world
    e = effect(world, "fast_answered")
    flags = answered_flags(w.tickets, anonymity_min_responses=5)
    groups = [f.segment for f in flags if "assignment_group" in f.segment]
    assert groups == [{"assignment_group": e.group}]
    figures = next(f for f in flags if f.segment == {"assignment_group": e.group}).figures["resolution_hours"]
    assert figures["answered"]["ci_high"] < figures["unanswered"]["ci_low"]


def test_answered_tickets_with_fewer_reassignments_are_flagged():
    w = it_world(3, [])
    t = w.tickets
    group = t.codes["assignment_group"] == 1
    t.reassignments[group & t.answered] = 0.0  # answered tickets never reassigned
    flags = answered_flags(t, anonymity_min_responses=5)
    flagged = next(f for f in flags if f.segment == {"assignment_group": "G01"})
    assert "reassignment_rate" in flagged.figures and "resolution_hours" not in flagged.figures


def test_extreme_ratings_skew_is_tested_against_everyone_else():
    counts = {"country": {"FI": (150, 250, 500), "DE": (50, 200, 1000), "SE": (75, 300, 1500)}}
    overall = tuple(sum(c[i] for c in counts["country"].values()) for i in range(3))
    flags = extreme_flags(counts, overall, anonymity_min_responses=5)
    assert [f.segment for f in flags] == [{"country": "FI"}]
    assert flags[0].figures["extreme_share"] == 80.0 and flags[0].figures["p_value"] < 1e-6
    # Too few answers to be tested (or named): nothing.
    small = {"country": {"FI": (8, 10, 20), "DE": (40, 160, 1000)}}
    assert extreme_flags(small, (48, 170, 1020), anonymity_min_responses=5) == []


def test_it_targets_parse_and_judge_on_tickets():
    target = parse_target("sla_met>=90@12w[assignment_group=G01]")
    assert (target.metric, target.op, target.value, target.segment) == ("sla_met", ">=", 90.0, {"assignment_group": "G01"})
    w = it_world(2, [ITEffect("sla_collapse", "G01", 20)])
    transition = dataclasses.make_dataclass("T", ["go_live"])(_week(14))
    judged = _judge_it_target(target, w.tickets, transition, _week(39))
    assert judged["status"] == "not_met" and judged["value"] < 75 and judged["n"] > 30
    other = _judge_it_target(parse_target("sla_met>=90@12w[assignment_group=G03]"), w.tickets, transition, _week(39))
    assert other["status"] == "met"
    early = _judge_it_target(parse_target("resolution_hours<=5@4w[assignment_group=G01]"), w.tickets, transition, _week(15))
    assert early["status"] == "at_risk"
    with pytest.raises(ValueError):
        parse_target("sla_mett>=90@12w")
