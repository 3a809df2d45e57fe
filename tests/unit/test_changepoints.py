"""Change-point detection: planted shifts, quiet on noise, robust to gaps and outliers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from detectors import (
    Direction,
    default_penalty,
    detect_changes,
    find_change_points,
    is_finding,
    metric_for,
)
from detectors.calibration import change_counts, optimal_costs
from detectors.changepoints import (
    SLOPE_PENALTY,
    ChangeSpan,
    Segment,
    SegmentShape,
    _springs_back,
    optimal_partition,
    prepare_series,
)
from detectors.costs import segment_costs

HAPPINESS = metric_for("happiness")


def happiness_stats(rng: np.random.Generator, levels: list[tuple[int, float]], n: np.ndarray | int) -> pd.DataFrame:
    """Weekly statistics of simulated responses; ``levels`` = [(weeks, happiness), ...]."""
    return stats_at(rng, np.concatenate([np.full(weeks, level) for weeks, level in levels]), n)


def stats_at(rng: np.random.Generator, happiness: np.ndarray, n: np.ndarray | int) -> pd.DataFrame:
    """Weekly statistics of simulated responses at a true Happiness per week."""
    h = np.asarray(happiness, dtype=float) / 100.0
    sizes = np.broadcast_to(np.asarray(n), h.shape)
    passive = 0.22 * (1.0 - h * h)
    promoter = (1.0 - passive + h) / 2.0
    counts = np.array(
        [rng.multinomial(k, [p, q, 1.0 - p - q]) for k, p, q in zip(sizes, promoter, passive, strict=True)]
    )
    index = pd.date_range("2024-01-01", periods=h.size, freq="7D")
    return pd.DataFrame({"n": sizes, "promoters": counts[:, 0], "detractors": counts[:, 2]}, index=index)


@pytest.mark.parametrize("at", [20, 30, 45])
def test_finds_planted_shift_at_the_right_index(at: int) -> None:
    rng = np.random.default_rng(at)
    x = rng.normal(size=60)
    x[at:] += 3.0
    (found,) = find_change_points(x)
    assert abs(found - at) <= 1


def test_finds_two_shifts() -> None:
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(0, 1, 40), rng.normal(4, 1, 30), rng.normal(1, 1, 40)])
    found = find_change_points(pd.Series(x))
    assert len(found) == 2 and abs(found[0] - 40) <= 1 and abs(found[1] - 70) <= 1


def test_quiet_on_noise() -> None:
    """500 series-years of noise: the calibration promises ~1 false alarm per 100 (Poisson slack to 6)."""
    rng = np.random.default_rng(2)
    false_alarms = sum(len(find_change_points(rng.normal(size=52))) for _ in range(500))
    assert false_alarms <= 6


def test_quiet_on_noise_with_heterogeneous_weights() -> None:
    rng = np.random.default_rng(3)
    false_alarms = 0
    for _ in range(300):  # 460 series-years
        weights = rng.integers(1, 300, size=80).astype(float)
        false_alarms += len(find_change_points(rng.normal(size=80) * 7.0 / np.sqrt(weights), weights))
    assert false_alarms <= 6


def test_missing_values_keep_original_positions() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=60)
    x[30:] += 4.0
    x[[3, 10, 28, 29, 30, 31]] = np.nan
    (found,) = find_change_points(x.tolist())
    assert found == 32  # the first observed period at the new level
    assert find_change_points([np.nan] * 20) == []
    assert find_change_points([1.0, np.nan, 2.0]) == []


def test_single_huge_outlier_is_not_a_change() -> None:
    rng = np.random.default_rng(5)
    for position in (0, 1, 25, 58, 59):
        x = rng.normal(size=60)
        x[position] = 50.0
        assert find_change_points(x) == []


def test_outliers_do_not_hide_or_create_changes() -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(size=80)
    x[40:] += 3.0
    x[[5, 17, 33, 52, 70]] += [15.0, -12.0, 20.0, -25.0, 18.0]
    (found,) = find_change_points(x)
    assert abs(found - 40) <= 1


def test_never_returns_zero_or_len() -> None:
    rng = np.random.default_rng(7)
    for _ in range(100):
        size = int(rng.integers(4, 40))
        x = rng.normal(size=size) + 5.0 * (np.arange(size) >= rng.integers(0, size))
        found = find_change_points(x, min_size=int(rng.integers(1, 4)))
        assert found == sorted(set(found))
        assert all(0 < i < size for i in found)


def test_weights_matter() -> None:
    """A shift carried only by tiny-n weeks is not reported; the same shift with large n is."""
    rng = np.random.default_rng(8)
    sizes = np.full(60, 300.0)
    values = rng.normal(size=60) * 10.0 / np.sqrt(sizes)
    shifted = values.copy()
    shifted[40:] += 3.0  # a ~5 SE shift per 300-response week
    assert find_change_points(shifted, sizes) == [40]
    tiny = sizes.copy()
    tiny[40:] = 3.0  # the same values, now each from 3 responses: within noise
    shifted[40:] = 3.0 + rng.normal(size=20) * 10.0 / np.sqrt(3.0)
    assert find_change_points(shifted, tiny) == []


def test_search_matches_the_dynamic_programme_used_for_calibration() -> None:
    """The segmentation's optimal partition picks as many changes as the calibration's DP.

    find_change_points may add a step where one beats a sloped segment's line
    (_steps_over_lines), never remove one.
    """
    rng = np.random.default_rng(9)
    for _ in range(60):
        size = int(rng.integers(20, 90))
        x = rng.normal(size=size) + rng.choice([0.0, 1.5, 3.0]) * (np.arange(size) >= size // 2)
        weights = rng.integers(1, 50, size).astype(float)
        penalty = float(rng.uniform(8.0, 20.0))
        expected = change_counts(optimal_costs(x, weights), penalty)
        prepared = prepare_series(x, weights)
        costs = segment_costs(prepared.values, prepared.weights, prepared.positions, slope_penalty=SLOPE_PENALTY)
        costs.cost[np.subtract.outer(np.arange(size + 1), np.arange(size + 1)).T < 2] = np.inf
        assert len(optimal_partition(costs.cost, penalty)) - 1 == expected
        assert len(find_change_points(x, weights, penalty=penalty)) >= expected


def test_default_penalty_is_stricter_for_short_series() -> None:
    assert default_penalty(26) > default_penalty(52) > default_penalty(160) > 0


def test_detect_changes_describes_a_dip_and_its_recovery() -> None:
    rng = np.random.default_rng(1)
    stats = happiness_stats(rng, [(30, 60.0), (15, 30.0), (25, 60.0)], n=100)
    stats.iloc[5] = 0  # an empty week, as the monitor reindexes gaps
    dip, recovery = detect_changes(HAPPINESS, stats)
    assert abs(dip.index - 30) <= 1 and dip.change_date == stats.index[dip.index]
    assert dip.direction is Direction.WORSE and dip.finding
    assert dip.ci_high < 0 and dip.p_value < 1e-6
    assert dip.before.value == pytest.approx(HAPPINESS.estimate(stats.iloc[: dip.index].sum()).value)
    assert dip.n_before == stats["n"].iloc[: dip.index].sum()
    assert dip.recovered_at == recovery.change_date
    assert recovery.direction is Direction.BETTER and not recovery.finding
    assert recovery.recovered_at is None


def test_a_two_week_dip_is_found_and_a_pair_of_wild_weeks_is_not() -> None:
    """A fortnight 26 points down at a thousand answers a week (10 sampling SDs each
    week) is a dip and a rise back: the winsorising that keeps one or two wild weeks
    from buying a change point had clipped both weeks to its bound. Two consecutive
    weeks 3 SDs off on the same side are still clipped."""
    for seed in range(5):
        rng = np.random.default_rng(seed)
        stats = happiness_stats(rng, [(40, 33.0), (2, 7.0), (30, 33.0)], n=1000)
        dip, recovery = detect_changes(HAPPINESS, stats)
        assert (dip.index, recovery.index) == (40, 42) and dip.finding
        assert dip.direction is Direction.WORSE and recovery.direction is Direction.BETTER
    x = np.random.default_rng(9).normal(size=70)
    x[[30, 31]] = [3.0, 3.0]
    assert find_change_points(x) == []


def test_a_dip_on_tiny_samples_is_not_a_finding() -> None:
    rng = np.random.default_rng(11)
    sizes = np.full(40, 200)
    sizes[36:] = 3  # the last four weeks have three responses each
    stats = happiness_stats(rng, [(36, 60.0), (4, -100.0)], n=sizes)
    changes = detect_changes(HAPPINESS, stats)
    assert changes and changes[-1].direction is Direction.WORSE
    assert changes[-1].n_after == 12
    assert not changes[-1].finding
    assert is_finding(changes[-1], HAPPINESS, min_n=10)


def test_small_effect_is_a_change_but_not_a_finding() -> None:
    rng = np.random.default_rng(12)
    stats = happiness_stats(rng, [(40, 60.0), (40, 54.0)], n=2000)
    (change,) = detect_changes(HAPPINESS, stats)
    assert change.direction is Direction.WORSE and change.ci_high < 0
    assert not change.finding  # 6 points is below the 10-point default
    assert is_finding(change, HAPPINESS, min_effect=5.0)


def test_relative_minimum_effect_for_volume() -> None:
    rng = np.random.default_rng(13)
    counts = np.concatenate([rng.poisson(100, 40), rng.poisson(60, 20)])
    stats = pd.DataFrame({"n": counts}, index=pd.date_range("2024-01-01", periods=60, freq="7D"))
    (drop,) = detect_changes(metric_for("volume"), stats)
    assert abs(drop.index - 40) <= 1 and drop.finding  # -40% beats the 30% default
    assert not is_finding(drop, metric_for("volume"), min_effect=0.5)


def test_a_holiday_lull_at_the_end_of_a_slope_is_no_volume_change_but_a_held_halving_is() -> None:
    """Responses drift down through the autumn, halve over the two Christmas weeks and
    come back in January: the lull ends a sloped stretch, and read as a slide it was a
    halving of the volume, held for none of the four weeks a volume change needs. Six
    weeks at half the volume are one."""
    volume = metric_for("volume")
    lulls = halvings = 0
    for seed in range(10):
        rng = np.random.default_rng(seed)
        level = np.concatenate([np.linspace(1700, 1500, 10), [800, 700], np.full(40, 1650)])
        stats = pd.DataFrame({"n": rng.poisson(level)}, index=pd.date_range("2023-10-30", periods=52, freq="7D"))
        lulls += any(c.finding for c in detect_changes(volume, stats, min_size=4, min_effect=0.5))
        level[20:26] = 800
        stats = pd.DataFrame({"n": rng.poisson(level)}, index=pd.date_range("2023-10-30", periods=52, freq="7D"))
        halvings += any(c.finding and abs(c.index - 20) <= 1 for c in detect_changes(volume, stats, min_size=4, min_effect=0.5))
    assert lulls == 0 and halvings == 10


def test_a_holiday_lull_a_few_weeks_after_the_first_response_is_no_volume_change() -> None:
    """The data start in November; responses thin out over Christmas (a week at 90%,
    two below half) and are back in January. A slope onto the two holiday weeks came
    out as a volume slide in 5 runs of 20: the level jumps back within the four weeks
    a volume change needs, wherever the slide came from."""
    volume = metric_for("volume")
    lulls = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        level = np.concatenate([[2000], np.full(6, 2350), [2100, 880, 1050], np.full(60, 2350)])
        stats = pd.DataFrame({"n": rng.poisson(level)}, index=pd.date_range("2023-11-06", periods=level.size, freq="7D"))
        lulls += any(c.finding for c in detect_changes(volume, stats, min_size=4, min_effect=0.5))
    assert lulls == 0


def _stretch(start: int, end: int, level: float, slope: float = 0.0) -> Segment:
    shape = SegmentShape.LINEAR if slope else SegmentShape.FLAT
    return Segment(start, end, shape, level, slope, start, end - 1, 1.0, 1.0)


def test_a_slide_is_a_lull_only_when_the_level_jumps_back_by_half_its_depth() -> None:
    """The volume of everyone halves for eight weeks and climbs back over five; the
    fitted climb overshoots the level it joins by a quarter of its rise. Read as a
    jump back, the climb was dropped, the halving was then measured against the
    recovered weeks and was no finding (a planted drop missed in 200 worlds)."""
    lull = (_stretch(0, 50, 2350.0), _stretch(50, 53, 2350.0, -430.0), _stretch(53, 55, 1050.0), _stretch(55, 90, 2350.0))
    assert _springs_back(lull, ChangeSpan(50, 53), min_size=4)
    climb = (_stretch(0, 50, 1450.0), _stretch(50, 57, 667.0), _stretch(57, 66, 360.0, 152.0), _stretch(66, 82, 1497.0))
    assert not _springs_back(climb, ChangeSpan(60, 65), min_size=4)


def test_quiet_on_null_survey_series() -> None:
    rng = np.random.default_rng(14)
    false_alarms = 0
    for _ in range(40):
        sizes = rng.poisson(rng.choice([5, 30, 300]), 80)
        false_alarms += len(detect_changes(HAPPINESS, happiness_stats(rng, [(80, 52.0)], n=sizes)))
    assert false_alarms <= 1


def _ar1(rng: np.random.Generator, phi: float, sd: float, size: int) -> np.ndarray:
    x = np.empty(size)
    x[0] = rng.normal(0.0, sd)
    for i in range(1, size):
        x[i] = phi * x[i - 1] + rng.normal(0.0, sd * np.sqrt(1.0 - phi * phi))
    return x


def test_short_dips_beside_a_drift_are_judged_at_their_sampling_noise() -> None:
    """Two dips of 4-5 weeks at 470 answers a week, a slow drift between them: the
    series' block noise estimate reads the dips as noise (~2.5x sampling) and missed
    one of them in half the runs; ``survey_noise`` sees both every time."""
    level = np.full(78, 40.0)
    level[23:27] -= 25.0
    level[27:] -= np.linspace(0.0, 8.0, 51)
    level[65:70] -= 20.0
    found = 0
    for seed in range(10):
        rng = np.random.default_rng(seed)
        dips = [c.index for c in detect_changes(HAPPINESS, stats_at(rng, level, 470)) if c.finding]
        found += any(abs(i - 23) <= 1 for i in dips) and any(abs(i - 65) <= 1 for i in dips)
    assert found >= 9


def test_every_dip_is_found_on_a_series_crowded_with_changes() -> None:
    """An improvement and three dips (two fading back, one lasting) in 58 weeks at
    ~780 answers a week: read straight from the differences, the noise came out at
    4x sampling and one change of five was found (all three dips: 0 runs in 20).
    Where the data support the lower noise reading, each dip is found at its week."""
    level = np.full(58, 35.0)
    level[23:] += 13.0
    level[29:32] -= [22.0, 18.0, 12.0]
    level[39:] -= 35.0
    level[43:] += 15.0
    level[47:53] -= 25.0
    level[53:56] -= [15.0, 8.0, 3.0]
    dips = (29, 39, 47)
    found = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        worse = [c.index for c in detect_changes(HAPPINESS, stats_at(rng, level, 780)) if c.finding and c.delta < 0]
        found += all(any(abs(i - dip) <= 1 for i in worse) for dip in dips)
    assert found >= 12  # 14 of 20 today


def test_a_dip_in_a_short_history_is_not_read_as_autocorrelated_wander() -> None:
    """An MSP group's first 30 weeks at 330 answers a week, 20 points down for five
    of them. Weighed at the detector's own penalty per change (family of 11 groups),
    the white-noise reading lost to AR(1) wander at 2.7x sampling: 7 runs of 20 found
    the dip; weighed by BIC, 15."""
    level = np.full(30, 15.0)
    level[14:19] -= 20.0
    found = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        changes = detect_changes(HAPPINESS, stats_at(rng, level, 330), penalty=default_penalty(30) + 2.0 * np.log(11))
        found += any(c.finding and c.delta < 0 and abs(c.index - 14) <= 1 for c in changes)
    assert found >= 13


def test_quiet_on_survey_series_with_autocorrelated_wander() -> None:
    """Week-to-week wander beyond sampling (AR(1), phi 0.6, 3 points) is noise, not
    change: ``survey_noise`` corrects its short-range scale for the autocorrelation."""
    findings = 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        n = rng.poisson(rng.choice([30, 100, 300, 1000]), 104).clip(1)
        findings += sum(c.finding for c in detect_changes(HAPPINESS, stats_at(rng, 30.0 + _ar1(rng, 0.6, 3.0, 104), n)))
    assert findings <= 4  # 400 series-years: the calibrated 1 per 100


@pytest.mark.xfail(
    strict=True,
    reason="known defect: block differences straddling real changes inflate noise_scale (see its docstring)",
)
def test_two_clear_steps_are_two_changes_not_one_trend() -> None:
    # Weekly Happiness 40 -> 5 -> -28 at ~780 answers a week (SE ~3.2 points).
    level = np.repeat([40.0, 5.0, -28.0], [10, 18, 16])
    found = 0
    for seed in range(10):
        values = level + np.random.default_rng(seed).normal(0.0, 3.2, level.size)
        starts = find_change_points(values, np.full(level.size, 1.0 / 3.2**2))
        found += len(starts) == 2 and abs(starts[0] - 10) <= 1 and abs(starts[1] - 28) <= 1
    assert found == 10
