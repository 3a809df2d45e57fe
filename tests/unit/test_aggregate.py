"""The one-pass aggregation agrees with a plain pandas group-by, and periods are right."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from monitor.analysis.aggregate import (
    MISSING,
    ResponseTable,
    Segment,
    _row_statistics,
    grouping_cube,
    groupings,
    last_complete_period,
    period_of_day,
)
from monitor.periods import EPOCH


def _table(rows: int = 5000, seed: int = 3) -> tuple[ResponseTable, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "period": rng.integers(2900, 2920, rows),
            "rating": rng.integers(0, 11, rows).astype(float),
            "lost": np.where(rng.random(rows) < 0.3, np.nan, rng.lognormal(3, 1, rows)),
            "mask": rng.integers(0, 4, rows),
            "country": rng.integers(-1, 3, rows),  # -1: no value
            "channel": rng.integers(0, 2, rows),
        }
    )
    stats, names = _row_statistics(
        frame["rating"].to_numpy(), frame["lost"].to_numpy(), frame["mask"].to_numpy(), {"Slow": 0, "Rude": 1}
    )
    table = ResponseTable(
        period="week",
        periods=frame["period"].to_numpy(),
        stats=stats,
        stat_names=names,
        codes={"country": frame["country"].to_numpy(), "channel": frame["channel"].to_numpy()},
        labels={"country": ["DE", "FI", "FR"], "channel": ["Chat", "Phone"]},
        first_period=2900,
        last_period=2919,
    )
    return table, frame


def test_cube_matches_a_pandas_group_by_for_every_grouping():
    table, frame = _table()
    frame = frame.assign(
        n=1,
        promoters=(frame["rating"] >= 9).astype(int),
        detractors=(frame["rating"] <= 6).astype(int),
        lt_sum=frame["lost"].fillna(0),
        slow=(frame["mask"] & 1 > 0).astype(int),
    )
    for by in groupings(("country", "channel")):
        segments, cube = grouping_cube(table, by)
        present = frame[(frame[list(by)] != MISSING).all(axis=1)] if by else frame
        expected = present.groupby([*by, "period"])[["n", "promoters", "detractors", "lt_sum", "slow"]].sum()
        for segment, series in zip(segments, cube, strict=True):
            labels = segment.as_dict()
            keys = tuple(table.labels[name].index(labels[name]) for name in by)
            for period in range(2900, 2920):
                got = series[period - 2900]
                key = (*keys, period) if by else period
                want = expected.loc[key] if key in expected.index else pd.Series(0, index=expected.columns)
                assert got[0] == want["n"]
                assert got[1] == want["promoters"] and got[2] == want["detractors"]
                assert got[4] == pytest.approx(want["lt_sum"])
                assert got[table.stat_names.index("f:Slow")] == want["slow"]
        # Every response with values for ``by`` is in exactly one segment.
        assert cube[:, :, 0].sum() == len(present)


def test_scope_filters_responses_and_an_empty_scope_is_everyone():
    table, frame = _table()
    assert table.within({}) is table
    finnish = table.within({"country": ["FI"]})
    assert len(finnish) == int((frame["country"] == 1).sum())
    (segment,), _ = grouping_cube(finnish, ("country",))
    assert segment == Segment.of({"country": "FI"})
    assert len(table.within({"unknown": ["x"]})) == 0


def test_weeks_start_on_monday_and_only_complete_ones_are_analysed():
    monday = dt.date(2025, 3, 3)
    week = period_of_day((monday - EPOCH).days, "week")
    assert period_of_day((monday - EPOCH).days + 6, "week") == week  # Sunday: same week
    assert period_of_day((monday - EPOCH).days - 1, "week") == week - 1
    assert last_complete_period(monday + dt.timedelta(days=6), "week") == week  # Sunday closes it
    assert last_complete_period(monday + dt.timedelta(days=3), "week") == week - 1  # Thursday: not yet
    assert last_complete_period(monday, "day") == (monday - EPOCH).days


def test_targets_are_judged_on_their_segment_and_unknown_dimensions_are_unjudgeable():
    from monitor.analysis.transitions import _judge_target
    from monitor.store.models import Transition
    from monitor.targets import parse_target

    table, frame = _table()
    go_live = EPOCH + dt.timedelta(days=4 + 7 * 2905)  # Monday of period 2905
    transition = Transition(name="T", go_live=go_live, scope={}, targets=[])
    as_of = go_live + dt.timedelta(weeks=30)
    finnish = _judge_target(parse_target("volume>=0@8w[country=FI]"), table, transition, as_of)
    deadline_period = 2905 + 8 - 1
    expected_n = int(((frame["country"] == 1) & frame["period"].between(deadline_period - 3, deadline_period)).sum())
    assert (finnish["status"], finnish["n"]) == ("met", expected_n)
    unknown = _judge_target(parse_target("happiness>=0@8w[region=North]"), table, transition, as_of)
    assert (unknown["status"], unknown["evidence"]) == ("not_met", "no responses in scope")
