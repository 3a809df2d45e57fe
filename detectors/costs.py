"""Segment cost for change-point search on per-period values of unequal precision."""

from __future__ import annotations

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
