"""Change detection on per-period metric values: level shifts, and slides.

``find_change_points`` is a generic detector: exact optimal partitioning of the
series into segments that are each either flat (a level) or a straight line (a
trend), with a weighted chi-square cost in units of noise variance, a robust
noise estimate and penalties calibrated by simulation (see
:mod:`detectors.calibration`). A linear trend plus noise is one sloped segment,
not a staircase of level shifts; a step is still a step.

``detect_changes`` applies it to one metric of one segment's weekly statistics
and describes every change: a ``step`` with pooled before/after estimates, or a
``gradual`` change (a slide from one level to another, or one still going on)
with its start, its end and its slope per period with an interval.
``test_known_date`` tests one given date (a go-live) without any search.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd
from scipy import stats as sps

from detectors.costs import SegmentCosts, segment_costs
from detectors.metrics import (
    Delta,
    Direction,
    Estimate,
    Metric,
    PeriodValues,
    pool_ranges,
    z_value,
)

# Penalty per change point, in chi-square units: PENALTY_BASE + PENALTY_SHORT / n
# for n usable points. Calibrated by `python -m detectors.calibration` on series
# without change (pure noise, and noise around a linear trend of random slope),
# 26-160 points, equal and heterogeneous weights, noise estimated from the data:
# the smallest curve keeping false alarms <= 1 per 100 series-years (52 points)
# in every setting, with segments free to be flat or sloped (SLOPE_PENALTY).
# Short series need more because their noise estimate is itself uncertain (and
# their false-alarm allowance is smaller). Re-run the calibration after changing
# the noise estimate, the winsorising, min_size or SLOPE_PENALTY.
PENALTY_BASE = 12.5  # calibrated 12.48 (3000 null series per setting)
PENALTY_SHORT = 79.0  # calibrated 79.0

# Extra cost (chi-square units) of letting one segment slope: a segment takes a
# trend only when its line beats its mean by this much (a slope 2 standard errors
# from zero). Chosen by the calibration on series without change: between 2 and
# 16, 4 needed the smallest change penalty over flat and trending nulls together
# (n = 26: 15.5, n = 160: 11.7). Larger values leave mild trends to be chopped
# into steps (16 needed a penalty of 20-24 on trending nulls); smaller ones let
# noise buy slopes. A flat stretch of noise takes a slope ~5% of the time: that
# changes its description, not the number of change points.
SLOPE_PENALTY = 4.0

# Residuals beyond this many noise SDs from a running median are pulled in, so
# one wild week cannot buy a change point; a running median over 5 points still
# follows any level held for 3 or more periods. 2 rather than 3: with 5% gross
# outliers or t(3) noise, 3 SDs let pairs of clipped points pass as a segment
# (~3x the false alarms), while recall on real shifts did not move.
WINSOR_SDS = 2.0
RUNNING_WINDOW = 5
# ...except runs of ``min_size`` consecutive points beyond this many SDs on the same
# side: a level held for two periods is a short dip (an outage's fortnight, 26 points down at
# a thousand answers a week), not two wild weeks. Under Gaussian noise such a pair
# comes about once in ten million; under t(3) noise, well under once per series.
SHORT_RUN_SDS = 3.5

# segment_survey_series: rounds of re-estimating the noise on what the changes leave,
# until it moves by less than NOISE_TOLERANCE; below MIN_POINTS_TO_WEIGH points the
# residuals say too little about autocorrelation to weigh two readings.
MAX_NOISE_ROUNDS = 8
NOISE_TOLERANCE = 0.01
MIN_POINTS_TO_WEIGH = 8
# ...and the two readings are weighed by BIC, a change costing as many parameters
# (its date, its new level and one for the noise it explains) times log n. Not the
# detector's penalty: that one (with its family term) is the bar for a change to be
# reported at a given noise; charged here, it made the white-noise reading lose on
# any short series with a dip. A 5-week, 20-point dip in the 30 weeks an MSP group
# has existed (330 answers a week) read as AR(1) wander at 2.7x sampling and went
# unseen; AR(1) null series (phi 0.3-0.8, 30 and 104 weeks) keep their findings.
CHANGE_PARAMETERS = 3.0
SPRING_BACK = 0.5  # share of a slide's depth the level must jump back by, for the slide to be a lull
NOISE_BLOCK = 4  # points per block for the long-range noise estimate
MAX_PHI = 0.8  # the largest lag-one autocorrelation survey_noise corrects for
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
    return max(_noise_scales(x, w))


def _noise_scales(x: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """The short-range (first differences) and long-range (block means) noise
    scales of usable points; the long one is 0 when there are too few blocks."""
    if x.size < 3:
        return 0.0, 0.0
    short_range = _robust_sd(np.diff(x) / np.sqrt(1.0 / w[:-1] + 1.0 / w[1:]))
    blocks = x.size // NOISE_BLOCK
    if blocks < 3 or not short_range > 0:
        return short_range, 0.0
    # Clip outliers first: block means would carry them into most differences.
    clipped = _winsorise(x, w, short_range)[: blocks * NOISE_BLOCK].reshape(blocks, NOISE_BLOCK)
    block_weights = w[: blocks * NOISE_BLOCK].reshape(blocks, NOISE_BLOCK)
    totals = block_weights.sum(axis=1)
    means = (clipped * block_weights).sum(axis=1) / totals
    return short_range, _robust_sd(np.diff(means) / np.sqrt(1.0 / totals[:-1] + 1.0 / totals[1:]))


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
    noise: float = 1.0  # the noise scale sigma the weights were divided by
    length: int = 0  # length of the caller's series, missing points included


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
    if x.size < RUNNING_WINDOW:
        return np.array([np.median(x[max(0, i - half) : i + half + 1]) for i in range(x.size)])
    centre = np.median(np.lib.stride_tricks.sliding_window_view(x, RUNNING_WINDOW), axis=1)
    head = [np.median(x[: i + half + 1]) for i in range(half)]
    tail = [np.median(x[i - half :]) for i in range(x.size - half, x.size)]
    return np.concatenate([head, centre, tail])


def prepare_series(
    values: object, weights: object = None, *, noise: float | None = None, min_size: int = 2
) -> PreparedSeries | None:
    """Drop missing points, scale weights by the noise, winsorise outliers (not runs of
    ``min_size`` points far off on one side: a segment may fit those).

    None when nothing can be detected: too few points or no variation at all.
    """
    x, w, positions = _valid(values, weights)
    sigma = noise_scale(x, w) if noise is None else float(noise)
    if x.size < 2 or not sigma > 0:
        return None
    length = int(np.asarray(values, dtype=float).size)
    return PreparedSeries(_winsorise(x, w, sigma, keep_runs=min_size), w / sigma**2, positions, sigma, length)


def _winsorise(x: np.ndarray, w: np.ndarray, sigma: float, keep_runs: int | None = None) -> np.ndarray:
    """Pull points beyond WINSOR_SDS noise SDs from the running median back to that bound.

    ``keep_runs``: runs of that many consecutive points or more, each beyond
    ``SHORT_RUN_SDS`` on the same side, keep their values (a short dip the segments
    may fit: pass the shortest segment allowed).
    """
    centre = _running_median(x)
    reach = WINSOR_SDS * sigma / np.sqrt(w)
    clipped = np.clip(x, centre - reach, centre + reach)
    if keep_runs is None or x.size == 0:
        return clipped
    side = np.sign(x - centre) * (np.abs(x - centre) > SHORT_RUN_SDS * sigma / np.sqrt(w))
    edges = np.flatnonzero(np.diff(side) != 0) + 1
    starts, ends = np.r_[0, edges], np.r_[edges, x.size]
    kept = np.repeat((ends - starts >= keep_runs) & (side[starts] != 0), ends - starts)
    return np.where(kept, x, clipped)


class SegmentShape(StrEnum):
    """What a segment of a series looks like between two change points."""

    FLAT = "flat"  # a level
    LINEAR = "linear"  # a trend


@dataclass(frozen=True)
class Segment:
    """One stretch ``[start, end)`` of the caller's series, with its fitted line.

    Positions refer to the caller's series (missing points included). ``level``
    is the fitted value at ``start`` and ``slope`` the change per position (0 for
    flat segments), both in the series' units, from the winsorised values.
    ``level_se``/``end_se`` are the standard errors of the fitted values at the
    first and last usable point, in the same units.
    """

    start: int
    end: int
    shape: SegmentShape
    level: float
    slope: float
    first: int  # first and last usable (non-missing) position
    last: int
    level_se: float
    end_se: float

    def value_at(self, position: float) -> float:
        """The fitted value at ``position``."""
        return self.level + self.slope * (position - self.start)


@dataclass(frozen=True)
class Segmentation:
    """The optimal segmentation of a series and the noise scale it was found at."""

    segments: tuple[Segment, ...]
    noise: float
    prepared: PreparedSeries  # the points the segments were fitted to (winsorised, in chi-square weights)
    penalty: float  # per change, chi-square units

    @property
    def starts(self) -> list[int]:
        """Positions where a new segment starts (never 0)."""
        return [s.start for s in self.segments[1:]]


def segment_series(
    values: object,
    weights: object = None,
    *,
    penalty: float | None = None,
    min_size: int = 2,
    noise: float | None = None,
    slope_penalty: float | None = None,
) -> Segmentation | None:
    """Best split of a series into flat and sloped segments; None if nothing can be detected.

    Minimises sum(segment cost) + penalty * (number of changes) exactly, where a
    segment costs its chi-square residual around its mean, or around its line
    plus ``slope_penalty`` (default ``SLOPE_PENALTY``) when that is smaller (see
    :func:`detectors.costs.segment_costs`). Optimal partitioning by dynamic
    programming over a vectorised cost matrix: the same answer PELT gives,
    without a Python call per candidate segment (about 1 ms for a 160-week
    series, where ruptures' Pelt with a Python cost took tens of ms).
    """
    prepared = prepare_series(values, weights, noise=noise, min_size=min_size)
    if prepared is None:
        return None
    size = prepared.values.size
    pen = default_penalty(size) if penalty is None else float(penalty)
    beta = SLOPE_PENALTY if slope_penalty is None else float(slope_penalty)
    costs = segment_costs(
        prepared.values, prepared.weights, prepared.positions, slope_penalty=beta, min_size=min(min_size, size)
    )
    breaks = [size] if size < 2 * min_size else optimal_partition(costs.cost, pen)
    positions, length = prepared.positions, prepared.length

    def fit(bounds: list[int]) -> tuple[Segment, ...]:
        return tuple(
            _fit_segment(
                prepared.values[s:e],
                prepared.weights[s:e],
                positions[s:e],
                start=0 if s == 0 else int(positions[s]),
                end=length if e == size else int(positions[e]),
                linear=bool(costs.linear[s, e]),
            )
            for s, e in zip(bounds[:-1], bounds[1:], strict=True)
        )

    bounds = [0, *breaks]
    segments = fit(bounds)
    # Lines that join a neighbour smoothly are slides (or their ends): leave them.
    isolated = [
        seg.shape is SegmentShape.LINEAR
        and not (j > 0 and _joins(segments[j - 1], seg))
        and not (j + 1 < len(segments) and _joins(seg, segments[j + 1]))
        for j, seg in enumerate(segments)
    ]
    if any(isolated):
        bounds = _steps_over_lines(bounds, isolated, costs, prepared, penalty=pen, beta=beta, min_size=min_size)
        segments = fit(bounds)
    return Segmentation(segments, prepared.noise, prepared, pen)


def _steps_over_lines(
    bounds: list[int],
    isolated: list[bool],
    costs: SegmentCosts,
    prepared: PreparedSeries,
    *,
    penalty: float,
    beta: float,
    min_size: int,
) -> list[int]:
    """Split an isolated sloped segment at a step when one step fits it better than its line.

    Charged a change penalty, a step costs more than a slope (``SLOPE_PENALTY``),
    so a level shift in the middle of a noisy stretch can pass for a gentle
    trend (a line captures 3/4 of a centred step's sum of squares): a 15-point
    shift at 30 responses a week went from 75% found to 50%. Where the best
    single step beats the segment's line outright and is itself worth a change
    (its gain over the flat mean reaches ``penalty``), the step is kept: the same
    number of parameters, the better fit, and the more common event. Only lines
    that join no neighbour smoothly (``isolated``), and not when a ramp beats the
    step by ``RAMP_GAIN`` there: those are slides.
    """
    out = [bounds[0]]
    for j, (s, e) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        if isolated[j] and e - s >= 2 * min_size:
            taus = np.arange(s + min_size, e - min_size + 1)
            split = costs.flat[s, taus] + costs.flat[taus, e]
            best = int(np.argmin(split))
            line = costs.cost[s, e] - beta
            if split[best] <= line and costs.flat[s, e] - split[best] >= penalty:
                # The ramp may start in the previous segment and end in the next one.
                lo, hi = bounds[max(j - 1, 0)], bounds[min(j + 2, len(bounds) - 1)]
                ramp = _fit_ramps(prepared, int(prepared.positions[lo]), int(prepared.positions[hi - 1]), min_size=min_size)
                if ramp is None or ramp.step_rss - ramp.ramp_rss < RAMP_GAIN:  # a slide stays a line
                    out.append(int(taus[best]))
        out.append(e)
    return out


def optimal_partition(cost: np.ndarray, penalty: float) -> list[int]:
    """Segment ends (the last is the series length) minimising total cost + penalty per change.

    ``cost[s, e]`` is the cost of points ``[s, e)`` (inf where not allowed).
    """
    size = cost.shape[0] - 1
    best = np.full(size + 1, np.inf)
    best[0] = -penalty
    previous = np.zeros(size + 1, dtype=int)
    for end in range(1, size + 1):
        candidates = best[:end] + cost[:end, end]
        start = int(np.argmin(candidates))
        best[end] = candidates[start] + penalty
        previous[end] = start
    breaks = []
    end = size
    while end > 0:
        breaks.append(end)
        end = previous[end]
    return breaks[::-1]


def _fit_segment(x: np.ndarray, w: np.ndarray, t: np.ndarray, *, start: int, end: int, linear: bool) -> Segment:
    """Weighted least-squares level (or line) of one segment; ``w`` are inverse variances."""
    total = w.sum()
    t_mean = float((w * t).sum() / total)
    x_mean = float((w * x).sum() / total)
    slope, slope_var = 0.0, 0.0
    if linear:
        stt = float((w * (t - t_mean) ** 2).sum())
        slope = float((w * (t - t_mean) * (x - x_mean)).sum() / stt)
        slope_var = 1.0 / stt

    def se(at: float) -> float:
        return math.sqrt(1.0 / total + slope_var * (at - t_mean) ** 2)

    return Segment(
        start=start,
        end=end,
        shape=SegmentShape.LINEAR if linear else SegmentShape.FLAT,
        level=x_mean + slope * (start - t_mean),
        slope=slope,
        first=int(t[0]),
        last=int(t[-1]),
        level_se=se(float(t[0])),
        end_se=se(float(t[-1])),
    )


def find_change_points(
    values: object,
    weights: object = None,
    *,
    penalty: float | None = None,
    min_size: int = 2,
    noise: float | None = None,
) -> list[int]:
    """Indices where a new segment starts (sorted, never 0, never ``len(values)``).

    A segment is a level or a linear trend (see :func:`segment_series`): a step
    gives one index, a slide between two levels two (its start and its end), a
    trend over the whole series none.

    ``values``: list, array or Series, NaN for missing periods (skipped; indices
    still refer to the original positions). ``weights``: sample sizes or inverse
    variances, relative is enough: point i has variance noise^2 / weights[i].
    ``noise``: that noise scale if known, else estimated robustly from the data.
    ``penalty``: per change point in chi-square units, default calibrated for
    about one false alarm per 100 series-years of weekly data.
    """
    segmentation = segment_series(values, weights, penalty=penalty, min_size=min_size, noise=noise)
    return [] if segmentation is None else segmentation.starts


class ChangeShape(StrEnum):
    """How a metric moved from its old level to its new one."""

    STEP = "step"  # from one period to the next
    GRADUAL = "gradual"  # a slide over several periods (or one still going on)


@dataclass(frozen=True)
class ChangeSpan:
    """Rows ``[start, end)`` over which a change happens.

    ``start`` is the first row off the old level, ``end`` the first row at the
    new one: ``start == end`` for a step; ``end == len(stats)`` for a slide still
    going on at the last period.
    """

    start: int
    end: int

    @property
    def shape(self) -> ChangeShape:
        return ChangeShape.STEP if self.end == self.start else ChangeShape.GRADUAL


@dataclass(frozen=True)
class Change:
    """One change in one metric, described by the stretches either side of it.

    A step (``shape == "step"``) moves the level from one period to the next; a
    gradual change slides from ``change_date`` (its first period off the old
    level) to ``end_date`` (its last period on the slope), at ``slope`` metric
    units per period, and ``ongoing`` when still sliding at the last period.
    ``before`` pools the stretch before the change; ``after`` the stretch after
    it (for an ongoing slide, its last third: where the metric is now).
    """

    metric: str
    index: int  # row of the first period at the new level (a step) or off the old one (gradual)
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
    shape: ChangeShape = ChangeShape.STEP
    # Gradual changes only (None for steps): last row on the slope, and the slope
    # per period with its interval (weighted least squares over the slide, weights
    # = per-period sample sizes, widened by the same design effect as ``delta``).
    end_index: int | None = None
    end_date: pd.Timestamp | None = None
    slope: float | None = None
    slope_ci_low: float | None = None
    slope_ci_high: float | None = None
    ongoing: bool = False

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
        **gradual: object,
    ) -> Change:
        """A change described by the comparison of the stretches either side of it.

        ``gradual``: the keyword fields of a gradual change (``shape``,
        ``end_index``, ``end_date``, ``slope``, ``slope_ci_low``,
        ``slope_ci_high``, ``ongoing``).
        """
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
            **gradual,  # type: ignore[arg-type]
        )


DEFAULT_MIN_N = 30

# A change is described as a slide when a ramp from the old level to the new one
# (over >= MIN_RAMP_WIDTH periods) beats the best single step over the same
# segments by this much (chi-square units). Not a search penalty: the change is
# already found; this only chooses its shape. Chosen on the simulated weekly
# Happiness of benchmarks/changepoints.py (random lengths, sample sizes, onsets),
# on its own seeds: 4.5 keeps steps reported as steps at 97-100% for every
# sample size while slides at >= 100 responses a week come out gradual about
# half the time (3.5: steps at 30/week drop to 92%, slides gain 2 points).
# Below ~50 responses a week a 6-30 week slide of 15-25 points is mostly not
# distinguishable from a step (its gain is ~ drop^2 * weeks / 12 / variance),
# and is then reported as a step inside the slide.
RAMP_GAIN = 4.5
# A ramp spans at least this many intervals between its two levels (k - i),
# i.e. MIN_RAMP_WIDTH - 1 periods in between: one odd period between two levels
# is a step with a noisy week, not a slide.
MIN_RAMP_WIDTH = 3
# Two segments join smoothly (a slide's start or end, not a jump) when the gap
# between their fitted lines is within this many standard errors, or within
# CONTINUITY_SHARE of the slide's own rise or fall.
CONTINUITY_Z = 3.0
CONTINUITY_SHARE = 0.25


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

    Each change is a step or a gradual slide (see :func:`change_spans`): a
    decline over weeks is one gradual change dated at its first week off the
    old level, with its last week and its slope.

    With a ``reference`` (per-period values and variances of, say, everyone),
    changes are located on the series minus the reference: where a segment
    departs from the rest, not where everyone moved together. They are still
    described on the segment's own series.

    Empty or all-missing statistics give no change.
    """
    if len(stats) == 0:
        return []
    values, variances, _ = metric.per_period(stats)
    variances = np.fmax(variances, metric.pooled_variance(stats))
    if reference is not None:
        values = values - reference.values
        variances = variances + np.nan_to_num(reference.variances, nan=np.inf)
    weights = _safe_reciprocal(variances)
    segmentation = segment_survey_series(values, weights, penalty=penalty, min_size=min_size)
    if segmentation is None:
        return []
    return describe_changes(
        metric,
        stats,
        change_spans(segmentation, min_size=min_size),
        design_effect=segmentation.noise**2,
        min_effect=min_effect,
        min_n=min_n,
        confidence=confidence,
    )


def survey_noise(values: object, weights: object) -> float:
    """The noise scale of a series whose weights are its known sampling precisions:
    how many times the sampling noise its week-to-week variation is (never below 1).

    ``noise_scale``'s block estimate reads real level changes as noise (block
    differences straddle them): a series with a go-live dip and a dip months before
    came out at 2.5x its sampling noise, and a 20-point dip of five weeks at 470
    answers a week went unseen. Here the first differences give the short-range
    scale (a level change touches one of them, which the robust scale rejects), and
    positive autocorrelation, which makes segment means wander more than first
    differences show, is corrected for with the lag-one correlation of consecutive
    differences (AR(1): corr = -(1 - phi) / 2), estimated just as robustly.
    """
    x, w, _ = _valid(values, weights)
    short_range, long_range = _noise_scales(x, w)
    if not short_range > 0:
        return 1.0
    steps = np.diff(x) / np.sqrt(1.0 / w[:-1] + 1.0 / w[1:])
    phi = 0.0
    if steps.size >= 8:
        # Gnanadesikan-Kettenring: a robust correlation from robust scales of sums and differences.
        plus, minus = _robust_sd(steps[1:] + steps[:-1]) ** 2, _robust_sd(steps[1:] - steps[:-1]) ** 2
        if plus + minus > 0:
            phi = float(np.clip(1.0 + 2.0 * (plus - minus) / (plus + minus), 0.0, MAX_PHI))
    return max(1.0, min(short_range * math.sqrt(1.0 + phi) / (1.0 - phi), max(short_range, long_range)))


def segment_survey_series(
    values: object, weights: object, *, penalty: float | None = None, min_size: int = 2
) -> Segmentation | None:
    """``segment_series`` of a survey series (weights: its sampling precisions) at the
    noise scale ``survey_noise`` reads, or at the lower one its changes leave,
    whichever the data support better.

    Differences that straddle real changes pass for noise: a ramp back from a dip is
    a run of same-signed differences, which reads as autocorrelation, and block
    means straddle every step. A series with three dips and an improvement in 58
    weeks came out at 4x its week-to-week noise, and one change of five was found.
    Two readings are therefore weighed: the changes found at ``survey_noise``'s
    scale with autocorrelated (AR(1)) noise around them, and the changes found at
    the short-range scale, re-estimated on their residuals until it settles, with
    white noise. The second is taken when it fits better by BIC (:func:`_bic`,
    ``CHANGE_PARAMETERS`` per change): week-to-week wander (AR(1), phi 0.3-0.8)
    keeps its estimate and its calibrated false-alarm rate.

    Survey series only: on generic series (``find_change_points``) the second
    reading cut seasonal and trending real series into more pieces (TCPD F1 0.78
    -> 0.77, 5 -> 7 changes per series), so ``noise_scale`` stands there.
    """
    x = np.asarray(values, dtype=float).reshape(-1)
    ceiling = survey_noise(x, weights)
    top = segment_series(x, weights, penalty=penalty, min_size=min_size, noise=ceiling)
    usable, usable_weights, _ = _valid(x, weights)
    if top is None or usable.size < MIN_POINTS_TO_WEIGH:
        return top
    sigma = min(ceiling, max(1.0, _noise_scales(usable, usable_weights)[0]))
    if not sigma < ceiling * (1.0 - NOISE_TOLERANCE):
        return top
    bottom = segment_series(x, weights, penalty=penalty, min_size=min_size, noise=sigma)
    for _ in range(MAX_NOISE_ROUNDS):
        if bottom is None:
            return top
        higher = min(ceiling, survey_noise(x - _fitted(bottom), weights))
        if not higher > sigma * (1.0 + NOISE_TOLERANCE):
            break
        sigma = higher
        bottom = segment_series(x, weights, penalty=penalty, min_size=min_size, noise=sigma)
    if bottom is None or len(bottom.segments) <= len(top.segments):
        return top
    return bottom if _bic(x, weights, bottom, ar=False) < _bic(x, weights, top, ar=True) else top


def _fitted(segmentation: Segmentation) -> np.ndarray:
    """The segments' fitted values at every position of the caller's series."""
    return np.concatenate([seg.value_at(np.arange(seg.start, seg.end)) for seg in segmentation.segments])


def _bic(x: np.ndarray, weights: object, segmentation: Segmentation, *, ar: bool) -> float:
    """-2 log-likelihood of white (or AR(1)) noise on the weight-standardised residuals,
    plus ``CHANGE_PARAMETERS`` log n per change, ``SLOPE_PENALTY`` per slope, and
    log n for phi."""
    w = np.asarray(weights, dtype=float).reshape(-1)
    r = (x - _fitted(segmentation)) * np.sqrt(np.where(w > 0, w, np.nan))
    r = r[np.isfinite(r)]
    charge = (len(segmentation.segments) - 1) * CHANGE_PARAMETERS * math.log(r.size)
    charge += SLOPE_PENALTY * sum(seg.shape is SegmentShape.LINEAR for seg in segmentation.segments)
    phi = 0.0
    if ar:
        phi = float(np.clip(np.sum(r[1:] * r[:-1]) / max(np.sum(r[:-1] ** 2), 1e-12), 0.0, MAX_PHI))
        charge += math.log(r.size - 1)
    innovations = r[1:] - phi * r[:-1]  # both readings over the same n - 1 points
    return innovations.size * math.log(max(float(np.mean(innovations**2)), 1e-12)) + charge


def change_spans(segmentation: Segmentation, *, min_size: int = 2) -> list[ChangeSpan]:
    """The changes a segmentation implies, each a step or a slide.

    Each boundary between segments is a change, except that a sloped segment
    joining its neighbours smoothly makes one change of the boundaries either
    side of it (a jump onto a slope going the other way is a step, and the slope
    a slide of its own when it starts off a level later), and neighbouring
    changes in the same direction merge into one when a single ramp fits their
    segments within one change penalty of the segmentation (a staircase down is
    one slide). A sloped first segment is a
    change only when a ramp from a level beats its line by ``RAMP_GAIN`` (a
    trend through the whole history is not a change).

    Each change's shape is then chosen on the data of its segments: a slide
    (dated by the best ramp: first period off the old level, first period at the
    new one) when that ramp beats the best single step there by ``RAMP_GAIN``,
    else a step at the boundary. Not a search penalty: the change is already
    found, this only describes it; the search charges a full change penalty for
    a slide's second end, so slides short, noisy or running into a flat stretch
    often come out of it as one jump.
    """
    segments = segmentation.segments
    prepared = segmentation.prepared
    spans: list[ChangeSpan] = []
    groups: list[list[int]] = []  # first and last segment index of each change
    j = 1
    while j < len(segments):
        if segments[j].shape is SegmentShape.LINEAR and _joins(segments[j - 1], segments[j]):
            through = j + 1 < len(segments) and _joins(segments[j], segments[j + 1])
            groups.append([j - 1, j + 1] if through else [j - 1, j])
            j += 2 if through else 1
        else:
            groups.append([j - 1, j])
            j += 1
    groups = _merge_staircases(segmentation, groups, min_size=min_size)
    if segments[0].shape is SegmentShape.LINEAR and not _continues(segmentation, groups):
        spans += _later_slide(prepared, segments[0], min_size=min_size)  # sloped from the start: sliding later?
    for first, last in groups:
        if last == first + 1 and _reverses(segments[first], segments[last]):
            # A jump onto a trend going the other way (joins were grouped above): the
            # jump is a step, and the trend a slide of its own if it starts off a level
            # later. One ramp over both would date the slide and lose the jump (a
            # dip's recovery followed by a new decline).
            spans.append(ChangeSpan(segments[last].start, segments[last].start))
            spans += _later_slide(prepared, segments[last], min_size=min_size)
            continue
        fit = _fit_ramps(prepared, segments[first].first, segments[last].last, min_size=min_size)
        if fit is not None and fit.step_rss - fit.ramp_rss >= RAMP_GAIN:
            spans.append(_segmented_slide(segments, first, last) or _jump_then_slide(segmentation, first, last, fit)
                         or fit.span)
        elif last == first + 1:
            spans.append(ChangeSpan(segments[last].start, segments[last].start))
        elif fit is not None:  # a merged group that no longer reads as a slide: its best step
            spans.append(ChangeSpan(fit.step_at, fit.step_at))
    spans = sorted((s for s in spans if not _springs_back(segments, s, min_size=min_size)), key=lambda s: s.start)
    # Ramps fitted on overlapping windows may overlap by a period: keep them in order.
    return [s for k, s in enumerate(spans) if k == 0 or s.start >= spans[k - 1].end]


def _springs_back(segments: tuple[Segment, ...], span: ChangeSpan, *, min_size: int) -> bool:
    """Does the level jump back against a slide, by ``SPRING_BACK`` of its depth or more,
    fewer than ``min_size`` periods after the slide passed half its depth (its
    midpoint)? A dip that short is no change of level; a line that overshoots the
    level it joins is no jump back (dropping a volume drop's recovery slide left the
    drop described against the recovered level, and no finding).

    Responses thin out over the Christmas weeks and come back in January; read as the
    end of a gentle slope (or a slope onto the two holiday weeks), those weeks were a
    volume slide, a halving "held" for none of the four weeks a volume change needs
    (12 of 65 false roots in 200 worlds, and more where the data start in November).
    """
    if span.end <= span.start:
        return False
    following = next((seg for seg in segments if seg.start > span.end), None)
    if following is None or following.start - (span.start + span.end) / 2 >= min_size:
        return False
    reached = next((seg for seg in segments if seg.start <= span.end < seg.end), None)
    origin = next((seg for seg in segments if seg.start <= span.start - 1 < seg.end), None)
    if reached is None or origin is None:
        return False
    depth = reached.value_at(span.end) - origin.value_at(span.start - 1)
    jump = following.value_at(following.start) - reached.value_at(following.start)
    return bool(depth * jump < 0 and abs(jump) >= SPRING_BACK * abs(depth))


def _later_slide(prepared: PreparedSeries, segment: Segment, *, min_size: int) -> list[ChangeSpan]:
    """The slide inside a sloped segment that starts off a level after the segment
    does (``_dated_trend``), within the segment; none otherwise (``_springs_back``
    then drops one the level jumps back from at once)."""
    dated = _dated_trend(prepared, segment, min_size=min_size)
    if dated is None or dated.start <= segment.start:
        return []
    return [ChangeSpan(dated.start, min(dated.end, segment.end))]


def _continues(segmentation: Segmentation, groups: list[list[int]]) -> bool:
    """Does the first change go on the way a sloped first segment slides?

    Then the slide and the change are one, dated by the ramp refit over both: a ramp
    fitted inside the first segment alone must end where the segment does and, not
    seeing the level after, started slides 5-7 weeks early when the segmentation cut
    a slide's last weeks off as a jump.
    """
    first = segmentation.segments[0]
    return bool(groups and groups[0][0] == 0 and _direction(segmentation, *groups[0]) * first.slope > 0)


def _reverses(left: Segment, right: Segment) -> bool:
    """A sloped segment whose slope goes against the jump onto it."""
    if right.shape is not SegmentShape.LINEAR:
        return False
    jump = right.level - left.value_at(right.start)
    return bool(jump * right.slope < 0)


def _segmented_slide(segments: tuple[Segment, ...], first: int, last: int) -> ChangeSpan | None:
    """The slide as the segmentation found it, when it follows a drift: the one
    sloped segment of a change after a sloped first segment it joins. The ramp
    refit assumes a level before the slide and, after a slow drift, dated slides
    weeks early; the segmentation's bounds allow for the drift. None otherwise
    (after a level, the refit dates a slide better than the segmentation's jump)."""
    if segments[first].shape is not SegmentShape.LINEAR:
        return None
    sloped = [k for k in range(first + 1, last + 1) if segments[k].shape is SegmentShape.LINEAR]
    if len(sloped) != 1 or not _joins(segments[sloped[0] - 1], segments[sloped[0]]):
        return None
    return ChangeSpan(segments[sloped[0]].start, segments[sloped[0]].end)


def _jump_then_slide(segmentation: Segmentation, first: int, last: int, ramp: _RampFit) -> ChangeSpan | None:
    """A jump onto a slope going the same way, which fits clearly better (by
    ``RAMP_GAIN``) than the best ramp from a level, and which that ramp starts before:
    the change starts at the jump, as the segmentation found it, and slides on to the
    ramp's end. One ramp cannot hold a jump and a slope; its compromise started a step
    followed by a 30-week decline 16 weeks before the step. None otherwise (a clean
    ramp the segmentation cut with a small jump keeps the ramp's dates)."""
    left, right = segmentation.segments[first], segmentation.segments[last]
    if (last != first + 1 or right.shape is not SegmentShape.LINEAR or _joins(left, right)
            or _reverses(left, right) or not ramp.span.start < right.start < ramp.span.end):
        return None
    jump_rss = _segment_rss(segmentation.prepared, left) + _segment_rss(segmentation.prepared, right)
    return ChangeSpan(right.start, ramp.span.end) if ramp.ramp_rss - jump_rss >= RAMP_GAIN else None


def _direction(segmentation: Segmentation, first: int, last: int) -> float:
    left, right = segmentation.segments[first], segmentation.segments[last]
    return float(np.sign(right.value_at((right.first + right.last) / 2) - left.value_at((left.first + left.last) / 2)))


def _merge_staircases(segmentation: Segmentation, groups: list[list[int]], *, min_size: int) -> list[list[int]]:
    """Merge neighbouring changes in the same direction that one ramp explains within a change penalty."""
    prepared = segmentation.prepared
    merged = True
    while merged and len(groups) > 1:
        merged = False
        for g in range(len(groups) - 1):
            a, b = groups[g], groups[g + 1]
            if a[1] != b[0] or _direction(segmentation, *a) != _direction(segmentation, *b):
                continue
            first, last = segmentation.segments[a[0]], segmentation.segments[b[1]]
            fit = _fit_ramps(prepared, first.first, last.last, min_size=min_size)
            current = sum(_segment_rss(prepared, s) for s in segmentation.segments[a[0] : b[1] + 1])
            if fit is not None and fit.ramp_rss <= current + segmentation.penalty:
                groups[g : g + 2] = [[a[0], b[1]]]
                merged = True
                break
    return groups


def _segment_rss(prepared: PreparedSeries, segment: Segment) -> float:
    lo, hi = np.searchsorted(prepared.positions, [segment.first, segment.last + 1])
    x, w, t = prepared.values[lo:hi], prepared.weights[lo:hi], prepared.positions[lo:hi]
    return float(np.sum(w * (x - segment.value_at(t)) ** 2))


def _joins(left: Segment, right: Segment) -> bool:
    """Whether two neighbouring segments meet without a jump (one of them sloped)."""
    at = (left.last + right.first) / 2.0
    gap = abs(right.value_at(at) - left.value_at(at))
    se = math.hypot(left.end_se, right.level_se)
    rise = max(abs(s.slope) * (s.last - s.first + 1) for s in (left, right))
    return gap <= CONTINUITY_Z * se or gap <= CONTINUITY_SHARE * rise


def _dated_trend(prepared: PreparedSeries, segment: Segment, *, min_size: int) -> ChangeSpan | None:
    """A slide inside a sloped segment: a ramp from a level beating its straight line by RAMP_GAIN.

    A series that is flat for a while and then slides often fits one line from
    its first period nearly as well as a level plus a sloped segment with the
    change penalty on top; the ramp model dates where the slide started.
    """
    line_rss = _segment_rss(prepared, segment)
    fit = _fit_ramps(prepared, segment.first, segment.last, min_size=min_size)
    return None if fit is None or line_rss - fit.ramp_rss < RAMP_GAIN else fit.span


@dataclass(frozen=True)
class _RampFit:
    step_rss: float  # best single step in the window
    ramp_rss: float  # best ramp (>= 2 periods) in the window
    span: ChangeSpan  # that ramp's rows
    step_at: int  # position of the best step (first point at the new level)


def _fit_ramps(prepared: PreparedSeries, first: int, last: int, *, min_size: int) -> _RampFit | None:
    """Best step and best ramp over positions first..last of the prepared series.

    The ramp model holds level a up to point i, moves linearly (in time) to level
    b at point k > i + 1 and holds b after (k may be the last point: a slide
    still going on); the step is its k = i + 1 case. Both are fitted by weighted
    least squares for every (i, k) at once from prefix sums.
    """
    lo, hi = np.searchsorted(prepared.positions, [first, last + 1])
    x, w = prepared.values[lo:hi], prepared.weights[lo:hi]
    t = prepared.positions[lo:hi].astype(float)
    m = x.size
    if m < min_size + 3:
        return None
    x = x - np.average(x, weights=w)
    t = t - t[0]
    sums = {"w": w, "wt": w * t, "wtt": w * t * t, "wx": w * x, "wtx": w * t * x}
    cum = {name: np.concatenate([[0.0], np.cumsum(v)]) for name, v in sums.items()}
    syy = float(np.sum(w * x * x))
    i, k = np.triu_indices(m, k=1)
    keep = (i + 1 >= min_size) & ((m - k >= min_size) | ((k == m - 1) & (k - i >= MIN_RAMP_WIDTH)))
    keep &= (k == i + 1) | (k - i >= MIN_RAMP_WIDTH)
    i, k = i[keep], k[keep]
    step = k == i + 1
    if not step.any() or step.all():
        return None
    ti, width = t[i], t[k] - t[i]

    def between(name: str) -> np.ndarray:
        return cum[name][k] - cum[name][i + 1]

    m0, m1, m2, my, mty = (between(n) for n in ("w", "wt", "wtt", "wx", "wtx"))
    sh = (m1 - ti * m0) / width
    shh = (m2 - 2 * ti * m1 + ti * ti * m0) / width**2
    shy = (mty - ti * my) / width
    b0, by = cum["w"][i + 1], cum["wx"][i + 1]
    a0, ay = cum["w"][m] - cum["w"][k], cum["wx"][m] - cum["wx"][k]
    suu, svv, suv = b0 + m0 - 2 * sh + shh, a0 + shh, sh - shh
    suy, svy = by + my - shy, ay + shy
    det = suu * svv - suv * suv
    with np.errstate(divide="ignore", invalid="ignore"):
        explained = (svv * suy * suy - 2 * suv * suy * svy + suu * svy * svy) / det
    rss = np.where(det > 1e-12 * suu * svv, syy - explained, np.inf)
    ramp = int(np.argmin(np.where(step, np.inf, rss)))
    positions = prepared.positions[lo:hi]
    end = int(positions[k[ramp]])
    if lo + k[ramp] == prepared.values.size - 1:  # reaches the last point: still sliding
        end = prepared.length
    best_step = int(np.argmin(np.where(step, rss, np.inf)))
    return _RampFit(
        float(rss[best_step]), float(rss[ramp]), ChangeSpan(int(positions[i[ramp] + 1]), end), int(positions[k[best_step]])
    )


def describe_changes(
    metric: Metric,
    stats: pd.DataFrame,
    starts: list[int] | list[ChangeSpan] | list[int | ChangeSpan],
    *,
    design_effect: float = 1.0,
    min_effect: float | None = None,
    min_n: int = DEFAULT_MIN_N,
    confidence: float = 0.95,
) -> list[Change]:
    """Describe given changes by pooling the stretches either side of each.

    ``starts``: rows where a step starts (ints) or :class:`ChangeSpan` s, in
    order. ``design_effect`` (>= 1) deflates the pooled sums to widen intervals
    when periods vary more than sampling explains.
    """
    spans = [s if isinstance(s, ChangeSpan) else ChangeSpan(s, s) for s in starts]
    size = len(stats)
    # Stretch j lies between change j - 1 and change j: rows [end of j - 1, start of j).
    edges = [0, *[edge for s in spans for edge in (s.start, s.end)], size]
    bounds = list(zip(edges[0::2], edges[1::2], strict=True))
    if spans and spans[-1].end >= size:  # still sliding: "after" is where the metric is now
        tail = max(min(2, size - spans[-1].start), (size - spans[-1].start) // 3)
        bounds[-1] = (size - tail, size)
    segments = pool_ranges(stats, [first for first, _ in bounds], [last for _, last in bounds])
    levels = metric.estimate_frame(segments, confidence=confidence, design_effect=design_effect)["value"].to_numpy()
    changes = []
    for j, span in enumerate(spans):
        delta = metric.compare(
            segments.iloc[j], segments.iloc[j + 1], confidence=confidence, design_effect=design_effect
        )
        back = next(
            (k for k in range(j + 2, len(segments)) if delta.before.ci_low <= levels[k] <= delta.before.ci_high),
            None,
        )
        gradual: dict[str, object] = {}
        if span.shape is ChangeShape.GRADUAL:
            last = min(span.end, size) - 1
            slope, low, high = _slope(metric, stats, max(span.start - 1, 0), min(span.end, size - 1), design_effect, confidence)
            gradual = {
                "shape": ChangeShape.GRADUAL,
                "end_index": last,
                "end_date": stats.index[last],
                "slope": slope,
                "slope_ci_low": low,
                "slope_ci_high": high,
                "ongoing": span.end >= size,
            }
        changes.append(
            Change.of(
                metric,
                delta,
                index=span.start,
                change_date=stats.index[span.start],
                recovered_at=None if back is None else stats.index[bounds[back][0]],
                finding=is_finding(delta, metric, min_effect=min_effect, min_n=min_n),
                before_from=stats.index[bounds[j][0]],
                after_to=stats.index[bounds[j + 1][1] - 1],
                **gradual,
            )
        )
    return changes


def _slope(
    metric: Metric, stats: pd.DataFrame, first: int, last: int, design_effect: float, confidence: float
) -> tuple[float, float, float]:
    """Slope per period of ``metric`` over rows first..last, with its interval.

    Weighted least squares with each period weighted by its sample size; the
    variance is the sandwich sum_i n_i^2 (t_i - t_bar)^2 var_i / Sxx^2 with each
    period's sampling variance (floored as in detection) times the design effect,
    so it stays honest when sample sizes and variances differ. NaN when fewer
    than two periods have responses.
    """
    rows = stats.iloc[first : last + 1]
    values, variances, n = metric.per_period(rows)
    variances = np.fmax(variances, metric.pooled_variance(rows))
    t = np.arange(first, last + 1, dtype=float)
    keep = np.isfinite(values) & np.isfinite(variances) & (n > 0)
    if keep.sum() < 2:
        return math.nan, math.nan, math.nan
    t, y, n, v = t[keep], values[keep], n[keep].astype(float), variances[keep]
    t_bar = np.average(t, weights=n)
    sxx = float(np.sum(n * (t - t_bar) ** 2))
    if not sxx > 0:
        return math.nan, math.nan, math.nan
    slope = float(np.sum(n * (t - t_bar) * (y - np.average(y, weights=n))) / sxx)
    se = math.sqrt(design_effect * float(np.sum(n * n * (t - t_bar) ** 2 * v)) / sxx**2)
    z = z_value(confidence)
    return slope, slope - z * se, slope + z * se


class KnownDateStatus(StrEnum):
    """Whether a given date could be tested, and if not, why."""

    TESTED = "tested"
    NO_HISTORY = "no_history"  # fewer complete periods before the date than asked for
    NOTHING_AFTER = "nothing_after"  # no period with responses from the date on
    TOO_FEW_RESPONSES = "too_few_responses"  # a side has fewer than min_n responses


@dataclass(frozen=True)
class KnownDateTest:
    """Before/after comparison at one given date, e.g. a transition's go-live.

    ``status`` says whether it was tested; ``reason`` says why not in words. The
    estimates are filled whenever both sides have responses (also for
    TOO_FEW_RESPONSES, as a hint), else None. ``z`` is the signed normal score of
    the two-sided ``p_value`` of after - before: no search over dates, hence no
    search penalty, just the usual test at ``confidence``.
    """

    metric: str
    change_date: pd.Timestamp
    status: KnownDateStatus
    reason: str
    periods_before: int  # complete periods pooled on each side
    periods_after: int
    before: Estimate | None = None
    after: Estimate | None = None
    delta: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    z: float | None = None
    p_value: float | None = None
    n_before: int = 0
    n_after: int = 0
    direction: Direction | None = None
    design_effect: float = 1.0

    @property
    def tested(self) -> bool:
        return self.status is KnownDateStatus.TESTED


def test_known_date(
    metric: Metric,
    stats: pd.DataFrame,
    date: object,
    *,
    periods_before: int | None = None,
    periods_after: int | None = None,
    min_periods_before: int = 1,
    min_n: int = 1,
    confidence: float = 0.95,
    design_effect: float | None = None,
) -> KnownDateTest:
    """Test one given date as a change point: before versus after, no search.

    ``stats``: per-period statistics indexed by period start (time order). Only
    complete periods count: "before" pools the periods that end on or before
    ``date`` (the last ``periods_before`` of them if given, else all), "after"
    the periods starting on or after it (the first ``periods_after`` if given);
    a period straddling the date is left out. One complete period before is
    enough (``min_periods_before``). ``design_effect`` widens the interval for
    week-to-week variation beyond sampling; by default it is estimated from the
    series' own noise (as in :func:`detect_changes`, never below 1) once there
    are three periods, else 1.

    Because the date is given, not searched for, the test is the ordinary
    two-sample comparison of :meth:`Metric.compare` at ``confidence``: a
    z-statistic of about 2 is evidence here, where a searched change needs the
    calibrated penalty (z of about 3.5-4).
    """
    when = pd.Timestamp(date)
    starts = pd.DatetimeIndex(stats.index)
    if len(starts) >= 2:
        step = pd.Series(starts[1:] - starts[:-1]).median()
    else:
        step = pd.Timedelta(days=7)
    ends = starts[1:].append(pd.DatetimeIndex([starts[-1] + step])) if len(starts) else starts
    before_rows = np.flatnonzero(np.asarray(ends <= when))
    after_rows = np.flatnonzero(np.asarray(starts >= when))
    if periods_before is not None:
        before_rows = before_rows[-periods_before:] if periods_before > 0 else before_rows[:0]
    if periods_after is not None:
        after_rows = after_rows[:periods_after] if periods_after > 0 else after_rows[:0]
    counts = metric.per_period(stats).n if len(stats) else np.zeros(0)
    has_before = bool(len(before_rows)) and float(np.nansum(counts[before_rows])) > 0
    has_after = bool(len(after_rows)) and float(np.nansum(counts[after_rows])) > 0
    base = {
        "metric": metric.name,
        "change_date": when,
        "periods_before": int(len(before_rows)),
        "periods_after": int(len(after_rows)),
    }
    if len(before_rows) < max(min_periods_before, 1) or not has_before:
        return KnownDateTest(
            **base,
            status=KnownDateStatus.NO_HISTORY,
            reason=f"{len(before_rows)} complete period(s) with responses before {when.date()}, "
            f"{max(min_periods_before, 1)} needed",
        )
    if not has_after:
        return KnownDateTest(
            **base, status=KnownDateStatus.NOTHING_AFTER, reason=f"no responses from {when.date()} on"
        )
    if design_effect is None:
        # Excess noise around the two levels: each side's weighted mean taken out
        # first, so the change being tested does not pass for noise.
        values, variances, _ = metric.per_period(stats)
        weights = _safe_reciprocal(np.fmax(variances, metric.pooled_variance(stats)))
        centred = np.full(values.shape, np.nan)
        for rows in (before_rows, after_rows):
            x, w = values[rows], weights[rows]
            ok = np.isfinite(x) & np.isfinite(w)
            if ok.any():
                centred[rows] = x - np.average(x[ok], weights=w[ok])
        design_effect = max(1.0, noise_scale(centred, weights)) ** 2
    delta = metric.compare(
        stats.iloc[before_rows].sum(), stats.iloc[after_rows].sum(), confidence=confidence, design_effect=design_effect
    )
    p_value = delta.p_value
    z = None
    if p_value is not None and math.isfinite(p_value):
        z = math.copysign(float(sps.norm.isf(max(p_value, 1e-300) / 2.0)), delta.delta) if delta.delta else 0.0
    enough = min(delta.n_before, delta.n_after) >= min_n
    return KnownDateTest(
        **base,
        status=KnownDateStatus.TESTED if enough else KnownDateStatus.TOO_FEW_RESPONSES,
        reason="tested"
        if enough
        else f"{delta.n_before} responses before and {delta.n_after} after, {min_n} needed on each side",
        before=delta.before,
        after=delta.after,
        delta=delta.delta,
        ci_low=delta.ci_low,
        ci_high=delta.ci_high,
        z=z,
        p_value=p_value,
        n_before=delta.n_before,
        n_after=delta.n_after,
        direction=metric.direction(delta.delta),
        design_effect=float(design_effect),
    )


# pytest would collect a module-level test_* function imported into a test module.
test_known_date.__test__ = False  # type: ignore[attr-defined]


def _safe_reciprocal(x: np.ndarray) -> np.ndarray:
    """1/x, NaN where x is missing or not positive (those periods are skipped)."""
    out = np.full(x.shape, np.nan)
    np.divide(1.0, x, out=out, where=np.isfinite(x) & (x > 0))
    return out
