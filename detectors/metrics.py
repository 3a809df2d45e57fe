"""Survey metrics computed from additive per-period statistics.

Aggregation hands us sums (``n``, ``promoters``, ``lt_logsum``, ``f:<factor>`` ...)
rather than responses, so every metric here is a function of sums: pooling periods
is adding rows, and thousands of segments can be estimated at once, one row each.

Each metric knows its polarity (which way is worse), a point estimate with an
interval that holds up at small n, the sampling variance of each period's value
(so change-point detection can weight a 300-response week above a 3-response one)
and an interval for the difference between two pooled stretches of time.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats as sps

Totals = pd.Series | Mapping[str, float]
# Rows of totals as the metric formulas read them: float columns (``_columns``), which
# skip pandas' per-operation cost on the few-row tables attribution builds thousands
# of times per run.
Columns = Mapping[str, np.ndarray]

FACTOR_PREFIX = "f:"
PERIODS = "periods"  # added by pooling: how many periods a row of totals covers
LOG_SPREAD_FLOOR = 0.01  # variance of log1p(minutes) assumed at least (log-sd 0.1)


class Polarity(StrEnum):
    """Which way a metric improves."""

    HIGHER_IS_BETTER = "higher_is_better"
    LOWER_IS_BETTER = "lower_is_better"


class Direction(StrEnum):
    """How a change reads for the people surveyed."""

    WORSE = "worse"
    BETTER = "better"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Estimate:
    """A metric value with its confidence interval and the responses behind it."""

    value: float
    ci_low: float
    ci_high: float
    n: int


@dataclass(frozen=True)
class Delta:
    """``after - before`` with an interval on the difference itself."""

    before: Estimate
    after: Estimate
    delta: float
    ci_low: float
    ci_high: float
    n_before: int
    n_after: int
    p_value: float | None = None

    @property
    def relative(self) -> float:
        """Delta as a fraction of the before level (NaN when that level is 0)."""
        return self.delta / self.before.value if self.before.value else float("nan")


class PeriodValues(NamedTuple):
    """One value per period, its sampling variance and its sample size."""

    values: np.ndarray
    variances: np.ndarray
    n: np.ndarray


def pool(stats: pd.DataFrame) -> pd.Series:
    """Totals over the given rows; additivity makes this a plain column sum.

    Adds ``periods`` (the number of rows pooled) so rates per period, such as
    volume, survive pooling.
    """
    totals = stats.sum().astype(float)
    if PERIODS not in totals.index:
        totals[PERIODS] = float(len(stats))
    return totals


def pool_ranges(stats: pd.DataFrame, firsts: Sequence[int] | np.ndarray, lasts: Sequence[int] | np.ndarray) -> pd.DataFrame:
    """Totals of the row ranges ``firsts[i]:lasts[i]``, one row each (ranges may overlap
    or leave gaps; an empty one pools nothing).

    One cumulative sum serves every range, so describing many candidate
    segmentations, or the sliding steps of a recovery, stays cheap.
    """
    columns = _columns(stats)
    table = np.column_stack(list(columns.values()))
    cumulative = np.vstack([np.zeros(table.shape[1]), np.cumsum(table, axis=0)])
    return pd.DataFrame(cumulative[np.asarray(lasts, dtype=int)] - cumulative[np.asarray(firsts, dtype=int)],
                        columns=list(columns))


def pool_segments(stats: pd.DataFrame, bounds: list[int]) -> pd.DataFrame:
    """Totals of consecutive row ranges ``bounds[i]:bounds[i + 1]``, one row each."""
    return pool_ranges(stats, bounds[:-1], bounds[1:])


@functools.lru_cache(maxsize=64)
def z_value(confidence: float) -> float:
    """Two-sided normal quantile for a confidence level such as 0.95."""
    return float(sps.norm.ppf(0.5 + confidence / 2.0))


def _columns(totals: pd.DataFrame | Totals) -> dict[str, np.ndarray]:
    """Float columns of rows of totals (a Series or mapping is one row), with
    ``periods`` (1 per row) where pooling did not add it."""
    if isinstance(totals, pd.DataFrame):
        table = totals.to_numpy(dtype=float)
        columns = {str(name): table[:, i] for i, name in enumerate(totals.columns)}
    else:
        columns = {str(name): np.array([float(value)]) for name, value in totals.items()}
    if PERIODS not in columns:
        columns[PERIODS] = np.ones(len(totals) if isinstance(totals, pd.DataFrame) else 1)
    return columns


def _deflated(columns: Columns, design_effect: float) -> Columns:
    """The columns as sums of ``1 / design_effect`` as many independent responses."""
    return columns if design_effect == 1.0 else {name: values / design_effect for name, values in columns.items()}


def _column(frame: Columns, name: str) -> np.ndarray:
    if name not in frame:
        raise KeyError(f"statistics have no column {name!r}")
    return np.asarray(frame[name], dtype=float)


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Elementwise ratio, NaN where the denominator is 0 (an empty period)."""
    out = np.full(np.broadcast(numerator, denominator).shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _wilson(cited: np.ndarray, n: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval: keeps its coverage near 0 and 1, unlike Wald."""
    n = np.where(n > 0, n, np.nan)
    p = cited / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2.0 * n)) / denom
    half = z * np.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n)) / denom
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


class Metric(ABC):
    """One survey metric over additive statistics.

    Subclasses supply the value, its interval, its sampling variance and the
    interval of a difference, all vectorised over rows of totals. Sums can be
    deflated by a design effect (``totals / design_effect``) to widen intervals
    when periods vary more than sampling alone explains.
    """

    name: str
    polarity: Polarity
    min_effect: float  # smallest change worth reporting, see ``relative_effect``
    relative_effect: bool = False  # min_effect is a fraction of the before level
    count_column: str = "n"  # responses behind a value
    exposure_column: str = "n"  # what a period's sampling variance scales with

    def direction(self, delta: float) -> Direction:
        """Read a signed difference through the metric's polarity."""
        if not np.isfinite(delta) or delta == 0:
            return Direction.UNCHANGED
        up_is_worse = self.polarity is Polarity.LOWER_IS_BETTER
        return Direction.WORSE if (delta > 0) == up_is_worse else Direction.BETTER

    def is_back(self, estimate: Estimate, before: Estimate) -> bool:
        """Is ``estimate`` back at the level ``before``: its interval overlaps ``before``'s,
        or it is better? (A dip that came back and then improved has recovered.)"""
        overlaps = estimate.ci_high >= before.ci_low and estimate.ci_low <= before.ci_high
        return overlaps or self.direction(estimate.value - before.value) is Direction.BETTER

    def estimate(self, totals: Totals, *, confidence: float = 0.95, design_effect: float = 1.0) -> Estimate:
        """Value and interval from pooled totals (a Series or mapping of sums)."""
        return self._estimates(_columns(totals), confidence, design_effect)[0]

    def estimates(self, totals: pd.DataFrame, *, confidence: float = 0.95, design_effect: float = 1.0) -> list[Estimate]:
        """``estimate`` of each row of totals."""
        return self._estimates(_columns(totals), confidence, design_effect)

    def estimate_frame(
        self, totals: pd.DataFrame, *, confidence: float = 0.95, design_effect: float = 1.0
    ) -> pd.DataFrame:
        """Estimates for many segments at once, one row of totals per segment."""
        value, low, high, n = self._estimate_arrays(_columns(totals), confidence, design_effect)
        return pd.DataFrame({"value": value, "ci_low": low, "ci_high": high, "n": n.astype(int)}, index=totals.index)

    def _estimate_arrays(
        self, columns: Mapping[str, np.ndarray], confidence: float, design_effect: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        low, high = self._interval(_deflated(columns, design_effect), z_value(confidence))
        return self._value(columns), low, high, _column(columns, self.count_column)

    def _estimates(self, columns: Mapping[str, np.ndarray], confidence: float, design_effect: float) -> list[Estimate]:
        return [
            Estimate(float(value), float(low), float(high), int(n))
            for value, low, high, n in zip(*self._estimate_arrays(columns, confidence, design_effect), strict=True)
        ]

    def per_period(self, stats: pd.DataFrame) -> PeriodValues:
        """Per-period values and sampling variances; NaN for periods without responses."""
        columns = _columns(stats)
        return PeriodValues(self._value(columns), self._variance(columns), _column(columns, self.count_column))

    def test_scale(self, stats: pd.DataFrame) -> PeriodValues:
        """Values and sampling variances on the scale where attribution tests changes.

        The metric's own scale, unless heavy tails call for another (see
        ``LostTime.test_scale``): sizes are still read in the metric's units.
        """
        return self.per_period(stats)

    def pooled_variance(self, stats: pd.DataFrame) -> np.ndarray:
        """Sampling variance each period would have at the series' pooled level.

        The pooled value's variance scaled by exposure (variance ~ 1/exposure).
        A floor for per-period variances: a week of three identical answers must
        not claim zero variance and swamp its neighbours.
        """
        columns = _columns(stats)
        total = {name: values.sum(keepdims=True) for name, values in columns.items()}
        (pooled,) = self._variance(total)
        return pooled * _safe_divide(total[self.exposure_column], columns[self.exposure_column])

    def compare(
        self, before: Totals, after: Totals, *, confidence: float = 0.95, design_effect: float = 1.0
    ) -> Delta:
        """Difference ``after - before`` between two pooled stretches, with interval and p-value."""
        b_cols, a_cols = _columns(before), _columns(after)
        (b_est,), (a_est,) = (self._estimates(side, confidence, design_effect) for side in (b_cols, a_cols))
        with np.errstate(divide="ignore", invalid="ignore"):  # an empty side gives NaN, not an error
            low, high, p_value = self._difference(
                _deflated(b_cols, design_effect), _deflated(a_cols, design_effect), z_value(confidence)
            )
        delta = a_est.value - b_est.value
        return Delta(b_est, a_est, delta, float(low), float(high), b_est.n, a_est.n, float(p_value))

    @abstractmethod
    def _value(self, frame: Columns) -> np.ndarray: ...

    @abstractmethod
    def _interval(self, frame: Columns, z: float) -> tuple[np.ndarray, np.ndarray]: ...

    @abstractmethod
    def _variance(self, frame: Columns) -> np.ndarray: ...

    @abstractmethod
    def _difference(self, before: Columns, after: Columns, z: float) -> tuple[float, float, float]:
        """Interval and two-sided p-value for ``after - before`` (one-row frames)."""


class Happiness(Metric):
    """%promoters (9-10) minus %detractors (0-6), on -100..+100.

    Interval: Rocks' (2016) adjusted Wald for the NPS, the best of six methods
    in his coverage study: add 3/4 promoter, 3/4 detractor and 3 responses
    (so 3/2 passives), then use the trinomial variance (p + d - (p - d)^2) / n.
    The pseudo-counts keep the variance positive at n = 3 or at 100% promoters,
    which the plain Wald interval gets badly wrong. Clipped to [-100, 100] and
    stretched to contain the observed value (only matters at n of 1 or 2).
    """

    name = "happiness"
    polarity = Polarity.HIGHER_IS_BETTER
    min_effect = 10.0

    _PSEUDO_EACH = 0.75
    _PSEUDO_N = 3.0

    def _value(self, frame: Columns) -> np.ndarray:
        return 100.0 * _safe_divide(_column(frame, "promoters") - _column(frame, "detractors"), _column(frame, "n"))

    def _adjusted(self, frame: Columns) -> tuple[np.ndarray, np.ndarray]:
        """Adjusted centre and its standard error, in Happiness points."""
        n = _column(frame, "n")
        n_adj = n + self._PSEUDO_N
        p = (_column(frame, "promoters") + self._PSEUDO_EACH) / n_adj
        d = (_column(frame, "detractors") + self._PSEUDO_EACH) / n_adj
        centre = np.where(n > 0, p - d, np.nan)
        return 100.0 * centre, 100.0 * np.sqrt((p + d - centre**2) / n_adj)

    def _interval(self, frame: Columns, z: float) -> tuple[np.ndarray, np.ndarray]:
        centre, se = self._adjusted(frame)
        value = self._value(frame)  # kept inside: at n = 1 the pseudo-counts pull the centre far off
        low, high = np.fmin(centre - z * se, value), np.fmax(centre + z * se, value)
        return np.clip(low, -100.0, 100.0), np.clip(high, -100.0, 100.0)

    def _variance(self, frame: Columns) -> np.ndarray:
        return self._adjusted(frame)[1] ** 2

    def _difference(self, before: Columns, after: Columns, z: float) -> tuple[float, float, float]:
        (c_b,), (se_b,) = self._adjusted(before)
        (c_a,), (se_a,) = self._adjusted(after)
        diff, se = c_a - c_b, float(np.hypot(se_a, se_b))
        return diff - z * se, diff + z * se, 2.0 * sps.norm.sf(abs(diff) / se)


class FactorShare(Metric):
    """Percentage of responses citing one feedback factor.

    Wilson interval for one share; Newcombe's hybrid score interval for the
    difference of two (both keep coverage for rare factors where Wald fails);
    p-value from the two-proportion z-test, or Fisher's exact test when an
    expected cell count is below 5.

    ``polarity`` is the factor's worse side: a negative factor ("Long waiting
    time", the default) is worse cited more; a positive one ("Knowledgeable
    agent", ``HIGHER_IS_BETTER``) is worse cited less, so its fall is a finding
    and its rise an improvement (see ``detectors.polarity`` for how it is learned).
    """

    polarity = Polarity.LOWER_IS_BETTER
    min_effect = 5.0  # percentage points

    def __init__(self, factor: str, polarity: Polarity = Polarity.LOWER_IS_BETTER) -> None:
        self.factor = factor
        self.polarity = Polarity(polarity)
        self.name = f"factor:{factor}"
        self._column = FACTOR_PREFIX + factor

    def _counts(self, frame: Columns) -> tuple[np.ndarray, np.ndarray]:
        return _column(frame, self._column), _column(frame, "n")

    def _value(self, frame: Columns) -> np.ndarray:
        return 100.0 * _safe_divide(*self._counts(frame))

    def _interval(self, frame: Columns, z: float) -> tuple[np.ndarray, np.ndarray]:
        low, high = _wilson(*self._counts(frame), z)
        return 100.0 * low, 100.0 * high

    def _variance(self, frame: Columns) -> np.ndarray:
        """Agresti-Coull variance (2 pseudo-citations in 4): never 0 for 0/n weeks."""
        cited, n = self._counts(frame)
        p = (cited + 2.0) / (n + 4.0)
        return np.where(n > 0, 1e4 * p * (1.0 - p) / (n + 4.0), np.nan)

    def _difference(self, before: Columns, after: Columns, z: float) -> tuple[float, float, float]:
        (x_b,), (n_b,) = self._counts(before)
        (x_a,), (n_a,) = self._counts(after)
        p_b, p_a = x_b / n_b, x_a / n_a
        (l_b,), (u_b,) = _wilson(np.array([x_b]), np.array([n_b]), z)
        (l_a,), (u_a,) = _wilson(np.array([x_a]), np.array([n_a]), z)
        diff = p_a - p_b
        low = diff - np.hypot(p_a - l_a, u_b - p_b)
        high = diff + np.hypot(u_a - p_a, p_b - l_b)
        return 100.0 * low, 100.0 * high, _two_proportion_p(x_b, n_b, x_a, n_a)


def _two_proportion_p(x_b: float, n_b: float, x_a: float, n_a: float) -> float:
    """Two-sided p-value: pooled z-test, Fisher's exact test for small expected counts."""
    pooled = (x_b + x_a) / (n_b + n_a)
    expected = np.array([n_b, n_a]) * [[pooled], [1.0 - pooled]]
    if expected.min() < 5.0:
        table = np.rint([[x_b, n_b - x_b], [x_a, n_a - x_a]]).astype(int)
        return float(sps.fisher_exact(table).pvalue)
    se = np.sqrt(pooled * (1.0 - pooled) * (1.0 / n_b + 1.0 / n_a))
    return float(2.0 * sps.norm.sf(abs(x_a / n_a - x_b / n_b) / se))


class _LogRatioMetric(Metric):
    """A positive, right-skewed level compared as a ratio on the log scale.

    ``_log_level`` gives log(value + offset) and its standard error; the ratio
    interval is turned into minutes (or responses) at the before level, so the
    difference interval excludes 0 exactly when the ratio test rejects.
    """

    offset: float = 0.0

    @abstractmethod
    def _log_level(self, frame: Columns) -> tuple[np.ndarray, np.ndarray]: ...

    def _difference(self, before: Columns, after: Columns, z: float) -> tuple[float, float, float]:
        (lb,), (se_b,) = self._log_level(before)
        (la,), (se_a,) = self._log_level(after)
        log_ratio, se = la - lb, float(np.hypot(se_a, se_b))
        base = float(np.exp(lb))
        low, high = base * np.expm1(log_ratio - z * se), base * np.expm1(log_ratio + z * se)
        return low, high, 2.0 * sps.norm.sf(abs(log_ratio) / se)


class LostTime(_LogRatioMetric):
    """Mean minutes lost per response that answered the question.

    Lost time is lognormal-like with a few enormous answers, where the t-interval
    undercovers badly (about 78% nominal-95% at n=30 for a log-sd of 1.5). We
    keep the arithmetic mean as the value but take its spread from the log scale
    (``lt_logsum``/``lt_logsumsq`` of log1p(minutes), which a single 10,000-minute
    answer cannot blow up): under a lognormal model Var(mean)/(mean+1)^2 =
    (exp(s^2) - 1)/n, giving an asymmetric interval (mean+1) * exp(+-t*se) - 1.
    Simulated coverage is 93-96% at n = 10..100 for log-sd 1 to 1.5, and
    conservative when many answers are 0. Caveat: it is model-based; for raw
    answers prefer :func:`lost_time_summary` (bootstrap).
    """

    name = "lost_time"
    polarity = Polarity.LOWER_IS_BETTER
    min_effect = 0.20
    relative_effect = True
    count_column = "lt_n"
    exposure_column = "lt_n"
    offset = 1.0

    def _value(self, frame: Columns) -> np.ndarray:
        return _safe_divide(_column(frame, "lt_sum"), _column(frame, "lt_n"))

    def _log_level(self, frame: Columns) -> tuple[np.ndarray, np.ndarray]:
        n = _column(frame, "lt_n")
        logsum = _column(frame, "lt_logsum")
        log_var = np.clip(
            _safe_divide(_column(frame, "lt_logsumsq") - _safe_divide(logsum**2, n), n - 1.0), 0.0, None
        )
        relative_var = _safe_divide(np.expm1(np.minimum(log_var, 700.0)), n)
        return np.log(self._value(frame) + self.offset), np.sqrt(np.log1p(relative_var))

    def test_scale(self, stats: pd.DataFrame) -> PeriodValues:
        """Mean log1p(minutes) with its sampling variance s^2 / n (s: the answers' own spread).

        Attribution asks "did this segment's lost time change more than the rest's?"
        many times over small segments. On minutes, one 10,000-minute answer moves a
        segment's mean more than a real 30% rise, and the lognormal variance model
        behind the minutes' interval cannot see it. On the log scale the tail is
        compressed (a cause that slows resolution multiplies times, so it shifts
        logs by a constant), the variance is the answers' measured spread rather than
        a model's, and both come from the additive sums ``lt_logsum``/``lt_logsumsq``,
        so every segment of the cube is tested from its sums. With log-sd about 1.1,
        a 20% rise is 0.18 log-sd units against 0.13 on minutes: the same change
        needs about 40% fewer answers to stand out. (A rank test would need every
        segment's raw answers; a trimmed mean is not additive.)
        """
        frame = _columns(stats)
        n = _column(frame, "lt_n")
        logsum = _column(frame, "lt_logsum")
        spread = _safe_divide(_column(frame, "lt_logsumsq") - _safe_divide(logsum**2, n), n - 1.0)
        # A floor of log-sd 0.1: thirty identical answers must not claim a zero variance.
        return PeriodValues(_safe_divide(logsum, n), _safe_divide(np.fmax(spread, LOG_SPREAD_FLOOR), n), n)

    def _interval(self, frame: Columns, z: float) -> tuple[np.ndarray, np.ndarray]:
        level, se = self._log_level(frame)
        df = _column(frame, "lt_n") - 1.0
        t = np.where(df > 0, sps.t.ppf(sps.norm.cdf(z), np.where(df > 0, df, 1.0)), np.nan)
        return np.clip(np.expm1(level - t * se), 0.0, None), np.expm1(level + t * se)

    def _variance(self, frame: Columns) -> np.ndarray:
        level, se = self._log_level(frame)
        return np.exp(2.0 * level) * se**2


class Volume(_LogRatioMetric):
    """Responses per period: a data-health signal (a drop means the feed broke).

    Garwood's exact Poisson interval for the rate; rates are compared on the
    log scale with +0.5 continuity so an empty stretch does not give log(0).
    A zero-response week is a real value here (0), not missing.
    """

    name = "volume"
    polarity = Polarity.HIGHER_IS_BETTER
    min_effect = 0.30
    relative_effect = True
    exposure_column = PERIODS

    def _value(self, frame: Columns) -> np.ndarray:
        return _safe_divide(_column(frame, self.count_column), _column(frame, PERIODS))

    def _interval(self, frame: Columns, z: float) -> tuple[np.ndarray, np.ndarray]:
        n, periods = _column(frame, self.count_column), _column(frame, PERIODS)
        alpha = 2.0 * sps.norm.sf(z)
        low = np.where(n > 0, sps.chi2.ppf(alpha / 2.0, 2.0 * np.where(n > 0, n, 1.0)) / 2.0, 0.0)
        high = sps.chi2.ppf(1.0 - alpha / 2.0, 2.0 * n + 2.0) / 2.0
        return _safe_divide(low, periods), _safe_divide(high, periods)

    def _variance(self, frame: Columns) -> np.ndarray:
        return _safe_divide(_column(frame, self.count_column), _column(frame, PERIODS) ** 2)

    def _log_level(self, frame: Columns) -> tuple[np.ndarray, np.ndarray]:
        n, periods = _column(frame, self.count_column) + 0.5, _column(frame, PERIODS)
        return np.log(n / periods), 1.0 / np.sqrt(n)


_METRICS: dict[str, type[Metric]] = {cls.name: cls for cls in (Happiness, LostTime, Volume)}


def metric_for(name: str, *, polarity: Polarity | None = None) -> Metric:
    """The metric called ``name``: happiness, lost_time, volume, factor:<factor name>, or an IT metric
    (``detectors.it_metrics.DETECTED_IT_METRICS``: sla_met, reassignment_rate, ...).

    ``polarity`` sets a factor's worse side (default: cited more is worse); the
    other metrics have theirs fixed, and asking another of them is an error.
    """
    if name.startswith("factor:") and len(name) > len("factor:"):
        return FactorShare(name.removeprefix("factor:"), polarity or Polarity.LOWER_IS_BETTER)
    if polarity is not None and name in _METRICS and _METRICS[name].polarity is not Polarity(polarity):
        raise ValueError(f"{name} is {_METRICS[name].polarity}; its polarity cannot be changed")
    if name in _METRICS:
        return _METRICS[name]()
    from detectors.it_metrics import (
        it_metric_for,  # the IT metrics build on this module
    )

    it_metric = it_metric_for(name)
    if it_metric is not None:
        return it_metric
    raise ValueError(f"unknown metric {name!r}; expected one of {sorted(_METRICS)}, an IT metric or 'factor:<name>'")


@dataclass(frozen=True)
class LostTimeSummary:
    """Mean and median minutes from raw answers, each with a bootstrap interval."""

    mean: Estimate
    median: Estimate


def lost_time_summary(
    minutes: np.ndarray | pd.Series | list[float],
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> LostTimeSummary:
    """Percentile-bootstrap intervals for the mean and median of raw lost minutes.

    Resampling n answers with replacement is the same as drawing multinomial
    counts over the distinct values, which is exact and fast here because people
    answer in round numbers: 100k answers with ~1000 distinct values take a
    fraction of a second. Cost grows with distinct values x n_boot. NaNs are
    ignored; an empty input gives NaN estimates.
    """
    x = np.asarray(minutes, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        empty = Estimate(float("nan"), float("nan"), float("nan"), 0)
        return LostTimeSummary(empty, empty)
    values, counts = np.unique(x, return_counts=True)
    rng = np.random.default_rng(seed)
    chunk = max(1, 4_000_000 // values.size)  # bound the n_boot x distinct matrix
    means, medians = [], []
    for start in range(0, n_boot, chunk):
        draws = rng.multinomial(x.size, counts / x.size, size=min(chunk, n_boot - start))
        cumulative = np.cumsum(draws, axis=1)
        means.append(draws @ values / x.size)
        lower = values[np.argmax(cumulative >= (x.size + 1) // 2, axis=1)]
        upper = values[np.argmax(cumulative >= x.size // 2 + 1, axis=1)]
        medians.append((lower + upper) / 2.0)
    tails = [50.0 * (1.0 - confidence), 50.0 * (1.0 + confidence)]
    mean_ci = np.percentile(np.concatenate(means), tails)
    median_ci = np.percentile(np.concatenate(medians), tails)
    return LostTimeSummary(
        Estimate(float(x.mean()), float(mean_ci[0]), float(mean_ci[1]), int(x.size)),
        Estimate(float(np.median(x)), float(median_ci[0]), float(median_ci[1]), int(x.size)),
    )
