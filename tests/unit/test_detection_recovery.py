"""Recovery that means it, and gradual changes as one finding (issue 11)."""

from __future__ import annotations

import datetime as dt

import numpy as np

from monitor.analysis.aggregate import ResponseTable, _row_statistics, grouping_cube
from monitor.analysis.detect import AnalysisOptions, KnownDate, find_changes
from monitor.analysis.transitions import recovery_period, transition_windows
from monitor.periods import period_of_date

FIRST = period_of_date(dt.date(2025, 1, 6), "week")


def _table(weekly: list[tuple[int, float]], seed: int = 0) -> ResponseTable:
    """One segment, weekly (responses, Happiness) from FIRST on."""
    rng = np.random.default_rng(seed)
    periods, ratings = [], []
    for k, (n, happiness) in enumerate(weekly):
        h = happiness / 100.0
        passive = 0.22 * (1.0 - h * h)
        promoter = (1.0 - passive + h) / 2.0
        kind = rng.choice(3, size=n, p=[promoter, passive, 1.0 - promoter - passive])
        ratings.append(np.where(kind == 0, 10, np.where(kind == 1, 8, 3)))
        periods.append(np.full(n, FIRST + k))
    rating = np.concatenate(ratings).astype(float)
    stats, names = _row_statistics(rating, np.full(rating.size, np.nan), np.zeros(rating.size, dtype=np.int64), {})
    return ResponseTable(
        period="week",
        periods=np.concatenate(periods),
        stats=stats,
        stat_names=names,
        codes={},
        labels={},
        first_period=FIRST,
        last_period=FIRST + len(weekly) - 1,
    )


def _recovered(weekly: list[tuple[int, float]], go_live_week: int) -> dt.date | None:
    table = _table(weekly)
    go_live = table.period_start(FIRST + go_live_week)
    windows = {w.name: w for w in transition_windows(go_live, 12, 12, table)}
    _, cube = grouping_cube(table, ())
    return recovery_period(
        _metric(), table, cube[0], windows["baseline"], windows["since_go_live"].first, 0.95, min_n=30
    )


def _metric():
    from detectors import metric_for

    return metric_for("happiness")


def test_holiday_weeks_with_a_fifth_of_the_volume_do_not_declare_recovery():
    # 20 weeks at +50 with 200 a week, go-live dip to 0, then the last 4 weeks
    # are holiday weeks: 40 responses each, happening to sit at the old level.
    weekly = [(200, 50.0)] * 20 + [(200, 0.0)] * 8 + [(40, 50.0)] * 4
    assert _recovered(weekly, 20) is None
    # The same four weeks at the usual volume do show it.
    weekly = [(200, 50.0)] * 20 + [(200, 0.0)] * 8 + [(200, 50.0)] * 4
    assert _recovered(weekly, 20) is not None


def test_baseline_window_is_clipped_to_the_first_response():
    table = _table([(100, 50.0)] * 3 + [(100, 0.0)] * 4)
    go_live = table.period_start(FIRST + 3)
    windows = {w.name: w for w in transition_windows(go_live, 12, 12, table)}
    assert windows["baseline"].dates(table)[0] == table.period_start(FIRST)


def test_search_recovery_needs_the_usual_volume():
    # A dip at week 30 that "comes back" only over two holiday weeks of 20 responses.
    weekly = [(200, 50.0)] * 30 + [(200, 0.0)] * 10 + [(20, 50.0)] * 2 + [(200, 0.0)] * 6
    result = find_changes(_table(weekly, seed=3), AnalysisOptions(workers=1, pairs=False))
    dips = [c for c in result.changes if c.metric == "happiness"]
    assert dips and all(c.change.recovered_at is None for c in dips)


def test_a_slow_decline_is_one_gradual_finding_with_its_slope():
    # +60 for 30 weeks, then down 4 points a week for 10 weeks, then +20.
    weekly = [(300, 60.0)] * 30 + [(300, 60.0 - 4.0 * (k + 1)) for k in range(10)] + [(300, 20.0)] * 12
    result = find_changes(_table(weekly, seed=5), AnalysisOptions(workers=1, pairs=False))
    (dip,) = [c for c in result.changes if c.metric == "happiness"]
    change = dip.change
    assert str(change.shape) == "gradual"
    start = _table(weekly).period_start(FIRST + 30)
    assert abs((change.change_date.date() - start).days) <= 14
    # One finding with a start, an end and a falling slope (how long the detector
    # judges the ramp to be is its business: detectors/changepoints.py).
    assert change.end_date is not None and change.end_date.date() > change.change_date.date()
    assert change.slope < 0 and change.slope_ci_high < 0


def test_a_known_date_holds_against_a_wandering_search_date():
    # A clean step at week 30; a stored finding dated one week later is kept at its date.
    weekly = [(200, 50.0)] * 30 + [(200, 20.0)] * 10
    table = _table(weekly, seed=7)
    stored = table.period_start(FIRST + 31)
    result = find_changes(
        table, AnalysisOptions(workers=1, pairs=False), [KnownDate(stored, "F1", kind="finding", metrics=("happiness",))]
    )
    (dip,) = [c for c in result.changes if c.metric == "happiness"]
    # 200 responses a week make a 30-point step's week unmistakable: the data moves the date...
    assert dip.change.change_date.date() == table.period_start(FIRST + 30)
    # ...and the change still continues the stored finding (same id downstream).
    assert dip.known == "F1"
    # With 15 a week the evidence is not decisive: the stored date holds.
    noisy = _table([(15, 50.0)] * 30 + [(15, 20.0)] * 10, seed=7)
    result = find_changes(
        noisy, AnalysisOptions(workers=1, pairs=False, min_n=5),
        [KnownDate(noisy.period_start(FIRST + 31), "F1", kind="finding", metrics=("happiness",))],
    )
    dates = {c.change.change_date.date() for c in result.changes if c.metric == "happiness"}
    assert dates <= {noisy.period_start(FIRST + 31)}


def test_a_dip_that_came_back_and_then_improved_has_recovered():
    """+30 for 20 weeks, a go-live dip to 0 for 4, back at +30, then +60 for good.
    Back at the old level and then better is recovered: only a return inside the
    baseline's interval counted, so the transition never recovered, nor did the
    detector's dip where it read the return and the rise as one slide up (3 of 6
    series); its recovery then waits for the end of that slide."""
    weekly = [(200, 30.0)] * 20 + [(200, 0.0)] * 4 + [(200, 30.0)] * 10 + [(200, 60.0)] * 20
    back = _table(weekly).period_start(FIRST + 24)
    recovered = _recovered(weekly, 20)
    assert recovered is not None and abs((recovered - back).days) <= 7
    weekly = [(200, 30.0)] * 20 + [(200, 0.0)] * 4 + [(200, 30.0)] * 6 + [(200, 60.0)] * 20
    rise_ends = _table(weekly).period_start(FIRST + 31)
    for seed in range(6):
        result = find_changes(_table(weekly, seed=seed), AnalysisOptions(workers=1, pairs=False))
        (dip,) = [c.change for c in result.changes if c.metric == "happiness" and c.change.delta < 0]
        assert dip.recovered_at is not None and back <= dip.recovered_at.date() <= rise_ends + dt.timedelta(weeks=1)
