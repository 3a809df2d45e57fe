"""Attribution's root/echo rules on random worlds (random sizes, effects and seeds)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from detectors import ChangeShape, detect_changes, metric_for
from monitor.analysis.aggregate import Segment, as_frame, grouping_cube
from monitor.analysis.attribution import MATCH_DAYS, AttributionOptions, attribute
from monitor.analysis.detect import (
    AnalysisOptions,
    DetectedChange,
    FoundBy,
    find_changes,
)
from tests.unit.planted_worlds import NEGATIVE, POSITIVE, Effect, large_values, world

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


def test_a_dip_in_a_value_holding_half_of_everyone_is_found_against_the_rest():
    """Against everyone, which holds it, such a segment shows only half of its dip
    (below the minimum effect) and the search misses it; the factor its unhappy cite
    locates it, and Happiness tested at that date is a finding. (Screening against
    everyone else instead found it too, but on the scenario family raised false
    roots 7 -> 9 in 40 worlds for one more dip found.)"""
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


def _praise_in_a_channel_after_a_dip(rng, labels, weights):
    return [Effect({}, 0.2, str(rng.choice(NEGATIVE)), 8),
            Effect(large_values(rng, labels, weights, ("channel",)), 0.4, POSITIVE, 24, improves=True)]


def test_segments_that_held_steady_while_another_improved_are_no_roots():
    """Everyone dips at 8 for good; praise rises in one channel at 24, and everyone
    with it. Against everyone each other channel then lost Happiness and praise,
    and its own series, described back over 8, fell: but it held steady from 8 on.
    The dip at 8 is everyone's only root; nothing got worse at 24 (4 wrong roots in
    the 6 worlds when the rest alone was the yardstick; one noisy pair, clearly worse
    by chance among the pairs, may still stand out against the rest's improvement)."""
    wrong = []
    for seed in range(121, 127):
        w = world(seed, _praise_in_a_channel_after_a_dip)
        roots, _ = roots_of(w.table, metric=None)
        wrong += [(seed, r.metric, r.segment.key(), r.change.index, round(r.change.delta, 1)) for r in roots
                  if r.segment.items or abs(r.change.index - 8) > 2]
    assert len(wrong) <= 1, wrong


def _praise_in_a_channel_weeks_after_a_dip(rng, labels, weights):
    return [Effect({}, 0.2, str(rng.choice(NEGATIVE)), 8),
            Effect(large_values(rng, labels, weights, ("channel",)), 0.4, POSITIVE, int(rng.integers(13, 19)),
                   improves=True)]


def test_segments_that_held_while_another_improved_weeks_after_a_dip_are_no_roots():
    """As above, with the praise 5-10 weeks after everyone's dip: the other channels'
    before window then holds the dip, and over it their own series fell. Whether a
    segment got worse itself is read since everyone's last change (10 worlds: 15
    wrong roots, nearly every channel that held, when read over the whole before
    window; 6 now: pairs' chance falls, and channels whose windows other changes cut
    short)."""
    wrong = []
    for seed in range(121, 131):
        w = world(seed, _praise_in_a_channel_weeks_after_a_dip)
        roots, _ = roots_of(w.table)
        wrong += [(seed, r.segment.key(), r.change.index, round(r.change.delta, 1)) for r in roots
                  if r.segment.items or abs(r.change.index - 8) > 2]
    assert len(wrong) <= 7, wrong


def _faint_slide_then_a_generic_dip(dims: tuple[str, ...]):
    def effects(rng, labels, weights):
        return [Effect(large_values(rng, labels, weights, dims), 0.15, str(rng.choice(NEGATIVE)), 6, ramp=8),
                Effect({}, 0.25, str(rng.choice(NEGATIVE)), 18)]
    return effects


