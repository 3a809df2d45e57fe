"""Factor polarity: learned from who cites a factor, overridden by the configuration."""

from __future__ import annotations

import numpy as np
import pytest

from config import load_settings
from config.settings import ConfigError
from detectors.polarity import FactorPolarity, factor_polarities, learn_polarity
from monitor.analysis.aggregate import ResponseTable, Segment, _row_statistics
from monitor.analysis.attribution import (
    AttributionOptions,
    _Masks,
    _metric,
    _only_more_unhappy,
    _promoters_lost,
    attribute,
    polarities,
)
from monitor.analysis.detect import AnalysisOptions, find_changes
from monitor.analysis.transitions import Window
from tests.unit.planted_worlds import NEGATIVE, POSITIVE, Effect, large_values, world


def test_polarity_is_read_from_the_ratings_of_those_citing_a_factor():
    assert learn_polarity("Knowledgeable agent", 180, 12).polarity is FactorPolarity.POSITIVE
    assert learn_polarity("Long waiting time", 9, 240).polarity is FactorPolarity.NEGATIVE
    balanced = learn_polarity("Polite", 50, 55)
    assert balanced.polarity is FactorPolarity.UNDECIDED and "as often" in balanced.reason
    few = learn_polarity("Rare", 6, 1)
    assert few.polarity is FactorPolarity.UNDECIDED and "too few" in few.reason
    assert few.worse_when_rising  # undecided keeps the survey default: rising is bad news


def test_configured_polarity_wins_over_the_data_and_is_validated():
    found = factor_polarities({"Knowledgeable agent": 180.0}, {"Knowledgeable agent": 12.0},
                              {"knowledgeable agent": "neutral"})
    assert found["Knowledgeable agent"].polarity is FactorPolarity.NEUTRAL
    assert found["Knowledgeable agent"].source == "config"
    settings = load_settings(environ={}, overrides={"factor_polarity": {"Knowledgeable agent": "positive"}})
    assert settings.factor_polarity == {"Knowledgeable agent": "positive"}
    with pytest.raises(ConfigError, match="factor_polarity"):
        load_settings(environ={}, overrides={"factor_polarity": {"Knowledgeable agent": "good"}})


def _dip(rng, labels, weights):
    return [Effect(large_values(rng, labels, weights, ("country",)), 0.4, str(rng.choice(NEGATIVE)), 24)]


def test_a_positive_factor_cited_less_is_named_and_one_cited_more_is_never_a_root():
    for seed in (201, 202, 203):
        w = world(seed, _dip)
        learned = polarities(w.table, AttributionOptions())
        assert learned[POSITIVE].polarity is FactorPolarity.POSITIVE
        assert all(learned[f].polarity is FactorPolarity.NEGATIVE for f in NEGATIVE)
        detected = find_changes(w.table, AnalysisOptions(workers=1)).changes
        result = attribute(w.table, detected, AttributionOptions())
        roots = [c for c in result.changes if result.roles.get(c.key) is None or result.roles[c.key].root]
        (root,) = [r for r in roots if r.metric == "happiness"]
        details = result.roles[root.key].details
        assert [f["factor"] for f in details["positive_factors_fell"]] == [POSITIVE]
        assert details["positive_factors_fell"][0]["delta"] < 0
        top = details["factors"][0]
        assert top["factor"] == w.effects[0].factor and top["polarity"] == "negative"
        # Its rise is mostly among the unhappy citing it more (the planted dip
        # makes detractors who cite it) plus more unhappy respondents.
        assert top["among_unhappy"]["delta"] > 0 and top["more_unhappy"] > 0
        # Configured as negative, the positive factor's own changes would be findings;
        # learned positive, no root of any metric is about it.
        assert not [r for r in roots if r.metric == f"factor:{POSITIVE}"]


def test_a_positive_factor_rising_with_an_improvement_is_no_root():
    def improvement(rng, labels, weights):
        return []

    w = world(301, improvement)
    table = w.table
    names = list(table.stat_names)
    rng = np.random.default_rng(3)
    late = (table.periods >= table.first_period + 24) & (rng.random(len(table)) < 0.3)
    for column, value in (("promoters", 1.0), ("detractors", 0.0), (f"f:{POSITIVE}", 1.0)):
        table.stats[late, names.index(column)] = value
    detected = find_changes(table, AnalysisOptions(workers=1)).changes
    # Detection reads the positive factor through its polarity: its rise is an
    # improvement, never a finding (no red card) ...
    assert not any(c.metric == f"factor:{POSITIVE}" for c in detected)
    # ... and configured negative, the same rise is one.
    configured = find_changes(table, AnalysisOptions(workers=1, factor_polarity={POSITIVE: "negative"})).changes
    assert any(c.metric == f"factor:{POSITIVE}" and c.change.delta > 0 for c in configured)
    result = attribute(table, detected + configured, AttributionOptions())
    assert not [c for c in result.changes if c.metric == f"factor:{POSITIVE}"]


def test_a_positive_factor_falling_alone_is_a_finding_and_a_root_of_its_own_kind():
    """"Knowledgeable agent" cited less by the same happy respondents: no Happiness
    change to fold into, so it is a root of its own, worse, with a negative delta."""
    w = world(302, lambda rng, labels, weights: [])
    table = w.table
    names = list(table.stat_names)
    column = names.index(f"f:{POSITIVE}")
    late = table.periods >= table.first_period + 24
    citing = late & (table.stats[:, column] > 0)
    drop = citing & (np.random.default_rng(4).random(len(table)) < 0.6)
    table.stats[drop, column] = 0.0
    assert polarities(table, AttributionOptions())[POSITIVE].polarity is FactorPolarity.POSITIVE
    detected = find_changes(table, AnalysisOptions(workers=1)).changes
    fell = [c for c in detected if c.metric == f"factor:{POSITIVE}" and not c.segment.items]
    assert fell and fell[0].change.delta < 0 and fell[0].change.finding
    result = attribute(table, detected, AttributionOptions())
    roots = [c for c in result.changes if result.roles.get(c.key) is None or result.roles[c.key].root]
    assert [r.segment.items for r in roots if r.metric == f"factor:{POSITIVE}"] == [()]
    assert not [r for r in roots if r.metric == "happiness"]


