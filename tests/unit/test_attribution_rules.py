"""Attribution's root/echo rules on random worlds (random sizes, effects and seeds)."""

from __future__ import annotations

import numpy as np

from monitor.analysis.aggregate import Segment
from monitor.analysis.attribution import AttributionOptions, attribute
from monitor.analysis.detect import AnalysisOptions, find_changes
from tests.unit.planted_worlds import NEGATIVE, Effect, large_values, world

SEEDS = range(101, 106)


def roots_of(table, metric: str | None = "happiness"):
    detected = find_changes(table, AnalysisOptions(workers=1)).changes
    result = attribute(table, detected, AttributionOptions())
    roots = [c for c in result.changes if (result.roles.get(c.key) is None or result.roles[c.key].root)
             and (metric is None or c.metric == metric)]
    return roots, result


def _uneven_value(rng, labels, weights):
    country = large_values(rng, labels, weights, ("country",))
    factors = {value: float(rng.uniform(0.6, 1.4)) for value in labels["channel"]}
    return [Effect(country, float(rng.uniform(0.3, 0.5)), str(rng.choice(NEGATIVE)), 24, uneven={"channel": factors})]


def test_a_root_on_one_value_with_uneven_children_is_one_root_not_a_flood():
    right = 0
    for seed in SEEDS:
        w = world(seed, _uneven_value)
        roots, _ = roots_of(w.table)
        right += [r.segment for r in roots] == [w.effects[0].seg]
    assert right >= 4


def _overlapping(rng, labels, weights):
    chosen = large_values(rng, labels, weights, ("country", "service"))
    factor = str(rng.choice(NEGATIVE))
    return [Effect({"country": chosen["country"]}, 0.35, factor, 24),
            Effect({"service": chosen["service"]}, 0.35, factor, 24)]


def test_two_overlapping_roots_are_two_roots_and_their_intersection_an_echo():
    right = 0
    for seed in SEEDS:
        w = world(seed, _overlapping)
        roots, _ = roots_of(w.table)
        right += {r.segment for r in roots} == {e.seg for e in w.effects}
    assert right >= 4


def _triple(rng, labels, weights):
    chosen = large_values(rng, labels, weights, ("country", "service", "channel"))
    return [Effect(chosen, float(rng.uniform(0.6, 0.8)), str(rng.choice(NEGATIVE)), 24)]


def test_a_dip_in_three_dimensions_is_rooted_at_the_three():
    right = 0
    for seed in SEEDS:
        w = world(seed, _triple, per_period=2500)
        roots, _ = roots_of(w.table)
        right += [r.segment for r in roots] == [w.effects[0].seg]
    assert right >= 4