def test_a_faint_slide_measured_where_it_ended_does_not_take_in_a_later_generic_dip():
    """A slide in a country or a pair from 6 to 14, too faint to stand out, is measured
    where it ended; everyone's dip at 18 falls in those windows. Everyone's change over
    them is that dip's: no generic root dated at the slide (20 worlds: 3 such roots
    when the windows' change of everyone was taken as the slide's)."""
    wrong = []
    for dims in (("country", "service"), ("country",)):
        for seed in range(101, 111):
            w = world(seed, _faint_slide_then_a_generic_dip(dims))
            roots, _ = roots_of(w.table)
            wrong += [(dims, seed, r.change.index, round(r.change.delta, 1)) for r in roots
                      if not r.segment.items and abs(r.change.index - 18) > 2]
    assert not wrong


def _slide_in_a_country(rng, labels, weights):
    return [Effect(large_values(rng, labels, weights, ("country",)), 0.35, str(rng.choice(NEGATIVE)), 14, ramp=14)]


def test_lost_time_dating_a_slide_weeks_before_happiness_folds_under_it():
    """A slope's start is fuzzy: lost time, noisier, dated a slide of the same
    respondents five weeks before Happiness did. The slopes overlap: one cause, one
    root (more than ``MATCH_DAYS`` apart, it stood alone)."""
    tried = folded = 0
    for seed in range(141, 147):
        w = world(seed, _slide_in_a_country)
        segment = w.effects[0].seg
        segments, cube = grouping_cube(w.table, ("country",))
        stats = as_frame(w.table, cube[segments.index(segment)])
        slides = {name: next((c for c in detect_changes(metric_for(name), stats)
                              if c.finding and c.shape is ChangeShape.GRADUAL), None)
                  for name in ("happiness", "lost_time")}
        if None in slides.values():
            continue
        happy, lost = slides["happiness"], slides["lost_time"]
        early = replace(lost, index=happy.index - 5, change_date=happy.change_date - pd.Timedelta(weeks=5))
        assert (happy.change_date - early.change_date).days > MATCH_DAYS
        detected = [DetectedChange("happiness", segment, happy), DetectedChange("lost_time", segment, early)]
        roles = attribute(w.table, detected, AttributionOptions()).roles
        tried += 1
        folded += roles[detected[1].key].root_key == detected[0].key
    assert tried >= 4 and folded == tried


def _short_dip_in_a_pair(rng, labels, weights):
    chosen = large_values(rng, labels, weights, ("country", "service"))
    return [Effect(chosen, 0.2, str(rng.choice(NEGATIVE)), 24, end=29)]


def test_a_short_dip_in_a_pair_is_found_where_its_factor_located_it():
    """Five weeks in a pair holding a tenth of the answers: searched over every date
    and pair, Happiness alone does not clear the bar (0 of 10 worlds); the factor
    its unhappy cite does, and Happiness tested at that date and over that stretch
    does; it recovers when the factor's stretch ends."""
    right, companions = 0, []
    for seed in range(101, 111):
        w = world(seed, _short_dip_in_a_pair)
        roots, _ = roots_of(w.table)
        right += any(r.segment == w.effects[0].seg and abs(r.change.index - 24) <= 1
                     and r.change.recovered_at is not None for r in roots)
        companions += [(r.known, f"factor:{w.effects[0].factor}") for r in roots if r.found_by is FoundBy.CORROBORATED]
    assert right >= 6
    # Those tested at the factor's date say so, and which factor located them.
    assert len(companions) >= 3 and all(known == planted for known, planted in companions)


def _unhappy_cite_more_in_a_country(rng, labels, weights):
    chosen = large_values(rng, labels, weights, ("country",))
    return [Effect(chosen, 0.8, str(rng.choice(NEGATIVE)), 24, end=32, cite_only=True)]


