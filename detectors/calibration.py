"""Calibrate the change-point penalty by simulation on pure noise.

The target is at most ~1 false change point per 100 series-years (52 weekly
points) at every realistic length (26-160 points), with equal weights and with
heterogeneous weights (weekly sample sizes from a handful to hundreds, holiday
dips, empty weeks), the noise level always estimated from the data as in
production. ``python -m detectors.calibration`` reproduces the constants
``PENALTY_BASE`` and ``PENALTY_SHORT`` of :mod:`detectors.changepoints`.

Running PELT for every candidate penalty would be slow, so each null series is
solved once by exact dynamic programming for its best cost with k = 0..K
changes; the number of changes PELT picks at penalty ``pen`` is then
``argmin_k cost_k + k * pen`` for every penalty at once (a test checks that
this agrees with :func:`detectors.changepoints.find_change_points`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detectors.changepoints import prepare_series
from detectors.costs import WeightedL2Cost

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
    rng: np.random.Generator, n_points: int, heterogeneous: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """One series without change: values with variance 1/weight, NaN where no responses."""
    if not heterogeneous:
        return rng.normal(size=n_points), None
    weights = simulate_weights(rng, n_points, mean=float(rng.choice([5.0, 30.0, 300.0])))
    noise = rng.normal(size=n_points) / np.sqrt(np.where(weights > 0, weights, 1.0))
    return np.where(weights > 0, noise, np.nan), weights


def optimal_costs(values: np.ndarray, weights: np.ndarray | None, *, min_size: int = 2) -> np.ndarray:
    """Best total cost with k = 0..MAX_CHANGES changes (inf where impossible)."""
    costs = np.full(MAX_CHANGES + 1, np.inf)
    prepared = prepare_series(values, weights)
    if prepared is None:
        costs[0] = 0.0
        return costs
    matrix = WeightedL2Cost(weights=prepared.weights).fit(prepared.values).cost_matrix()
    index = np.arange(matrix.shape[0])
    matrix[index[None, :] - index[:, None] < min_size] = np.inf
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
    rates: dict[tuple[int, bool], float]  # (length, heterogeneous) -> false alarms per series-year


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
    costs = {
        (n, het): np.array([optimal_costs(*simulate_null(rng, n, het), min_size=min_size) for _ in range(n_series)])
        for n in lengths
        for het in (False, True)
    }
    required = {
        n: max(
            float(next(p for p in _PENALTY_GRID if false_alarm_rate(costs[(n, het)], n, p) <= target))
            for het in (False, True)
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
    result = calibrate_penalty()
    print(f"PENALTY_BASE = {result.base:.2f}, PENALTY_SHORT = {result.short:.1f}  (penalty = base + short / n)")
    for (n, het), rate in result.rates.items():
        weights = "heterogeneous" if het else "equal"
        print(
            f"  n={n:4d} {weights:13s} needed {result.required[n]:5.1f}, "
            f"curve {result.base + result.short / n:5.2f}: {100 * rate:.2f} false alarms per 100 series-years"
        )


if __name__ == "__main__":
    main()
