"""Metric values, intervals and comparisons: hand-computed cases and coverage by simulation."""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest

from detectors import (
    Direction,
    lost_time_summary,
    metric_for,
    pool,
    pool_ranges,
    pool_segments,
)

FACTOR = "Lack of business knowledge"


def happiness_totals(promoters: int, passives: int, detractors: int) -> dict[str, float]:
    return {"n": promoters + passives + detractors, "promoters": promoters, "detractors": detractors}


def lost_time_totals(minutes: np.ndarray) -> dict[str, float]:
    logs = np.log1p(minutes)
    return {
        "n": len(minutes),
        "lt_n": len(minutes),
        "lt_sum": minutes.sum(),
        "lt_sumsq": (minutes**2).sum(),
        "lt_logsum": logs.sum(),
        "lt_logsumsq": (logs**2).sum(),
    }


def weekly_stats() -> pd.DataFrame:
    """Three weeks, the middle one empty, as the monitor reindexes gaps."""
    index = pd.date_range("2024-01-01", periods=3, freq="7D")
    return pd.DataFrame(
        {
            "n": [10, 0, 4],
            "promoters": [5, 0, 4],
            "detractors": [2, 0, 0],
            "lt_n": [2, 0, 1],
            "lt_sum": [30.0, 0.0, 60.0],
            "lt_sumsq": [500.0, 0.0, 3600.0],
            "lt_logsum": [np.log1p(10) + np.log1p(20), 0.0, np.log1p(60)],
            "lt_logsumsq": [np.log1p(10) ** 2 + np.log1p(20) ** 2, 0.0, np.log1p(60) ** 2],
            f"f:{FACTOR}": [3, 0, 0],
        },
        index=index,
    )


def test_happiness_hand_computed() -> None:
    est = metric_for("happiness").estimate(happiness_totals(5, 3, 2))
    assert est.value == pytest.approx(30.0)
    assert est.n == 10
    assert est.ci_low < 30.0 < est.ci_high
    # Adjusted Wald: p = 5.75/13, d = 2.75/13, centre 23.08, se 100 * sqrt((p + d - (p - d)^2) / 13)
    p, d = 5.75 / 13, 2.75 / 13
    se = 100 * math.sqrt((p + d - (p - d) ** 2) / 13)
    assert est.ci_low == pytest.approx(100 * (p - d) - 1.959964 * se, abs=1e-4)


def test_happiness_small_samples_stay_in_range() -> None:
    happiness = metric_for("happiness")
    all_promoters = happiness.estimate(happiness_totals(3, 0, 0))
    assert all_promoters.value == 100.0
    assert all_promoters.ci_high == 100.0
    assert -100.0 <= all_promoters.ci_low < 60.0  # three answers cannot pin the score down
    all_detractors = happiness.estimate(happiness_totals(0, 0, 1))
    assert all_detractors.value == -100.0 and all_detractors.ci_low == -100.0


def test_empty_period_gives_nan_not_error() -> None:
    for name in ("happiness", "lost_time", f"factor:{FACTOR}"):
        metric = metric_for(name)
        est = metric.estimate(weekly_stats().iloc[1])
        assert math.isnan(est.value) and math.isnan(est.ci_low) and est.n == 0
        values, variances, n = metric.per_period(weekly_stats())
        assert math.isnan(values[1]) and math.isnan(variances[1]) and n[1] == 0
        assert np.isfinite(values[[0, 2]]).all()
    volume = metric_for("volume").estimate(weekly_stats().iloc[1])
    assert volume.value == 0.0 and volume.ci_low == 0.0  # no responses is a volume, not a gap


def test_per_period_variance_is_positive_for_degenerate_weeks() -> None:
    """Four promoters out of four must not claim zero variance (it would swamp the series)."""
    happiness = metric_for("happiness")
    _, variances, _ = happiness.per_period(weekly_stats())
    assert variances[2] > 0
    assert (happiness.pooled_variance(weekly_stats())[[0, 2]] > 0).all()