def test_a_factor_cited_more_without_more_unhappy_is_no_happiness_dip():
    """The other side of the rule above: the unhappy of a country cite a factor more
    for eight weeks, ratings unchanged. The factor's step is found; Happiness tested
    at its date is no finding (in none of 10 worlds)."""
    located = dips = 0
    for seed in range(101, 111):
        w = world(seed, _unhappy_cite_more_in_a_country)
        detected = find_changes(w.table, AnalysisOptions(workers=1)).changes
        country, factor = w.effects[0].seg, f"factor:{w.effects[0].factor}"
        located += any(c.metric == factor and c.segment == country and abs(c.change.index - 24) <= 1 for c in detected)
        dips += any(c.metric == "happiness" and abs(c.change.index - 24) <= 2 for c in detected)
    assert located >= 5  # the companion is there to be used
    assert dips == 0


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


def _brief_generic_with_a_lasting_dip_in_the_largest_channel(rng, labels, weights):
    generic, local = rng.choice(NEGATIVE, 2, replace=False)
    return [Effect({}, float(rng.uniform(0.2, 0.3)), str(generic), 22, end=24),
            Effect(_largest_channel(labels, weights), float(rng.uniform(0.15, 0.25)), str(local), 22)]


def test_a_lasting_dip_in_a_large_channel_under_a_brief_generic_one_is_a_root_of_the_channel():
    """Everyone's series breaks again when the generic part fades two weeks after the
    onset, while the channel (a third to a half of the answers) stays down. Searched
    on those two weeks, the channel went unseen or a noisy child of it was named (15
    of 20 worlds right); its segments are now searched up to the next change, above
    half of everyone's change over those same weeks (18 of 20)."""
    right = 0
    for seed in range(101, 121):
        w = world(seed, _brief_generic_with_a_lasting_dip_in_the_largest_channel, per_period=300)
        generic, local = w.effects
        roots, _ = roots_of(w.table)
        by_segment = {r.segment: r for r in roots}
        right += (
            set(by_segment) == {Segment(), local.seg}
            and by_segment[Segment()].change.recovered_at is not None
            and by_segment[local.seg].change.recovered_at is None
        )
    assert right >= 17


def _slow_decline_in_a_pair(rng, labels, weights):
    pair = large_values(rng, labels, weights, ("country", "service"))
    return [Effect(pair, float(rng.uniform(0.4, 0.6)), str(rng.choice(NEGATIVE)), 10, ramp=20)]


def test_a_slow_decline_is_rooted_where_it_ended_up():
    """A pair slides for 20 weeks. Its segments compared over the 8 weeks after the
    slide's first week saw a fraction of it, and the root went missing (11 of 20
    worlds right); compared where the slide ended, 15."""
    right = 0
    for seed in range(101, 121):
        w = world(seed, _slow_decline_in_a_pair)
        roots, _ = roots_of(w.table)
        decline = w.effects[0]
        right += any(r.segment == decline.seg and 8 <= r.change.index <= 30 for r in roots)
    assert right >= 14


def _slide_with_another_dip_on_its_slope(rng, labels, weights):
    country = large_values(rng, labels, weights, ("country",))
    others = [c for c in labels["country"] if c != country["country"]]
    elsewhere = {"country": str(rng.choice(others)), **large_values(rng, labels, weights, ("service",))}
    return [Effect(country, float(rng.uniform(0.3, 0.45)), str(rng.choice(NEGATIVE)), 8, ramp=26),
            Effect(elsewhere, float(rng.uniform(0.5, 0.7)), str(rng.choice(NEGATIVE)), 13)]


