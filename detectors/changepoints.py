"""Level-shift detection on per-period metric values, and the changes it implies.

``find_change_points`` is a generic detector: PELT (exact optimal partitioning)
with a weighted L2 cost in units of noise variance, a robust noise estimate and
a penalty calibrated by simulation (see :mod:`detectors.calibration`).
``detect_changes`` applies it to one metric of one segment's weekly statistics
and describes every change with pooled before/after estimates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import ruptures as rpt

from detectors.costs import WeightedL2Cost
from detectors.metrics import (
    Delta,
    Direction,
    Estimate,
    Metric,
    PeriodValues,
    pool_segments,
)

# Penalty per change point, in chi-square units: PENALTY_BASE + PENALTY_SHORT / n
# for n usable points. Calibrated by `python -m detectors.calibration` on pure
# noise, 26-160 points, equal and heterogeneous weights, noise estimated from the
# data: the smallest curve keeping false alarms <= 1 per 100 series-years (52
# points) in every setting. Short series need more because their noise estimate
# is itself uncertain (and their false-alarm allowance is smaller). Re-run the
# calibration after changing the noise estimate, the winsorising or min_size.
PENALTY_BASE = 10.0  # calibrated 10.00
PENALTY_SHORT = 125.0  # calibrated 124.4, rounded up

# Residuals beyond this many noise SDs from a running median are pulled in, so
# one wild week cannot buy a change point; a running median over 5 points still
# follows any level held for 3 or more periods. 2 rather than 3: with 5% gross
# outliers or t(3) noise, 3 SDs let pairs of clipped points pass as a segment
# (~3x the false alarms), while recall on real shifts did not move.
WINSOR_SDS = 2.0
RUNNING_WINDOW = 5

NOISE_BLOCK = 4  # points per block for the long-range noise estimate
BIWEIGHT_C = 9.0  # biweight tuning constant, in MADs (the usual choice)
MEAN_AD_TO_SD = math.sqrt(math.pi / 2.0)  # mean absolute deviation -> SD


def default_penalty(n_points: int) -> float:
    """Calibrated penalty (chi-square units) for a series of ``n_points`` usable values."""
    return PENALTY_BASE + PENALTY_SHORT / max(n_points, 1)


def noise_scale(values: object, weights: object = None) -> float:
    """Robust noise scale sigma, where point i has variance sigma^2 / weights[i].

    The larger of two robust estimates: from first differences, and from
    differences of means of blocks of NOISE_BLOCK points. Differences are
    standardised by their expected spread, so a level shift touches one of them
    only. The block estimate guards against positive autocorrelation, where
    first differences understate how far segment means wander (AR(1) with
    phi = 0.3 gave 5x the false alarms without it); taking the larger also
    made short series cheaper to calibrate. NaNs are skipped.
    """
    x, w, _ = _valid(values, weights)
    if x.size < 3:
        return 0.0
    short_range = _robust_sd(np.diff(x) / np.sqrt(1.0 / w[:-1] + 1.0 / w[1:]))
    blocks = x.size // NOISE_BLOCK
    if blocks < 3 or not short_range > 0:
        return short_range
    # Clip outliers first: block means would carry them into most differences.
    clipped = _winsorise(x, w, short_range)[: blocks * NOISE_BLOCK].reshape(blocks, NOISE_BLOCK)
    block_weights = w[: blocks * NOISE_BLOCK].reshape(blocks, NOISE_BLOCK)
    totals = block_weights.sum(axis=1)
    means = (clipped * block_weights).sum(axis=1) / totals
    long_range = _robust_sd(np.diff(means) / np.sqrt(1.0 / totals[:-1] + 1.0 / totals[1:]))
    return max(short_range, long_range)


def _robust_sd(diffs: np.ndarray) -> float:
    """Tukey's biweight midvariance, as a standard deviation.

    Keeps the MAD's resistance to outliers but is ~87% efficient on normal data
    where the MAD is 37%: on a 26-point series a MAD-based scale is so uncertain
    that the calibrated penalty had to be ~35% higher. Falls back to the mean
    absolute deviation when over half the values are equal (integer data); 0
    only when all are.
    """
    deviations = diffs - np.median(diffs)
    mad = float(np.median(np.abs(deviations)))
    if mad == 0:
        return MEAN_AD_TO_SD * float(np.abs(deviations).mean())
    u2 = (deviations / (BIWEIGHT_C * mad)) ** 2
    inside = u2 < 1.0
    numerator = diffs.size * np.sum(deviations[inside] ** 2 * (1.0 - u2[inside]) ** 4)
    denominator = np.sum((1.0 - u2[inside]) * (1.0 - 5.0 * u2[inside])) ** 2
    return float(np.sqrt(numerator / denominator))


@dataclass(frozen=True)
class PreparedSeries:
    """Usable points ready for the cost: winsorised values, chi-square weights."""

    values: np.ndarray
    weights: np.ndarray  # weight / sigma^2: each point's inverse noise variance
    positions: np.ndarray  # index of each point in the caller's series


def _valid(values: object, weights: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.asarray(values, dtype=float).reshape(-1)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float).reshape(-1)
    if w.shape != x.shape:
        raise ValueError(f"{w.size} weights for {x.size} values")
    keep = np.isfinite(x) & np.isfinite(w) & (w > 0)
    return x[keep], w[keep], np.flatnonzero(keep)


def _running_median(x: np.ndarray) -> np.ndarray:
    """Centred running median, the window shrinking at the ends."""
    half = RUNNING_WINDOW // 2
    padded = np.concatenate([np.full(half, np.nan), x, np.full(half, np.nan)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, RUNNING_WINDOW)
    return np.nanmedian(windows, axis=1)


def prepare_series(
    values: object, weights: object = None, *, noise: float | None = None
) -> PreparedSeries | None:
    """Drop missing points, scale weights by the noise, winsorise outliers.

    None when nothing can be detected: too few points or no variation at all.
    """
    x, w, positions = _valid(values, weights)
    sigma = noise_scale(x, w) if noise is None else float(noise)
    if x.size < 2 or not sigma > 0:
        return None
    return PreparedSeries(_winsorise(x, w, sigma), w / sigma**2, positions)


def _winsorise(x: np.ndarray, w: np.ndarray, sigma: float) -> np.ndarray:
    """Pull points beyond WINSOR_SDS noise SDs from the running median back to that bound."""
    centre = _running_median(x)
    reach = WINSOR_SDS * sigma / np.sqrt(w)
    return np.clip(x, centre - reach, centre + reach)


def find_change_points(
    values: object,
    weights: object = None,
    *,
    penalty: float | None = None,
    min_size: int = 2,
    noise: float | None = None,
) -> list[int]:
    """Indices where a new level starts (sorted, never 0, never ``len(values)``).

    ``values``: list, array or Series, NaN for missing periods (skipped; indices
    still refer to the original positions). ``weights``: sample sizes or inverse
    variances, relative is enough: point i has variance noise^2 / weights[i].
    ``noise``: that noise scale if known, else estimated robustly from the data.
    ``penalty``: per change point in chi-square units, default calibrated for
    about one false alarm per 100 series-years of weekly data.
    """
    prepared = prepare_series(values, weights, noise=noise)
    if prepared is None or prepared.values.size < 2 * min_size:
        return []
    pen = default_penalty(prepared.values.size) if penalty is None else penalty
    algo = rpt.Pelt(custom_cost=WeightedL2Cost(weights=prepared.weights), min_size=min_size, jump=1)
    breaks = algo.fit(prepared.values).predict(pen=pen)[:-1]
    return [int(prepared.positions[b]) for b in breaks]


@dataclass(frozen=True)
class Change:
    """One level shift in one metric, described by the segments either side."""

    metric: str
    index: int  # row of the first period at the new level
    change_date: pd.Timestamp
    before: Estimate
    after: Estimate
    delta: float
    ci_low: float
    ci_high: float
    n_before: int
    n_after: int
    direction: Direction
    p_value: float | None
    recovered_at: pd.Timestamp | None  # start of a later segment back within before's CI
    finding: bool  # worth telling someone, see is_finding
    # First period of the stretch pooled as "before" and last of the "after" one:
    # attribution compares segments over exactly these windows.
    before_from: pd.Timestamp | None = None
    after_to: pd.Timestamp | None = None

    @classmethod
    def of(
        cls,
        metric: Metric,
        delta: Delta,
        *,
        index: int,
        change_date: pd.Timestamp,
        recovered_at: pd.Timestamp | None,
        finding: bool,
        before_from: pd.Timestamp | None = None,
        after_to: pd.Timestamp | None = None,
    ) -> Change:
        """A change described by the comparison of the stretches either side of it."""
        return cls(
            metric=metric.name,
            index=index,
            change_date=change_date,
            before=delta.before,
            after=delta.after,
            delta=delta.delta,
            ci_low=delta.ci_low,
            ci_high=delta.ci_high,
            n_before=delta.n_before,
            n_after=delta.n_after,
            direction=metric.direction(delta.delta),
            p_value=delta.p_value,
            recovered_at=recovered_at,
            finding=finding,
            before_from=before_from,
            after_to=after_to,
        )


DEFAULT_MIN_N = 30


def is_finding(
    change: Change | Delta, metric: Metric, *, min_effect: float | None = None, min_n: int = DEFAULT_MIN_N
) -> bool:
    """Worse, big enough, statistically clear and backed by enough responses.

    ``min_effect`` defaults to the metric's own (10 Happiness points, 20% lost
    time, 5 points of factor share, 30% volume); it is relative to the before
    level for lost time and volume. A dip measured on three responses is noise
    with a story attached, hence ``min_n`` responses on each side.
    """
    threshold = metric.min_effect if min_effect is None else min_effect
    effect = abs(change.delta)
    if metric.relative_effect:
        effect = effect / abs(change.before.value) if change.before.value else math.inf
    clear = change.ci_low > 0 or change.ci_high < 0
    return bool(
        metric.direction(change.delta) is Direction.WORSE
        and effect >= threshold
        and clear
        and min(change.n_before, change.n_after) >= min_n
    )


def detect_changes(
    metric: Metric,
    stats: pd.DataFrame,
    *,
    penalty: float | None = None,
    min_size: int = 2,
    min_effect: float | None = None,
    min_n: int = DEFAULT_MIN_N,
    confidence: float = 0.95,
    reference: PeriodValues | None = None,
) -> list[Change]:
    """Changes in ``metric`` over per-period ``stats`` (rows in time order).

    Periods are weighted by inverse sampling variance, floored at the variance
    the pooled level would give, so tiny weeks count little and none claims
    infinite precision. Noise is estimated from the data but never below the
    sampling noise; its excess (week-to-week variation sampling does not
    explain) becomes a design effect that widens every interval reported.

    With a ``reference`` (per-period values and variances of, say, everyone),
    changes are located on the series minus the reference: where a segment
    departs from the rest, not where everyone moved together. They are still
    described on the segment's own series.
    """
    values, variances, _ = metric.per_period(stats)
    variances = np.fmax(variances, metric.pooled_variance(stats))
    if reference is not None:
        values = values - reference.values
        variances = variances + np.nan_to_num(reference.variances, nan=np.inf)
    weights = _safe_reciprocal(variances)
    sigma = max(1.0, noise_scale(values, weights))
    starts = find_change_points(values, weights, penalty=penalty, min_size=min_size, noise=sigma)
    return describe_changes(
        metric, stats, starts, design_effect=sigma**2, min_effect=min_effect, min_n=min_n, confidence=confidence
    )


def describe_changes(
    metric: Metric,
    stats: pd.DataFrame,
    starts: list[int],
    *,
    design_effect: float = 1.0,
    min_effect: float | None = None,
    min_n: int = DEFAULT_MIN_N,
    confidence: float = 0.95,
) -> list[Change]:
    """Describe given segment starts by pooling the segments either side of each.

    ``design_effect`` (>= 1) deflates the pooled sums to widen intervals when
    periods vary more than sampling explains.
    """
    bounds = [0, *starts, len(stats)]
    segments = pool_segments(stats, bounds)
    levels = metric.estimate_frame(segments, confidence=confidence, design_effect=design_effect)["value"].to_numpy()
    changes = []
    for j, start in enumerate(starts):
        delta = metric.compare(
            segments.iloc[j], segments.iloc[j + 1], confidence=confidence, design_effect=design_effect
        )
        back = next(
            (k for k in range(j + 2, len(segments)) if delta.before.ci_low <= levels[k] <= delta.before.ci_high),
            None,
        )
        changes.append(
            Change.of(
                metric,
                delta,
                index=start,
                change_date=stats.index[start],
                recovered_at=None if back is None else stats.index[bounds[back]],
                finding=is_finding(delta, metric, min_effect=min_effect, min_n=min_n),
                before_from=stats.index[bounds[j]],
                after_to=stats.index[bounds[j + 2] - 1],
            )
        )
    return changes


def _safe_reciprocal(x: np.ndarray) -> np.ndarray:
    """1/x, NaN where x is missing or not positive (those periods are skipped)."""
    out = np.full(x.shape, np.nan)
    np.divide(1.0, x, out=out, where=np.isfinite(x) & (x > 0))
    return out
