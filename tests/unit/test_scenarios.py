"""The scenario family: each seed's planted truth is really in its data, the worlds stay
inside their documented sizes, and factors are offered by rating band."""

from __future__ import annotations

import csv
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from monitor.dev.scenarios import (
    NEGATIVE_FACTORS,
    NEUTRAL_FACTORS,
    POSITIVE_FACTORS,
    EffectClass,
    Scenario,
    demo_scenario,
    draw_scenario,
)
from monitor.ingest.readers import CANONICAL_COLUMNS

SEEDS = range(2, 8)  # natural draws, 20k-170k responses each


@pytest.fixture(scope="module")
def worlds() -> list[Scenario]:
    return [draw_scenario(seed) for seed in SEEDS]


def one(cls: EffectClass, *, volume: float = 2500, weeks: int = 60, first_seed: int = 0) -> Scenario:
    """The first seed whose scenario holds an effect of ``cls`` (drawing can skip one without room)."""
    for seed in range(first_seed, first_seed + 20):
        scenario = draw_scenario(seed, classes=[cls], n_effects=1, volume=volume, weeks=weeks)
        if scenario.effects:
            return scenario
    raise AssertionError(f"no {cls} effect in 20 seeds")


def happiness(ratings: pd.Series) -> float:
    return 100.0 * (float((ratings >= 9).mean()) - float((ratings <= 6).mean()))


