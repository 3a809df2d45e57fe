"""Segment costs for change-point search on per-period values of unequal precision."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ruptures.base import BaseCost


class WeightedL2Cost(BaseCost):
    """Weighted squared error around the weighted segment mean.

    With weights = 1 / (noise variance of each point) the cost is a chi-square
    statistic: splitting a segment lowers it by z^2 of the level difference, so
    a penalty is a significance threshold in the same units, and a 3-response
    week (weight ~3) counts a hundred times less than a 300-response week.
    Prefix sums make every ``error`` call O(1).
    """

    model = "weighted_l2"
    min_size = 1

    def __init__(self, weights: np.ndarray | None = None) -> None:
        self.weights = None if weights is None else np.asarray(weights, dtype=float)
        self.signal: np.ndarray | None = None

    def fit(self, signal: np.ndarray) -> WeightedL2Cost:
        """Precompute prefix sums of w, w*x and w*x^2 (``signal`` is one column)."""
        x = np.asarray(signal, dtype=float).reshape(-1)
        w = np.ones_like(x) if self.weights is None else self.weights
        if w.shape != x.shape:
            raise ValueError(f"{w.size} weights for {x.size} points")
        self.signal = x.reshape(-1, 1)
        zero = np.zeros(1)
        self._w = np.concatenate([zero, np.cumsum(w)])
        self._wx = np.concatenate([zero, np.cumsum(w * x)])
        self._wxx = np.concatenate([zero, np.cumsum(w * x * x)])
        return self

    def error(self, start: int, end: int) -> float:
        """Cost of ``signal[start:end]``."""
        total = self._wx[end] - self._wx[start]
        return float(self._wxx[end] - self._wxx[start] - total * total / (self._w[end] - self._w[start]))

    def cost_matrix(self) -> np.ndarray:
        """``C[s, e]`` = cost of ``signal[s:e]`` for all s < e (inf elsewhere).

        Lets exact dynamic programming over every segmentation run in numpy,
        which the penalty calibration needs for tens of thousands of series.
        """
        w = self._w[None, :] - self._w[:, None]
        wx = self._wx[None, :] - self._wx[:, None]
        wxx = self._wxx[None, :] - self._wxx[:, None]
        valid = np.triu(np.ones_like(w, dtype=bool), k=1)
        cost = np.full_like(w, np.inf)
        cost[valid] = wxx[valid] - wx[valid] ** 2 / w[valid]
        return cost


@dataclass(frozen=True)
class SegmentCosts:
    """Costs of every stretch ``[s, e)`` of a series under the flat-or-linear segment model.

    ``cost[s, e]`` is the smaller of the weighted residual sum of squares around
    the stretch's mean (a level) and around its weighted least-squares line (a
    trend) plus ``slope_penalty``; ``linear[s, e]`` says which one won. inf where
    the stretch is too short (``s >= e`` or fewer than the minimum points).
    """

    cost: np.ndarray
    linear: np.ndarray
    flat: np.ndarray  # the flat model's cost alone


def segment_costs(
    values: np.ndarray,
    weights: np.ndarray,
    times: np.ndarray | None = None,
    *,
    slope_penalty: float,
    min_size: int = 1,
    min_linear: int = 3,
) -> SegmentCosts:
    """Flat-or-linear cost matrix of a series (weights are inverse noise variances).

    A segment may carry a trend when that lowers its chi-square residual by more
    than ``slope_penalty`` (chi-square units, like the change penalty): a slow
    slide is then one sloped segment rather than a staircase of level shifts,
    while a plain level shift between two flat stretches costs what it always
    did. ``times`` are the points' positions (gaps in the series stretch the
    slope's baseline); consecutive integers if omitted. Lines need at least
    ``min_linear`` points (3: a line through two points leaves no residual).
    All costs come from prefix sums: O(n^2) cells, vectorised.
    """
    x = np.asarray(values, dtype=float)
    w = np.asarray(weights, dtype=float)
    t = np.arange(x.size, dtype=float) if times is None else np.asarray(times, dtype=float)
    # Centre both for numerical safety: the sums below subtract large, similar numbers.
    x = x - np.median(x) if x.size else x
    t = t - t.mean() if t.size else t
    zero = np.zeros(1)

    def prefix(a: np.ndarray) -> np.ndarray:
        cum = np.concatenate([zero, np.cumsum(a)])
        return cum[None, :] - cum[:, None]

    s0, s1, s2 = prefix(w), prefix(w * t), prefix(w * t * t)
    sy, sty, syy = prefix(w * x), prefix(w * t * x), prefix(w * x * x)
    index = np.arange(x.size + 1)
    length = index[None, :] - index[:, None]
    flat_ok = length >= max(min_size, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        flat = np.where(flat_ok, syy - sy * sy / s0, np.inf)
        stt = s2 - s1 * s1 / s0  # centred sum of squares of time
        sxy = sty - s1 * sy / s0
        # Guard against stretches whose times barely vary (one point with all the weight).
        linear_ok = (length >= max(min_size, min_linear)) & (stt > 1e-9 * np.maximum(s2, 1e-300))
        gain = np.where(linear_ok, sxy * sxy / stt, -np.inf)
    flat = np.maximum(flat, 0.0)  # rounding can leave -1e-12
    line = np.maximum(flat - gain, 0.0) + slope_penalty
    use_line = linear_ok & (line < flat)
    return SegmentCosts(np.where(use_line, line, flat), use_line, flat)