def test_a_slide_is_rooted_where_it_ended_up_though_another_segment_dips_on_its_slope():
    """A country slides for 26 weeks; another country's service dips in the 6th week of
    the slide. The slide's windows used to stop at that dip, on its slope, where too
    little of it showed to stand out (1 of the 4 slides below went missing; those
    that everyone's series also dated stay so). Its own segments are now compared
    where it ended, and only they are searched there: the other dip keeps its root."""
    eligible = rooted = dips = 0
    for seed in range(131, 161):
        w = world(seed, _slide_with_another_dip_on_its_slope)
        slide, dip = w.effects
        detected = find_changes(w.table, AnalysisOptions(workers=1)).changes
        result = attribute(w.table, detected, AttributionOptions())
        roots = [c for c in result.changes if c.metric == "happiness"
                 and (result.roles.get(c.key) is None or result.roles[c.key].root)]
        dips += any(r.segment == dip.seg and abs(r.change.index - 13) <= 2 for r in roots)
        assert not any(r.segment == dip.seg and r.change.index < 11 for r in roots)  # never dated on the slide
        own = [d.change for d in detected if d.metric == "happiness" and d.segment == slide.seg
               and d.change.shape is ChangeShape.GRADUAL and d.change.index < 13 <= d.change.end_index]
        everyone = [d.change for d in detected if d.metric == "happiness" and not d.segment.items]
        if own and not any(abs((e.change_date - own[0].change_date).days) <= MATCH_DAYS for e in everyone):
            eligible += 1
            rooted += any(r.segment == slide.seg and 4 <= r.change.index <= 34 for r in roots)
    assert eligible >= 4 and rooted == eligible
    assert dips >= 27  # 27 of 30 measured; the rest dated off by more than two weeks


def _co_starting_then_another_dip(rng, labels, weights):
    pair = large_values(rng, labels, weights, ("country", "service"))
    first, local, second = rng.choice(NEGATIVE, 3, replace=False)
    return [Effect({}, 0.25, str(first), 18, end=24), Effect(pair, float(rng.uniform(0.5, 0.7)), str(local), 18),
            Effect({}, 0.3, str(second), 26, end=34)]


def test_the_generic_part_recovers_before_the_next_dip_of_everyone():
    """The go-live's generic part is back two weeks before everyone's next dip: it
    recovered then (it was held open until a recovery could last 13 steps), the local
    part stays open, and the next dip is a root of its own."""
    right = 0
    for seed in SEEDS:
        w = world(seed, _co_starting_then_another_dip)
        first, local, second = w.effects
        roots, _ = roots_of(w.table)
        generic = [r for r in roots if not r.segment.items]
        located = [r for r in roots if r.segment == local.seg]
        onsets = sorted(w.table.period_start(w.table.first_period + r.change.index) for r in generic)
        right += (
            len(generic) == 2 and len(located) == 1 and located[0].change.recovered_at is None
            and generic[0].change.recovered_at is not None
            and abs(_offset(w.table, generic[0].change.recovered_at) - first.end) <= 2
            and abs(_offset(w.table, min(onsets)) - first.onset) <= 1
        )
    assert right >= 3  # 3 of 5 (one world merges the two dips, one finds no step back); 0 before


def _offset(table, day) -> int:
    """Periods from the table's first to ``day``'s."""
    return (pd.Timestamp(day) - pd.Timestamp(table.period_start(table.first_period))).days // 7


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


def _found_in_each_country(table):
    """Each country's Happiness changes as the detector describes them on its own
    series: what the search reports when everyone's own series is missed."""
    segments, cube = grouping_cube(table, ("country",))
    return [DetectedChange("happiness", segment, change, FoundBy.SEARCH)
            for row, segment in enumerate(segments)
            for change in detect_changes(metric_for("happiness"), as_frame(table, cube[row])) if change.finding]


def test_a_generic_dip_the_detector_saw_only_in_segments_is_rooted_on_everyone():
    """Everyone's change missed by the search (a crowded series, a searched bar), some
    of its countries found: nothing stands out, so the root is everyone's, never one
    of those countries with "scope: generic" beside its name."""
    right = 0
    for seed in SEEDS:
        w = world(seed, lambda rng, labels, weights: [Effect({}, 0.3, str(rng.choice(NEGATIVE)), 24)])
        detected = _found_in_each_country(w.table)
        assert detected
        result = attribute(w.table, detected, AttributionOptions())
        roots = [c for c in result.changes if result.roles.get(c.key) is None or result.roles[c.key].root]
        right += [r.segment for r in roots] == [Segment()] and result.roles[roots[0].key].details["scope"] == "generic"
    assert right >= 4


