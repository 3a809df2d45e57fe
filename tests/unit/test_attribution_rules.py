"""Attribution's root/echo rules on random worlds (random sizes, effects and seeds)."""

from __future__ import annotations

import numpy as np
import pytest

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
    # Judged against one of the two roots only, the intersection (which carries both
    # dips) stood out in one world of five and became a third root.
    assert right == len(SEEDS)


def _largest_channel(labels, weights) -> dict[str, str]:
    return {"channel": labels["channel"][int(np.argmax(weights["channel"]))]}


def _half_of_everyone(rng, labels, weights):
    return [Effect(_largest_channel(labels, weights), 0.1, str(rng.choice(NEGATIVE)), 24)]


@pytest.mark.xfail(strict=True, reason="known defect: segments are screened against everyone, which holds them; "
                   "against everyone else this passes, but on the scenario family that change raised false roots "
                   "(factor shares) without raising recall, so it has not landed")
def test_a_dip_in_a_value_holding_half_of_everyone_is_found_against_the_rest():
    """Against everyone, which holds it, such a segment shows only half of its dip
    (below the minimum effect); against everyone else it shows all of it."""
    right = 0
    for seed in SEEDS:
        w = world(seed, _half_of_everyone)
        roots, _ = roots_of(w.table)
        right += [(r.segment, abs(r.change.index - 24) <= 1) for r in roots] == [(w.effects[0].seg, True)]
    assert right >= 4


def _rest_recovers(rng, labels, weights):
    """Everyone dips from period 12 on; everyone but one channel had dipped from
    period 4 and recovers at 24: against the rest, that channel looks worse at 24."""
    factor = str(rng.choice(NEGATIVE))
    kept = _largest_channel(labels, weights)["channel"]
    others = [Effect({"channel": value}, 0.3, factor, 4, end=24) for value in labels["channel"] if value != kept]
    return [Effect({}, 0.3, factor, 12), *others]


@pytest.mark.xfail(strict=True, reason="known defect: a change located against the reference is described on the "
                   "segment's own series over windows that can straddle the reference's own changes")
def test_a_segment_is_not_blamed_for_the_rest_recovering():
    """Its own series is flat from period 12 on: the change located against the rest
    at 24 is described between the rest's own changes, not back over period 12."""
    blamed = 0
    for seed in SEEDS:
        w = world(seed, _rest_recovers)
        kept = Segment.of(_largest_channel(w.table.labels, w.weights))
        detected = find_changes(w.table, AnalysisOptions(workers=1)).changes
        blamed += any(
            c.metric == "happiness" and c.segment == kept and c.change.delta < 0 and abs(c.change.index - 24) <= 2
            for c in detected
        )
    assert blamed == 0


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


def _co_starting(rng, labels, weights):
    pair = large_values(rng, labels, weights, ("country", "service"))
    generic, local = rng.choice(NEGATIVE, 2, replace=False)
    return [Effect({}, float(rng.uniform(0.2, 0.3)), str(generic), 22, end=28),
            Effect(pair, float(rng.uniform(0.5, 0.7)), str(local), 22)]


def test_a_generic_and_a_localized_dip_starting_together_are_two_roots_each_with_its_recovery():
    right = 0
    for seed in SEEDS:
        w = world(seed, _co_starting)
        generic, local = w.effects
        roots, result = roots_of(w.table)
        by_segment = {r.segment: r for r in roots}
        if set(by_segment) != {Segment(), local.seg}:
            continue
        g, l = by_segment[Segment()], by_segment[local.seg]
        g_details, l_details = result.roles[g.key].details, result.roles[l.key].details
        ok = (
            g.change.recovered_at is not None and l.change.recovered_at is None
            and g_details["scope"] == "mixed" and g_details["generic_part"] is not None
            and l_details["scope"] == "localized"
            # Each root names its own factor and only the segments carrying its own dip.
            and l_details["factors"][0]["factor"] == local.factor
            and g_details["factors"][0]["factor"] == generic.factor
            and [s["segment"] for s in l_details["segments"]] == [local.segment]
            and all(s["delta"] < 0 for s in g_details["segments"])
            and bool(l_details["suggestions"]) and bool(g_details["suggestions"])
        )
        right += bool(ok)
    assert right >= 4


def _second_dip(rng, labels, weights):
    factor = str(rng.choice(NEGATIVE))
    return [Effect({}, 0.25, factor, 10), Effect({}, 0.3, factor, 28)]


def test_a_second_dip_while_the_first_lasts_is_a_root_of_its_own():
    right = 0
    for seed in SEEDS:
        w = world(seed, _second_dip)
        roots, _ = roots_of(w.table)
        everyone = sorted(r.change.index for r in roots if not r.segment.items)
        right += len(everyone) == 2 and abs(everyone[0] - 10) <= 2 and abs(everyone[1] - 28) <= 2
    assert right >= 4
