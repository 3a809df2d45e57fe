"""Attribution on planted effects: one root per cause, echoes folded, the right scope."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from detectors import Change, Happiness, metric_for
from detectors.attribution import (
    diff_in_diff,
    excess,
    rising_factors,
    shift,
    shift_share,
)
from monitor.analysis.aggregate import (
    ResponseTable,
    Segment,
    _row_statistics,
    grouping_cube,
)
from monitor.analysis.attribution import AttributionOptions, attribute
from monitor.analysis.detect import AnalysisOptions, DetectedChange, find_changes
from monitor.analysis.suggestions import suggestions_for

FIRST, PERIODS, ONSET = 2900, 40, 24
COUNTRIES = ["DE", "FI", "FR", "SE"]
CHANNELS = ["Chat", "Phone", "Portal"]
FACTORS = {"Slow response": 0, "Lack of business knowledge": 1, "Long waiting time": 2}


def _table(
    *,
    dips: list[tuple[dict[str, str], float, str]],
    per_period: int = 600,
    seed: int = 5,
    country_weights: tuple[float, ...] = (0.4, 0.2, 0.25, 0.15),
) -> ResponseTable:
    """Responses over 40 weeks; each dip turns a share of its segment into detractors
    citing its factor from week 24 on."""
    rng = np.random.default_rng(seed)
    rows = per_period * PERIODS
    periods = np.repeat(np.arange(FIRST, FIRST + PERIODS), per_period)
    country = rng.choice(len(COUNTRIES), rows, p=country_weights)
    channel = rng.integers(0, len(CHANNELS), rows)
    rating = rng.choice([10, 9, 8, 7, 5, 3], rows, p=[0.3, 0.25, 0.15, 0.15, 0.1, 0.05]).astype(float)
    lost = np.where(rng.random(rows) < 0.5, rng.lognormal(3.0, 1.0, rows), np.nan)
    mask = np.where(rng.random(rows) < 0.05, 1 << rng.integers(0, len(FACTORS), rows), 0)
    for segment, share, factor in dips:
        inside = periods >= FIRST + ONSET
        for name, value in segment.items():
            codes, labels = (country, COUNTRIES) if name == "country" else (channel, CHANNELS)
            inside &= codes == labels.index(value)
        hit = inside & (rng.random(rows) < share)
        rating[hit] = 2.0
        lost[hit] = rng.lognormal(4.5, 0.5, hit.sum())
        mask[hit] |= 1 << FACTORS[factor]
    stats, names = _row_statistics(rating, lost, mask, FACTORS)
    return ResponseTable(
        period="week",
        periods=periods,
        stats=stats,
        stat_names=names,
        codes={"country": country, "channel": channel},
        labels={"country": COUNTRIES, "channel": CHANNELS},
        first_period=FIRST,
        last_period=FIRST + PERIODS - 1,
    )


def _attributed(table: ResponseTable, **options) -> tuple[dict, list]:
    """Roles of every change, and the Happiness changes (the ones tests look at)."""
    detected = find_changes(table, AnalysisOptions(workers=1)).changes
    result = attribute(table, detected, AttributionOptions(**options))
    happiness = [c for c in result.changes if c.metric == "happiness"]
    return {c.key: result.roles.get(c.key) for c in result.changes}, happiness


def _roots(roles: dict, changes: list) -> list:
    return [c for c in changes if roles[c.key] is None or roles[c.key].root]


def test_a_dip_everywhere_is_one_generic_root_with_every_segment_folded_into_it():
    roles, changes = _attributed(_table(dips=[({}, 0.35, "Long waiting time")]))
    roots = _roots(roles, changes)
    assert [r.segment for r in roots] == [Segment()]
    details = roles[roots[0].key].details
    assert details["scope"] == "generic"
    assert details["segments"] == []
    assert details["factors"][0]["factor"] == "Long waiting time"
    echoes = [c for c in changes if c not in roots]
    assert all(roles[c.key].root_key == roots[0].key for c in echoes)
    children = set(roles[roots[0].key].children)
    assert {c.key for c in echoes} <= children
    # The same dip in lost time and in its factor's share is one cause: folded too.
    related = {key[0] for key in children - {c.key for c in echoes}}
    assert {"lost_time", "factor:Long waiting time"} <= related


def test_a_dip_in_one_pair_is_one_localized_root_naming_that_pair():
    roles, changes = _attributed(_table(dips=[({"country": "FI", "channel": "Chat"}, 0.6, "Lack of business knowledge")]))
    roots = _roots(roles, changes)
    assert [r.segment for r in roots] == [Segment.of({"country": "FI", "channel": "Chat"})]
    details = roles[roots[0].key].details
    assert details["scope"] == "localized"
    assert [s["segment"] for s in details["segments"]] == [{"channel": "Chat", "country": "FI"}]
    assert details["factors"][0]["factor"] == "Lack of business knowledge"
    assert "knowledge" in details["suggestions"][0].lower()
    # Finland and Chat as a whole dip too, but only as echoes of the pair.
    echoes = {c.segment for c in changes if c not in roots}
    assert Segment.of({"country": "FI"}) in echoes
    assert all(roles[c.key].root_key == roots[0].key for c in changes if c not in roots)


def test_a_dip_spread_over_one_channel_is_rooted_at_the_channel_not_a_pair():
    roles, changes = _attributed(_table(dips=[({"channel": "Phone"}, 0.45, "Long waiting time")]))
    roots = _roots(roles, changes)
    assert [r.segment for r in roots] == [Segment.of({"channel": "Phone"})]
    assert roles[roots[0].key].details["scope"] == "localized"


def test_a_generic_dip_with_a_worse_pair_is_a_mixed_root_and_a_localized_root():
    """Two causes starting together: the generic part and the pair are roots of their own."""
    table = _table(dips=[({}, 0.25, "Long waiting time"), ({"country": "FI", "channel": "Chat"}, 0.7, "Lack of business knowledge")])
    roles, changes = _attributed(table)
    roots = _roots(roles, changes)
    pair = Segment.of({"country": "FI", "channel": "Chat"})
    assert [r.segment for r in roots] == [Segment(), pair]
    local = roles[roots[1].key].details
    assert local["scope"] == "localized" and local["factors"][0]["factor"] == "Lack of business knowledge"
    assert local["co_roots"] == [{}]
    details = roles[roots[0].key].details
    assert details["factors"][0]["factor"] == "Long waiting time"
    assert details["scope"] == "mixed"
    assert [s["segment"] for s in details["segments"]] == [{"channel": "Chat", "country": "FI"}]
    assert 0 < details["segments"][0]["share"] < 0.5
    assert details["generic_part"]["delta"] < -10


def test_no_segment_below_the_anonymity_threshold_is_named_in_the_tree():
    roles, changes = _attributed(_table(dips=[({}, 0.35, "Long waiting time")], per_period=100), anonymity_min_responses=250)
    (root,) = _roots(roles, changes)
    tree = roles[root.key].details["tree"]
    for child in tree["children"]:
        named = child["segment"].get("country", child["segment"].get("channel"))
        if named != "other":
            assert min(child["n_before"], child["n_after"]) >= 250
    # Germany (40% of 100 a week) clears 250 responses in each window; the smaller
    # countries do not and fold into "other", whose numbers keep every response.
    countries = [c for c in tree["children"] if "country" in c["segment"]]
    assert [c["segment"]["country"] for c in countries] == ["DE", "other"]
    assert sum(c["n_after"] for c in countries) == tree["n_after"]
    assert sum(c["n_before"] for c in countries) == tree["n_before"]


def test_shift_share_splits_a_change_exactly_into_rate_and_mix():
    rng = np.random.default_rng(1)
    before = pd.DataFrame({"n": [100.0, 300.0], "promoters": [70.0, 90.0], "detractors": [10.0, 120.0]})
    after = pd.DataFrame({"n": [100.0, 900.0], "promoters": [70.0, 270.0], "detractors": [10.0, 360.0]})
    parts = shift_share(shift(Happiness(), before, after))
    overall = Happiness().compare(before.sum(), after.sum())
    # The segments did not change; the unhappy one grew: all mix, no rate.
    assert parts.total == pytest.approx(overall.delta)
    assert np.allclose(parts.rate, 0.0)
    assert parts.mix.sum() == pytest.approx(overall.delta)
    # And with random counts the identity still holds exactly.
    n_b, n_a = rng.integers(50, 500, 5).astype(float), rng.integers(50, 500, 5).astype(float)
    frames = [
        pd.DataFrame({"n": n, "promoters": np.floor(n * rng.random(5) * 0.6), "detractors": np.floor(n * rng.random(5) * 0.3)})
        for n in (n_b, n_a)
    ]
    random_parts = shift_share(shift(Happiness(), *frames))
    assert random_parts.total == pytest.approx(Happiness().compare(frames[0].sum(), frames[1].sum()).delta)


def test_excess_is_worse_signed_and_scaled_by_sampling_error():
    metric = metric_for("lost_time")
    seg = shift(metric, pd.DataFrame({"lt_n": [200.0], "lt_sum": [200.0 * 60], "lt_sumsq": [200 * 4000.0],
                                      "lt_logsum": [200 * 4.0], "lt_logsumsq": [200 * 16.5]}),
                pd.DataFrame({"lt_n": [200.0], "lt_sum": [200.0 * 90], "lt_sumsq": [200 * 9000.0],
                              "lt_logsum": [200 * 4.4], "lt_logsumsq": [200 * 19.8]}))
    flat = shift(metric, pd.DataFrame({"lt_n": [2000.0], "lt_sum": [2000.0 * 60], "lt_sumsq": [2000 * 4000.0],
                                       "lt_logsum": [2000 * 4.0], "lt_logsumsq": [2000 * 16.5]}),
                 pd.DataFrame({"lt_n": [2000.0], "lt_sum": [2000.0 * 60], "lt_sumsq": [2000 * 4000.0],
                               "lt_logsum": [2000 * 4.0], "lt_logsumsq": [2000 * 16.5]}))
    extra, z = excess(metric, seg, flat)
    assert extra[0] == pytest.approx(30.0)  # more minutes lost is worse: positive
    assert z[0] > 3


def test_a_small_segment_whose_answers_agree_is_tested_on_the_pooled_variance():
    """36 detractors out of 36 carry almost no Wald variance; the pooled one does not vanish."""
    metric = Happiness()
    small = shift(metric, pd.DataFrame({"n": [34.0], "promoters": [17.0], "detractors": [5.0]}),
                  pd.DataFrame({"n": [36.0], "promoters": [0.0], "detractors": [36.0]}))
    rest = shift(metric, pd.DataFrame({"n": [5000.0], "promoters": [2500.0], "detractors": [1000.0]}),
                 pd.DataFrame({"n": [5000.0], "promoters": [2000.0], "detractors": [1500.0]}))
    wald = small.var_before + small.var_after
    assert small.test_variance[0] > 1.5 * wald[0]
    _, z = excess(metric, small, rest)
    assert z[0] < 0.8 * (small.delta[0] - rest.delta[0]) / -np.sqrt(wald[0] + rest.var_before[0] + rest.var_after[0])
    # A large segment that did not change keeps its own variance: the pooled one is no larger.
    assert rest.test_variance[0] == pytest.approx(rest.var_before[0] + rest.var_after[0], rel=0.05)


def test_rising_factors_need_a_clear_rise_and_come_largest_first():
    before = pd.Series({"n": 1000.0, "f:A": 50.0, "f:B": 100.0, "f:C": 30.0})
    after = pd.Series({"n": 1000.0, "f:A": 150.0, "f:B": 300.0, "f:C": 36.0})
    rose = rising_factors(before, after, ["A", "B", "C"])
    assert [r.factor for r in rose] == ["B", "A"]
    assert rose[0].delta == pytest.approx(20.0)
    assert rose[0].p_value < 0.001


def test_difference_in_differences_removes_the_change_the_control_group_shared():
    def totals(n: float, promoters: float, detractors: float) -> pd.Series:
        return pd.Series({"n": n, "promoters": promoters, "detractors": detractors})

    treated = (totals(1000, 600, 100), totals(1000, 400, 200))  # +50 -> +20
    control = (totals(1000, 600, 100), totals(1000, 550, 150))  # +50 -> +40
    result = diff_in_diff(Happiness(), treated, control)
    assert result is not None
    assert result.estimate == pytest.approx(-20.0)
    assert result.ci_low < -20 < result.ci_high < 0
    assert diff_in_diff(Happiness(), treated, (totals(0, 0, 0), totals(10, 5, 1))) is None


def test_suggestions_fill_the_root_segment_and_overrides_win():
    text = suggestions_for(["Long waiting time"], {"channel": "Phone"})
    assert text == [s for s in text if "channel Phone" in s] and len(text) == 1
    custom = suggestions_for(["long waiting time", "Unknown factor"], {}, {"Long waiting time": "Hire for {where}."})
    assert custom[0] == "Hire for all areas." and len(custom) == 2
    assert '"Unknown factor"' in custom[1] and "all areas" in custom[1]
    assert "No feedback factor" in suggestions_for([], {"channel": "Phone"})[0]


def test_a_child_with_the_same_respondents_does_not_replace_its_parent():
    """Every Chat response here comes from Finland: "Chat" and "Finland x Chat" are one set."""
    table = _table(dips=[({"channel": "Chat"}, 0.6, "Lack of business knowledge")])
    chat = table.codes["channel"] == CHANNELS.index("Chat")
    table.codes["country"][chat] = COUNTRIES.index("FI")
    table.cubes.clear()
    roles, changes = _attributed(table)
    roots = _roots(roles, changes)
    assert [r.segment for r in roots] == [Segment.of({"channel": "Chat"})]


def test_a_later_segment_change_during_an_open_generic_dip_is_folded_into_it():
    """Inhibition: a segment change that starts while a generic dip is open, and does
    not stand out from everyone, is an echo of the generic root."""
    table = _table(dips=[({}, 0.35, "Long waiting time")])
    detected = [c for c in find_changes(table, AnalysisOptions(workers=1)).changes if c.metric == "happiness"]
    (generic,) = [c for c in detected if c.segment == Segment()]
    germany = Segment.of({"country": "DE"})
    later = generic.change.change_date + pd.Timedelta(weeks=4)
    segments, cube = grouping_cube(table, ("country",))
    series = pd.DataFrame(cube[segments.index(germany)], columns=list(table.stat_names))
    row = int((later - table.period_index[0]).days // 7)
    delta = Happiness().compare(series.iloc[row - 8 : row].sum(), series.iloc[row:].sum())
    change = Change.of(Happiness(), delta, index=row, change_date=later, recovered_at=None, finding=True)
    result = attribute(table, [generic, DetectedChange("happiness", germany, change)], AttributionOptions())
    echo = result.roles[("happiness", germany.key(), later.date())]
    assert not echo.root and echo.root_key == generic.key
    assert ("happiness", germany.key(), later.date()) in result.roles[generic.key].children


def test_a_localized_roots_factors_leave_out_the_rise_everyone_shares():
    """Everyone cites "Long waiting time" more (a generic dip); Finland x Chat also
    dips, citing "Lack of business knowledge". The local root's factors are its own."""
    table = _table(dips=[({}, 0.2, "Long waiting time"),
                         ({"country": "FI", "channel": "Chat"}, 0.5, "Lack of business knowledge")])
    roles, changes = _attributed(table)
    local = [c for c in _roots(roles, changes) if c.segment == Segment.of({"country": "FI", "channel": "Chat"})]
    assert local, [c.segment for c in _roots(roles, changes)]
    factors = roles[local[0].key].details["factors"]
    assert [f["factor"] for f in factors] == ["Lack of business knowledge"]
    assert factors[0]["rest_delta"] is not None and factors[0]["p_beyond_rest"] < 0.05


def test_factors_against_the_rest_need_a_rise_beyond_it():
    inside = (pd.Series({"n": 400.0, "f:A": 40.0, "f:B": 40.0}), pd.Series({"n": 400.0, "f:A": 100.0, "f:B": 100.0}))
    rest = (pd.Series({"n": 4000.0, "f:A": 400.0, "f:B": 400.0}), pd.Series({"n": 4000.0, "f:A": 1000.0, "f:B": 400.0}))
    rose = rising_factors(*inside, ["A", "B"], rest=rest)
    assert [r.factor for r in rose] == ["B"]
    assert rose[0].rest_delta == pytest.approx(0.0) and rose[0].as_dict()["rest_delta"] == 0.0