def test_a_small_dip_of_one_country_the_rest_did_not_share_stays_that_countrys():
    """A dip too small to single out among every segment, in one country only: the
    search found the country, the rest of everyone held, so the country is the
    place (localized), and no root anywhere says "generic" beside a segment."""
    right = 0
    for seed in SEEDS:
        w = world(seed, lambda rng, labels, weights: [
            Effect(large_values(rng, labels, weights, ("country",)), 0.08, str(rng.choice(NEGATIVE)), 24)])
        result = attribute(w.table, _found_in_each_country(w.table), AttributionOptions())
        roots = [c for c in result.changes if result.roles.get(c.key) is None or result.roles[c.key].root]
        scopes = {r.segment: result.roles[r.key].details["scope"] for r in roots}
        assert all(scope != "generic" for segment, scope in scopes.items() if segment.items)
        right += scopes == {w.effects[0].seg: "localized"}
    assert right >= 2  # 2 of 5 (the others' dips are within noise of the rest); 0 when dropped


def _slide_in_a_channel_and_a_dip_on_its_slope(rng, labels, weights):
    largest = _largest_channel(labels, weights)
    other = next(value for value in labels["channel"] if value != largest["channel"])
    return [Effect(largest, 0.35, str(rng.choice(NEGATIVE)), 8, ramp=28),
            Effect({"channel": other}, 0.3, str(rng.choice(NEGATIVE)), 11)]


def _worse_change(table, segment: Segment, near: int, shape: ChangeShape | None = None):
    """The detector's worse Happiness change on ``segment``'s own series nearest ``near``."""
    segments, cube = grouping_cube(table, tuple(name for name, _ in segment.items))
    stats = as_frame(table, cube[segments.index(segment)])
    changes = [c for c in detect_changes(metric_for("happiness"), stats)
               if c.finding and c.delta < 0 and (shape is None or c.shape is shape)]
    return min(changes, key=lambda c: abs(c.index - near), default=None)


def test_a_slide_that_shows_in_everyone_is_found_where_it_ended():
    """The largest channel (about half of everyone) slides from period 8 to 36;
    another channel dips at 11, on the slope. Everyone shows the slide too, dated a
    period after the channel's (as in report world 1435), and anchors the incident;
    its own windows stop at the other dip, where the channel had slid a tenth of
    the way. Its segments are searched where the slide ended: the channel is the
    slide's root (over everyone's windows it was no root at all)."""
    tried, right = 0, []
    for seed in range(161, 169):
        w = world(seed, _slide_in_a_channel_and_a_dip_on_its_slope)
        slide, dip = (e.seg for e in w.effects)
        changes = (_worse_change(w.table, Segment(), 8), _worse_change(w.table, slide, 8, ChangeShape.GRADUAL),
                   _worse_change(w.table, dip, 11))
        if None in changes or not changes[1].index < changes[2].index:
            continue
        everyone, sliding, dipping = changes
        lag = sliding.index + 1 - everyone.index
        everyone = replace(everyone, index=sliding.index + 1, change_date=sliding.change_date + pd.Timedelta(weeks=1),
                           end_index=sliding.end_index, end_date=sliding.end_date, shape=ChangeShape.GRADUAL)
        assert abs(lag) <= 8
        detected = [DetectedChange("happiness", segment, change)
                    for segment, change in zip((Segment(), slide, dip), (everyone, sliding, dipping), strict=True)]
        roles = attribute(w.table, detected, AttributionOptions()).roles
        tried += 1
        role = roles.get(detected[1].key)  # None: no finding at all
        right.append(role is not None and role.root)
    assert tried >= 5 and sum(right) >= tried - 1, right
