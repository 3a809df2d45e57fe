"""A vectorised pre-screen that picks the series worth a full change-point search.

Pelt with a weighted cost takes tens of milliseconds per series; an analysis over
every metric, dimension and pair of dimensions has tens of thousands of series. Most
are flat. This screen scores all of them at once with a window scan: for every
stretch [i, j) of a series it compares the inverse-variance weighted mean inside the
stretch with the mean outside, in units of its standard error. A level shift is a
stretch reaching the end of the series, a dip that recovered is a stretch in the
middle. Only series whose best stretch is both statistically notable and big enough
to matter go on to ``detect_changes``; the screen is deliberately looser than the
detector, so it drops work, not findings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_CHUNK_CELLS = 4_000_000  # bound memory: segments x windows per pass
MAX_DIP_PERIODS = 26


@dataclass(frozen=True)
class ScreenResult:
    # Best evidence per series, in chi-square units per change point: z^2 for a
    # stretch touching either end (one change), z^2 / 2 for one in the middle (a
    # change and a change back), comparable with the detector's per-change penalty.
    score: np.ndarray
    effect: np.ndarray  # the difference of means (inside - outside) behind it


# The detector estimates each series' noise (never below sampling noise) with a
# biweight scale; the screen uses a cheaper MAD-based one, shrunk by this factor so
# that it stays on the lenient side of the detector.
NOISE_LENIENCY = 0.8


def excess_noise(values: np.ndarray, variances: np.ndarray) -> np.ndarray:
    """Per series, how much more than sampling noise the periods vary (>= 1).

    First differences standardised by their sampling SD have SD 1 when sampling
    explains everything; a robust SD of them measures the excess, as the
    detector's own noise estimate does.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        diffs = np.diff(values, axis=1) / np.sqrt(variances[:, 1:] + variances[:, :-1])
    diffs = np.where(np.isfinite(diffs), diffs, np.nan)
    usable = np.isfinite(diffs).sum(axis=1) >= 3
    filled = np.where(usable[:, None], diffs, 0.0)
    centre = np.nanmedian(filled, axis=1, keepdims=True)
    mad_sd = 1.4826 * np.nanmedian(np.abs(filled - centre), axis=1)
    return np.maximum(1.0, NOISE_LENIENCY * np.where(usable, mad_sd, 1.0))


def window_scan(
    values: np.ndarray, variances: np.ndarray, *, min_size: int = 2, min_effect: np.ndarray | float = 0.0
) -> ScreenResult:
    """Best inside-versus-outside difference over all stretches, per series.

    ``values`` and ``variances`` are shaped (series, periods); NaN values (periods
    without responses) carry no weight. Returns, per series, the score of the best
    stretch (see ``ScreenResult``) and the difference of means behind it. Only
    stretches whose difference reaches ``min_effect`` (per series, or one for all)
    compete: a long, small, clear shift must not hide a short dip that matters.
    """
    series, periods = values.shape
    best_score = np.zeros(series)
    best_effect = np.zeros(series)
    if periods < 2 * max(min_size, 1):
        # Too short for a stretch and its outside to both reach min_size (a week
        # or two after go-live): no evidence yet, which is a score of 0, not an error.
        return ScreenResult(best_score, best_effect)
    usable = np.isfinite(values) & np.isfinite(variances) & (variances > 0)
    weights = np.divide(1.0, variances, out=np.zeros_like(values, dtype=float), where=usable)
    weighted = np.where(weights > 0, values * weights, 0.0)
    starts, ends = np.triu_indices(periods + 1, k=min_size)
    inside_len = ends - starts
    touches_end = (starts == 0) | (ends == periods)
    # A stretch touching an end is one level shift; one in the middle is a dip
    # and its recovery, scanned up to half a year long (longer ones show as shifts).
    keep = (inside_len < periods) & (periods - inside_len >= min_size)
    keep &= touches_end | (inside_len <= MAX_DIP_PERIODS)
    starts, ends = starts[keep], ends[keep]
    if not starts.size:
        return ScreenResult(best_score, best_effect)
    changes = np.where((starts == 0) | (ends == periods), 1.0, 2.0)
    step = max(1, _CHUNK_CELLS // max(len(starts), 1))
    for first in range(0, series, step):
        w = weights[first : first + step]
        cw = np.concatenate([np.zeros((len(w), 1)), np.cumsum(w, axis=1)], axis=1)
        cx = np.concatenate([np.zeros((len(w), 1)), np.cumsum(weighted[first : first + step], axis=1)], axis=1)
        w_in = cw[:, ends] - cw[:, starts]
        x_in = cx[:, ends] - cx[:, starts]
        w_out = cw[:, -1:] - w_in
        x_out = cx[:, -1:] - x_in
        with np.errstate(divide="ignore", invalid="ignore"):
            effect = x_in / w_in - x_out / w_out
            z = effect / np.sqrt(1.0 / w_in + 1.0 / w_out)
        big = np.abs(effect) >= (np.broadcast_to(min_effect, (series,))[first : first + step, None])
        score = np.where(np.isfinite(z) & big, z * z / changes, 0.0)
        pick = np.argmax(score, axis=1)
        rows = np.arange(len(w))
        best_score[first : first + step] = score[rows, pick]
        best_effect[first : first + step] = np.where(np.isfinite(effect[rows, pick]), effect[rows, pick], 0.0)
    return ScreenResult(best_score / excess_noise(values, variances) ** 2, best_effect)