def test_a_positive_factor_cited_less_by_happier_respondents_is_no_finding():
    """Praise crowded out: Happiness rises clearly while the same respondents cite
    "Knowledgeable agent" less (they cite what improved). The fall is found by the
    detector but is no finding; alone, the same fall is one (the test above)."""
    w = world(302, lambda rng, labels, weights: [])
    table = w.table
    names = list(table.stat_names)
    rng = np.random.default_rng(4)
    late = table.periods >= table.first_period + 24
    happier = late & (rng.random(len(table)) < 0.3)
    for column, value in (("promoters", 1.0), ("detractors", 0.0)):
        table.stats[happier, names.index(column)] = value
    column = names.index(f"f:{POSITIVE}")
    citing = late & (table.stats[:, column] > 0)
    table.stats[citing & (rng.random(len(table)) < 0.6), column] = 0.0
    detected = find_changes(table, AnalysisOptions(workers=1)).changes
    assert any(c.metric == f"factor:{POSITIVE}" and c.change.delta < 0 and c.change.finding for c in detected)
    result = attribute(table, detected, AttributionOptions())
    assert not [c for c in result.changes if c.metric == f"factor:{POSITIVE}"]


def _band_table(countries: dict[str, tuple[tuple[float, ...], tuple[float, ...]]], seed: int = 3) -> ResponseTable:
    """Four weeks before and four after, 1500 answers a week per country. Each window of
    a country is (promoters' share, detractors' share, share of promoters citing
    "Knowledgeable agent", share of detractors citing "Long waiting time"); the rest rate 8."""
    rng = np.random.default_rng(seed)
    labels = list(countries)
    code = np.tile(np.repeat(np.arange(len(labels)), 1500), 8)
    periods = np.repeat(np.arange(3000, 3008), 1500 * len(labels))
    late = (periods >= 3004).astype(int)
    spec = np.array([[countries[c][w] for w in (0, 1)] for c in labels])  # country x window x 4
    promoters, detractors, praise, complaint = (spec[code, late, k] for k in range(4))
    draw = rng.random(periods.size)
    rating = np.where(draw < promoters, 10.0, np.where(draw < promoters + detractors, 3.0, 8.0))
    cites = rng.random(periods.size)
    mask = np.where((rating >= 9) & (cites < praise), 1, 0) | np.where((rating <= 6) & (cites < complaint), 2, 0)
    stats, names = _row_statistics(rating, np.full(periods.size, np.nan), mask,
                                   {"Knowledgeable agent": 0, "Long waiting time": 1})
    return ResponseTable(period="week", periods=periods, stats=stats, stat_names=names, codes={"country": code},
                         labels={"country": labels}, first_period=3000, last_period=3007)


def _judged(table: ResponseTable, rule, factor: str, segment: Segment) -> bool:
    masks = _Masks(table, Window("before", 3000, 3003), Window("after", 3004, 3007))
    return rule(masks, _metric(f"factor:{factor}", polarities(table, AttributionOptions())), segment)


@pytest.mark.parametrize(
    ("before", "after", "mirror"),
    [
        ((0.6, 0.3), (0.4, 0.3), True),  # fewer promoters, who cite it as often: the dip seen again
        ((0.6, 0.3), (0.6, 0.15), False),  # as many promoters, citing it half as often: news of its own
        ((0.6, 0.3), (0.4, 0.15), False),  # both
    ],
)
def test_a_positive_factor_falling_only_with_the_promoters_is_the_dip_seen_again(before, after, mirror) -> None:
    """A generic "Quick resolution" fall beside a Happiness dip in a third of the
    answers was a root of its own; it now folds under the dip's root (or goes, with
    none) when the promoters left cite it as often as before."""
    table = _band_table({"FI": ((before[0], 0.2, before[1], 0.3), (after[0], 0.2 + before[0] - after[0], after[1], 0.3))})
    assert _judged(table, _promoters_lost, "Knowledgeable agent", Segment()) is mirror


@pytest.mark.parametrize(
    ("finland", "mix"),
    [
        (((0.5, 0.2, 0.3, 0.2), (0.6, 0.3, 0.3, 0.4)), True),  # ratings spread, its unhappy cite it as the rest's do
        (((0.5, 0.2, 0.3, 0.2), (0.4, 0.3, 0.3, 0.7)), False),  # its unhappy cite it far more: a cause of its own
    ],
)
def test_a_negative_factor_rising_more_only_where_more_are_unhappy_is_no_place_of_its_own(finland, mix) -> None:
    """Everyone's unhappy cite "Long waiting time" twice as often; in Finland ratings
    spread (more 0-6 and more 9-10, Happiness unchanged), so the factor's share of all
    its answers rises most there: a root on Finland (a variance-only change next to a
    generic slide, 1 world in 40) unless its unhappy cite it more than the rest's."""
    rest = ((0.5, 0.2, 0.3, 0.2), (0.5, 0.2, 0.3, 0.4))
    table = _band_table({"FI": finland, "SE": rest, "DE": rest})
    assert _judged(table, _only_more_unhappy, "Long waiting time", Segment.of({"country": "FI"})) is mix