@pytest.mark.parametrize("n, probs", [(30, (0.5, 0.3, 0.2)), (30, (0.8, 0.15, 0.05)), (10, (0.4, 0.3, 0.3))])
def test_happiness_interval_coverage(n: int, probs: tuple[float, float, float]) -> None:
    rng = np.random.default_rng(1)
    counts = rng.multinomial(n, probs, size=2000)
    totals = pd.DataFrame({"n": n, "promoters": counts[:, 0], "detractors": counts[:, 2]})
    est = metric_for("happiness").estimate_frame(totals)
    truth = 100 * (probs[0] - probs[2])
    coverage = ((est["ci_low"] <= truth) & (truth <= est["ci_high"])).mean()
    assert 0.92 <= coverage <= 0.98


def test_estimate_frame_matches_scalar_estimates() -> None:
    totals = pd.DataFrame([happiness_totals(5, 3, 2), happiness_totals(0, 0, 0), happiness_totals(60, 30, 10)])
    frame = metric_for("happiness").estimate_frame(totals)
    for i, row in totals.iterrows():
        scalar = metric_for("happiness").estimate(row)
        np.testing.assert_allclose(frame.loc[i, ["value", "ci_low", "ci_high"]].to_numpy(float),
                                   [scalar.value, scalar.ci_low, scalar.ci_high])


def test_happiness_difference() -> None:
    happiness = metric_for("happiness")
    delta = happiness.compare(happiness_totals(60, 30, 10), happiness_totals(40, 30, 30))
    assert delta.delta == pytest.approx(-40.0)
    assert delta.ci_high < 0 and delta.p_value < 0.001
    assert happiness.direction(delta.delta) is Direction.WORSE
    assert (delta.n_before, delta.n_after) == (100, 100)
    wider = happiness.compare(happiness_totals(60, 30, 10), happiness_totals(40, 30, 30), design_effect=4.0)
    assert wider.ci_high - wider.ci_low == pytest.approx(2 * (delta.ci_high - delta.ci_low), rel=0.05)
    assert wider.before.n == 100  # the design effect widens intervals, it does not lose responses


def test_happiness_difference_coverage() -> None:
    rng = np.random.default_rng(2)
    happiness = metric_for("happiness")
    covered = 0
    for _ in range(400):
        b, a = rng.multinomial(40, (0.6, 0.25, 0.15)), rng.multinomial(40, (0.5, 0.25, 0.25))
        d = happiness.compare(happiness_totals(*b), happiness_totals(*a))
        covered += d.ci_low <= -20.0 <= d.ci_high
    assert 0.91 <= covered / 400 <= 0.99


def test_factor_share_wilson_and_newcombe() -> None:
    share = metric_for(f"factor:{FACTOR}")
    none_cited = share.estimate({"n": 10, f"f:{FACTOR}": 0})
    assert none_cited.value == 0.0 and none_cited.ci_low == 0.0
    assert none_cited.ci_high == pytest.approx(100 * 3.8415 / 13.8415, abs=0.01)  # z^2 / (n + z^2)
    # Newcombe (1998), example (a): 56/70 vs 48/80 -> 0.2000 (0.0524, 0.3339), method 10
    delta = share.compare({"n": 80, f"f:{FACTOR}": 48}, {"n": 70, f"f:{FACTOR}": 56})
    assert delta.delta == pytest.approx(20.0)
    assert (delta.ci_low, delta.ci_high) == pytest.approx((5.24, 33.39), abs=0.01)
    assert share.direction(delta.delta) is Direction.WORSE  # factors are negative feedback


def test_factor_share_small_counts_use_fisher() -> None:
    share = metric_for(f"factor:{FACTOR}")
    delta = share.compare({"n": 10, f"f:{FACTOR}": 0}, {"n": 10, f"f:{FACTOR}": 4})
    assert delta.p_value == pytest.approx(0.0867, abs=1e-3)  # Fisher's exact, two-sided


def test_lost_time_mean_and_skewed_interval() -> None:
    minutes = np.array([10.0, 20.0, 30.0, 600.0])
    est = metric_for("lost_time").estimate(lost_time_totals(minutes))
    assert est.value == pytest.approx(165.0) and est.n == 4
    assert est.ci_low >= 0
    assert est.ci_high - est.value > est.value - est.ci_low  # right-skewed like the data