def split(scenario: Scenario, segment: dict[str, str], onset, until=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The segment's responses in the 12 weeks before onset and from onset to ``until`` (8 weeks at most)."""
    frame = scenario.responses
    until = until or onset + timedelta(weeks=8)
    before = frame[scenario.mask(segment, onset - timedelta(weeks=12), onset)]
    after = frame[scenario.mask(segment, onset, min(until, onset + timedelta(weeks=8)))]
    return before, after


def test_same_seed_same_world_and_seeds_differ() -> None:
    a, b, c = draw_scenario(3), draw_scenario(3), draw_scenario(4)
    pd.testing.assert_frame_equal(a.responses, b.responses)
    assert a.effects == b.effects and a.dimensions == b.dimensions
    assert a.dimension_names != c.dimension_names or len(a.responses) != len(c.responses)


def test_world_sizes(worlds: list[Scenario]) -> None:
    for scenario in worlds:
        assert 3 <= len(scenario.dimensions) <= 8
        assert "assignment_group" in scenario.dimension_names
        for dim in scenario.dimensions:
            assert 2 <= len(dim.levels) <= 40, dim.name  # old and new names, both eras of groups included
        assert 52 <= scenario.weeks <= 156
        assert 150 <= scenario.base_volume <= 3000
        assert scenario.start.weekday() == 0
        assert scenario.start <= scenario.go_live < scenario.end
        counts = scenario.weekly_counts()
        assert counts.sum() == len(scenario.responses)
        # Holidays: some week has far fewer responses than the median (Christmas, summer).
        assert counts.min() < 0.6 * np.median(counts)
        n_planted = len({(e.group or id(e)) for e in scenario.effects})
        assert n_planted <= 6


def test_csv_is_canonical(tmp_path, worlds: list[Scenario]) -> None:
    scenario = worlds[0]
    path = scenario.write_csv(tmp_path / "r.csv")
    with path.open(encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    assert header[: len(CANONICAL_COLUMNS)] == list(CANONICAL_COLUMNS)
    assert header[len(CANONICAL_COLUMNS):] == list(scenario.dimension_names)
    frame = scenario.responses
    assert frame["response_id"].is_unique
    assert frame["rating"].between(0, 10).all()
    assert frame["submitted_at"].str.endswith("+00:00").all()
    assert pd.to_datetime(frame["submitted_at"]).is_monotonic_increasing


def test_factors_are_offered_by_rating_band(worlds: list[Scenario]) -> None:
    for scenario in worlds[:4]:
        frame = scenario.responses
        picked = frame["factors"].str.split(";")
        counts = picked.map(lambda names: len([n for n in names if n]))
        assert counts.max() <= 3 and (counts == 0).any()
        for band, offered in (((0, 6), NEGATIVE_FACTORS), ((7, 8), NEUTRAL_FACTORS), ((9, 10), POSITIVE_FACTORS)):
            rows = picked[frame["rating"].between(*band)]
            names = {n for names in rows for n in names if n}
            assert names <= set(offered), band


def test_org_change_at_go_live(worlds: list[Scenario]) -> None:
    for scenario in worlds:
        frame = scenario.responses
        live = scenario.mask({}, scenario.go_live)
        groups = frame["assignment_group"]
        assert not groups[live].str.startswith("IH-").any()
        assert not groups[~live].str.startswith("MSP-").any()
        ended = scenario.ended_values()
        for dim, values in ended.items():
            for value, end in values.items():
                assert not scenario.mask({dim: value}, end).any(), (dim, value)


def test_nested_segments_have_the_same_respondents() -> None:
    scenario = next(s for s in (draw_scenario(seed) for seed in range(30)) if "location" in s.dimension_names)
    frame = scenario.responses
    assert frame.groupby("location")["country"].nunique().max() == 1
    location = frame["location"].value_counts().index[0]
    country = frame.loc[frame["location"] == location, "country"].iloc[0]
    probe = one(EffectClass.LOCALIZED)  # any effect for its window; masks are what is compared
    effect = probe.effects[0]
    from dataclasses import replace

    planted = replace(effect, segment={"location": location}, onset=scenario.start, recovery=None)
    assert scenario.same_respondents({"location": location, "country": country}, planted)
    assert not scenario.same_respondents({"country": country}, planted) or \
        frame.loc[frame["country"] == country, "location"].nunique() == 1


@pytest.mark.parametrize("cls", [EffectClass.LOCALIZED, EffectClass.PAIR, EffectClass.TRIPLE, EffectClass.GENERIC])
def test_planted_dip_is_in_the_data(cls: EffectClass) -> None:
    scenario = one(cls)
    effect = scenario.effects[0]
    assert len(effect.segment) == {"localized": 1, "pair": 2, "triple": 3, "generic": 0}[cls]
    assert effect.size < 0 and effect.factor in NEGATIVE_FACTORS and effect.lost_time_factor > 1
    before, after = split(scenario, effect.segment, effect.onset, effect.recovery)
    # Truth: the respondents and the weekly volume after onset.
    first, end = effect.window(scenario.end)
    rows = scenario.mask(effect.segment, first, end)
    assert effect.respondents == frozenset(scenario.responses["response_id"][rows])
    assert effect.per_week > 0
    if len(after) < 400:
        return  # a small segment: the truth is recorded, the drop is too noisy to check here
    se = 200 / np.sqrt(min(len(before), len(after)))
    assert happiness(after["rating"]) - happiness(before["rating"]) == pytest.approx(effect.size, abs=3 * se + 3)
    share = lambda f: f["factors"].str.contains(effect.factor, regex=False).mean()  # noqa: E731
    assert share(after) > share(before) + 0.03
    assert after["lost_time_minutes"].mean() > 1.1 * before["lost_time_minutes"].mean()
    if effect.segment:  # the rest did not move
        outside = scenario.responses[~scenario.mask(effect.segment)]
        pre = outside[(pd.to_datetime(outside["submitted_at"]) < pd.Timestamp(effect.onset, tz="UTC"))].tail(3000)
        post = outside[(pd.to_datetime(outside["submitted_at"]) >= pd.Timestamp(effect.onset, tz="UTC"))].head(3000)
        assert abs(happiness(post["rating"]) - happiness(pre["rating"])) < 8


def test_gradual_decline_ramps() -> None:
    scenario = one(EffectClass.GRADUAL, weeks=100)
    effect = scenario.effects[0]
    assert effect.ramp_end is not None and 6 <= (effect.ramp_end - effect.onset).days // 7 <= 30
    days = np.array([(effect.onset - scenario.start).days + d for d in (0, 7, 10_000)])
    strength = effect.intensity(days, scenario.start)
    assert strength[0] == 0 and 0 < strength[1] < 1 and strength[2] == 1


def test_co_starting_dips_share_onset_not_recovery() -> None:
    scenario = one(EffectClass.CO_STARTING, weeks=100)
    generic, local = sorted(scenario.effects, key=lambda e: e.part)
    assert (generic.part, local.part) == ("generic", "local") and generic.group == local.group
    assert generic.segment == {} and local.segment and generic.onset == local.onset
    assert generic.recovery is not None and generic.recovery != local.recovery


def test_variance_change_keeps_happiness() -> None:
    scenario = one(EffectClass.VARIANCE, volume=3000)
    effect = scenario.effects[0]
    before, after = split(scenario, effect.segment, effect.onset)
    passive = lambda f: f["rating"].between(7, 8).mean()  # noqa: E731
    assert passive(after) < passive(before) * (1 - effect.size / 2)
    if min(len(before), len(after)) > 2000:
        assert happiness(after["rating"]) == pytest.approx(happiness(before["rating"]), abs=5)


def test_volume_drop_only_drops_volume() -> None:
    scenario = next(s for seed in range(40) if (s := one(EffectClass.VOLUME_DROP, volume=3000, first_seed=seed))
                    .effects[0].segment)
    effect = scenario.effects[0]
    share = lambda first, end: scenario.mask(effect.segment, first, end).sum() / scenario.mask({}, first, end).sum()  # noqa: E731
    before = share(effect.onset - timedelta(weeks=8), effect.onset)
    after = share(effect.onset, effect.onset + timedelta(weeks=4))
    expected = (1 - effect.size) / (1 - effect.size * before)  # the segment's share shrinks
    assert after / before == pytest.approx(expected, abs=0.15)
    assert effect.factor is None
    ratings = scenario.responses["rating"]
    assert happiness(ratings[scenario.mask(effect.segment, effect.onset, effect.onset + timedelta(weeks=8))]) == \
        pytest.approx(happiness(ratings[scenario.mask(effect.segment, None, effect.onset)]), abs=12)


def test_improvement_raises_a_positive_factor() -> None:
    scenario = one(EffectClass.IMPROVEMENT)
    effect = scenario.effects[0]
    assert effect.size > 0 and effect.factor in POSITIVE_FACTORS


def test_every_class_can_be_drawn() -> None:
    for cls in EffectClass:
        assert one(cls, volume=300).effects[0].cls is cls


def test_demo_is_one_case() -> None:
    scenario = demo_scenario(n=8_000)
    assert [e.cls for e in scenario.effects] == [EffectClass.IMPROVEMENT, EffectClass.GENERIC, EffectClass.PAIR]
    assert scenario.effects[2].segment == {"country": "Finland", "service": "SAP"}
    assert len(scenario.responses) == 8_000 and all(e.respondents for e in scenario.effects)
