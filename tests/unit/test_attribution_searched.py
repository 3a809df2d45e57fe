"""The critical value of a searched change (issue 11 item 6): Bonferroni over what was searched."""

from __future__ import annotations

import numpy as np
import scipy.stats as sps

from detectors.attribution import change_z, searched_critical_z


def test_the_critical_value_grows_with_what_was_searched():
    assert searched_critical_z(1000, 104) > searched_critical_z(100, 104) > searched_critical_z(1, 104)
    assert searched_critical_z(1000, 156) > searched_critical_z(1000, 52)
    # One series, one date: the plain two-sided 5% test.
    assert np.isclose(searched_critical_z(1, 1), sps.norm.isf(0.025))


def test_family_wise_rate_on_independent_null_tests_is_at_most_alpha():
    # Pure noise z's for 300 series x 50 dates, independent (the worst case for
    # Bonferroni's accuracy, the best for the null rate): runs with any |z| over the
    # bar stay near or below alpha.
    rng = np.random.default_rng(7)
    bar = searched_critical_z(300, 50, alpha=0.05)
    runs = 400
    hits = sum(bool((np.abs(rng.standard_normal((300, 50))) >= bar).any()) for _ in range(runs))
    assert hits / runs <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / runs)


def test_z_of_a_change_from_its_p_value_or_its_interval():
    assert np.isclose(change_z(-10.0, -19.6, -0.4, None), 10.0 / (9.6 / sps.norm.isf(0.025)))
    assert np.isclose(change_z(-10.0, -30.0, 10.0, 0.05), sps.norm.isf(0.025))
    assert np.isnan(change_z(1.0, 1.0, 1.0, None))


def test_a_two_per_week_segment_noise_dip_does_not_clear_the_searched_bar():
    # The demo's Walk-in x Helsinki: n 132 before, 108 after, a 25-point fall with a
    # Happiness SD near 80 per response: z ~ 2.4, far below the bar of ~5 for ~2,000
    # series over two years of weeks; a 60-point fall in 500/500 responses clears it.
    se_small = 80.0 * np.sqrt(1 / 132 + 1 / 108)
    bar = searched_critical_z(2000, 104)
    assert change_z(-25.0, -25.0 - 1.96 * se_small, -25.0 + 1.96 * se_small, None) < bar
    se_large = 80.0 * np.sqrt(1 / 500 + 1 / 500)
    assert change_z(-60.0, -60.0 - 1.96 * se_large, -60.0 + 1.96 * se_large, None) > bar