def test_lost_time_interval_coverage_on_lognormal_data() -> None:
    rng = np.random.default_rng(3)
    mu, sigma, n = 3.0, 1.2, 30
    samples = np.expm1(rng.normal(mu, sigma, size=(2000, n)))
    logs = np.log1p(samples)
    totals = pd.DataFrame(
        {"lt_n": n, "lt_sum": samples.sum(1), "lt_sumsq": (samples**2).sum(1),
         "lt_logsum": logs.sum(1), "lt_logsumsq": (logs**2).sum(1)}
    )
    est = metric_for("lost_time").estimate_frame(totals)
    truth = math.exp(mu + sigma**2 / 2) - 1
    coverage = ((est["ci_low"] <= truth) & (truth <= est["ci_high"])).mean()
    assert 0.92 <= coverage <= 0.98


def test_lost_time_comparison_is_relative() -> None:
    lost = metric_for("lost_time")
    rng = np.random.default_rng(4)
    before, after = np.expm1(rng.normal(3, 1, 200)), np.expm1(rng.normal(3.5, 1, 200))
    delta = lost.compare(lost_time_totals(before), lost_time_totals(after))
    assert delta.ci_low < delta.delta < delta.ci_high
    assert delta.ci_low > 0 and delta.p_value < 0.01
    assert lost.direction(delta.delta) is Direction.WORSE
    assert delta.relative == pytest.approx(after.mean() / before.mean() - 1)


def test_lost_time_summary() -> None:
    rng = np.random.default_rng(5)
    minutes = np.round(np.expm1(rng.normal(3, 1.2, 100_000)) / 5) * 5
    started = time.perf_counter()
    summary = lost_time_summary(minutes, seed=1)
    assert time.perf_counter() - started < 3.0
    assert summary.mean.value == pytest.approx(minutes.mean())
    assert summary.mean.ci_low < summary.mean.value < summary.mean.ci_high
    assert summary.median.value == np.median(minutes) and summary.median.n == 100_000
    assert lost_time_summary(minutes, seed=1) == summary  # seeded, reproducible
    small = lost_time_summary([5.0, 10.0, np.nan, 20.0, 600.0])
    assert small.median.value == 15.0 and small.mean.n == 4
    assert math.isnan(lost_time_summary([]).mean.value)


def test_volume_poisson_interval_and_pooling() -> None:
    volume = metric_for("volume")
    empty = volume.estimate({"n": 0})
    assert (empty.value, empty.ci_low, empty.n) == (0.0, 0.0, 0)
    assert empty.ci_high == pytest.approx(3.6889, abs=1e-4)
    ten = volume.estimate({"n": 10})
    assert (ten.ci_low, ten.ci_high) == pytest.approx((4.7954, 18.3904), abs=1e-4)
    pooled = volume.estimate(pool(weekly_stats()))
    assert pooled.value == pytest.approx(14 / 3) and pooled.n == 14
    drop = volume.compare({"n": 3000, "periods": 10}, {"n": 150, "periods": 1})
    assert drop.delta == pytest.approx(-150.0) and drop.ci_high < 0
    assert volume.direction(drop.delta) is Direction.WORSE


def test_pool_segments_sums_rows() -> None:
    stats = weekly_stats()
    segments = pool_segments(stats, [0, 2, 3])
    pd.testing.assert_series_equal(segments.iloc[0], pool(stats.iloc[:2]), check_names=False)
    assert segments["periods"].tolist() == [2.0, 1.0]


def test_pool_ranges_sums_overlapping_and_empty_ranges() -> None:
    stats = weekly_stats()
    ranges = pool_ranges(stats, [0, 1, 2], [3, 3, 2])
    pd.testing.assert_series_equal(ranges.iloc[0], pool(stats.iloc[:3]), check_names=False)
    pd.testing.assert_series_equal(ranges.iloc[1], pool(stats.iloc[1:3]), check_names=False)
    assert ranges["periods"].tolist() == [3.0, 2.0, 0.0] and ranges.iloc[2].abs().sum() == 0.0


def test_registry_and_polarity() -> None:
    assert metric_for("happiness").direction(-1.0) is Direction.WORSE
    assert metric_for("happiness").direction(1.0) is Direction.BETTER
    assert metric_for("lost_time").direction(1.0) is Direction.WORSE
    assert metric_for("volume").direction(-1.0) is Direction.WORSE
    assert metric_for("happiness").direction(0.0) is Direction.UNCHANGED
    assert metric_for(f"factor:{FACTOR}").name == f"factor:{FACTOR}"
    with pytest.raises(ValueError):
        metric_for("nps")
    with pytest.raises(KeyError):
        metric_for("factor:Unknown").estimate({"n": 3})
