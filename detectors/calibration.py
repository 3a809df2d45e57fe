"""Calibrate the change-point penalty by simulation on series without change.

The target is at most ~1 false change point per 100 series-years (52 weekly
points) at every realistic length (26-160 points), with equal weights and with
heterogeneous weights (weekly sample sizes from a handful to hundreds, holiday
dips, empty weeks), the noise level always estimated from the data as in
production. Series without change are pure noise, and noise around a linear
trend of random slope (up to 6 noise SDs over the series): the penalty applies
to segments that may each be flat or sloped (``SLOPE_PENALTY``), so a steady
trend must cost no more false changes than a flat line.
``python -m detectors.calibration`` reproduces the constants ``PENALTY_BASE``
and ``PENALTY_SHORT`` of :mod:`detectors.changepoints`.

Solving every series for every candidate penalty would be slow, so each null
series is solved once by exact dynamic programming for its best cost with
k = 0..K changes; the number of changes the detector picks at penalty ``pen``
is then ``argmin_k cost_k + k * pen`` for every penalty at once (a test checks
that this agrees with :func:`detectors.changepoints.find_change_points`).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

import numpy as np

from detectors.changepoints import SLOPE_PENALTY, prepare_series
from detectors.costs import segment_costs

LENGTHS = (26, 39, 52, 78, 104, 130, 160)
WEEKS_PER_YEAR = 52
TARGET_PER_SERIES_YEAR = 0.01
MAX_CHANGES = 6
_PENALTY_GRID = np.round(np.arange(4.0, 40.0, 0.1), 1)


def simulate_weights(rng: np.random.Generator, n_points: int, mean: float) -> np.ndarray:
    """Weekly response counts: Poisson around a mean that wanders from week to
    week (lognormal, sd 0.4) and drops in the summer and over the year end."""
    week = np.arange(n_points) % WEEKS_PER_YEAR
    seasonal = np.where(week >= 50, 0.3, np.where((week >= 27) & (week <= 31), 0.6, 1.0))
    return rng.poisson(mean * seasonal * rng.lognormal(0.0, 0.4, n_points)).astype(float)


def simulate_null(
    rng: np.random.Generator, n_points: int, heterogeneous: bool, trend: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """One series without change: values with variance 1/weight, NaN where no responses.

    With ``trend``, the values ride on a straight line rising or falling by up to
    6 noise SDs (of a typical point) over the series.
    """
    line = rng.uniform(-6.0, 6.0) * np.linspace(0.0, 1.0, n_points) if trend else np.zeros(n_points)
    if not heterogeneous:
        return rng.normal(size=n_points) + line, None
    mean = float(rng.choice([5.0, 30.0, 300.0]))
    weights = simulate_weights(rng, n_points, mean=mean)
    noise = rng.normal(size=n_points) / np.sqrt(np.where(weights > 0, weights, 1.0))
    return np.where(weights > 0, noise + line / math.sqrt(mean), np.nan), weights


def optimal_costs(
    values: np.ndarray, weights: np.ndarray | None, *, min_size: int = 2, slope_penalty: float = SLOPE_PENALTY
) -> np.ndarray:
    """Best total cost with k = 0..MAX_CHANGES changes (inf where impossible)."""
    costs = np.full(MAX_CHANGES + 1, np.inf)
    prepared = prepare_series(values, weights)
    if prepared is None:
        costs[0] = 0.0
        return costs
    matrix = segment_costs(
        prepared.values, prepared.weights, prepared.positions, slope_penalty=slope_penalty, min_size=min_size
    ).cost
    best = matrix[0].copy()  # best[e]: cost of values[:e] split into k + 1 segments
    costs[0] = best[-1]
    for k in range(1, MAX_CHANGES + 1):
        best = np.min(best[:, None] + matrix, axis=0)
        costs[k] = best[-1]
    return costs


def change_counts(costs: np.ndarray, penalty: float) -> np.ndarray:
    """Number of changes chosen at ``penalty`` for each row of ``optimal_costs``."""
    return np.argmin(costs + penalty * np.arange(costs.shape[-1]), axis=-1)


def false_alarm_rate(costs: np.ndarray, n_points: int, penalty: float) -> float:
    """False change points per series-year for null series of ``n_points``."""
    return float(change_counts(costs, penalty).mean() / (n_points / WEEKS_PER_YEAR))


@dataclass(frozen=True)
class Calibration:
    """The penalty curve ``base + short / n`` and what it gives on the null series."""

    base: float
    short: float
    required: dict[int, float]  # length -> smallest constant penalty meeting the target
    rates: dict[tuple[int, bool, bool], float]  # (length, heterogeneous, trend) -> false alarms per series-year


def calibrate_penalty(
    *,
    n_series: int = 4000,
    seed: int = 20240601,
    lengths: tuple[int, ...] = LENGTHS,
    min_size: int = 2,
    target: float = TARGET_PER_SERIES_YEAR,
) -> Calibration:
    """Fit ``base + short / n`` through the smallest penalty meeting the target per length.

    ``short`` is the least-squares slope on 1/n; ``base`` is then raised until the
    curve clears every length's requirement, so the target holds everywhere.
    """
    rng = np.random.default_rng(seed)
    settings = [(het, trend) for het in (False, True) for trend in (False, True)]
    costs = {
        (n, het, trend): np.array(
            [optimal_costs(*simulate_null(rng, n, het, trend), min_size=min_size) for _ in range(n_series)]
        )
        for n in lengths
        for het, trend in settings
    }
    required = {
        n: max(
            float(next(p for p in _PENALTY_GRID if false_alarm_rate(costs[(n, *key)], n, p) <= target))
            for key in settings
        )
        for n in lengths
    }
    inverse = 1.0 / np.array(lengths, dtype=float)
    needed = np.array([required[n] for n in lengths])
    short = float(np.polyfit(inverse, needed, 1)[0])
    base = float(np.max(needed - short * inverse))
    rates = {key: false_alarm_rate(c, key[0], base + short / key[0]) for key, c in costs.items()}
    return Calibration(base, short, required, rates)


def main() -> None:
    """Print the calibrated constants and the false-alarm rate per setting."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=4000, help="null series per setting (default %(default)s)")
    result = calibrate_penalty(n_series=parser.parse_args().series)
    print(f"PENALTY_BASE = {result.base:.2f}, PENALTY_SHORT = {result.short:.1f}  (penalty = base + short / n)")
    for (n, het, trend), rate in result.rates.items():
        weights = ("heterogeneous" if het else "equal") + (", trend" if trend else "")
        print(
            f"  n={n:4d} {weights:20s} needed {result.required[n]:5.1f}, "
            f"curve {result.base + result.short / n:5.2f}: {100 * rate:.2f} false alarms per 100 series-years"
        )


if __name__ == "__main__":
    main()
