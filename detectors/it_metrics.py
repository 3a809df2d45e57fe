"""IT service-desk metrics from tickets, per period and segment, with intervals and polarity.

Pure functions on a frame of tickets (one row per ticket), so they can be tested on
hand-made rows and fed to change detection like the survey metrics. The period of a
ticket is the period it was *resolved* in; unresolved tickets count nowhere yet.

| metric | formula | interval | polarity |
|---|---|---|---|
| ``resolved_volume`` | tickets resolved in the period | exact (Garwood) Poisson | higher is better (a drop at steady demand is a backlog) |
| ``sla_met_rate`` | % of resolved tickets with a known SLA flag that met it | Wilson score | higher is better |
| ``reassignment_rate`` | % of resolved tickets (count known) reassigned at least once | Wilson score | lower is better |
| ``reopen_rate`` | % of resolved tickets (count known) reopened at least once | Wilson score | lower is better |
| ``median_resolution_hours`` | median of resolved_at - opened_at, hours | distribution-free order statistics | lower is better |
| ``survey_response_rate`` | % of resolved tickets with at least one survey response (by ticket id) | Wilson score | higher is better |
| ``feedback_delay_hours`` | median of first response - resolved_at, hours, over answered tickets (answers given before resolution are left out as clock or linking errors) | order statistics | lower is better |

The median's interval is [x_(l), x_(n+1-l)] of the sorted values, where l is the
smallest k with P(B <= k) >= alpha/2 for B ~ Binomial(n, 1/2): its coverage is at
least 1 - alpha whatever the distribution (resolution times are heavy-tailed, so no
normal approximation). Below n = 6 (95%) no such l >= 1 exists and the interval is
the full range [min, max], whose coverage 1 - 2^(1-n) is then stated by ``n``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from detectors.metrics import Estimate, Polarity, _wilson, z_value


@dataclass(frozen=True)
class ITMetric:
    name: str
    polarity: Polarity
    unit: str
    description: str


IT_METRICS: dict[str, ITMetric] = {
    m.name: m
    for m in (
        ITMetric("resolved_volume", Polarity.HIGHER_IS_BETTER, "tickets", "tickets resolved"),
        ITMetric("sla_met_rate", Polarity.HIGHER_IS_BETTER, "%", "resolved tickets that met their SLA"),
        ITMetric("reassignment_rate", Polarity.LOWER_IS_BETTER, "%", "resolved tickets reassigned at least once"),
        ITMetric("reopen_rate", Polarity.LOWER_IS_BETTER, "%", "resolved tickets reopened at least once"),
        ITMetric("median_resolution_hours", Polarity.LOWER_IS_BETTER, "h", "median time from opening to resolution"),
        ITMetric("survey_response_rate", Polarity.HIGHER_IS_BETTER, "%", "resolved tickets with a survey answer"),
        ITMetric("feedback_delay_hours", Polarity.LOWER_IS_BETTER, "h", "median time from resolution to the answer"),
    )
}
# Columns of the ticket frame the functions read.
TICKET_COLUMNS = ("resolved", "resolution_hours", "sla_met", "reassignment_count", "reopen_count", "answered", "feedback_hours")
_NAN = float("nan")


def _empty() -> Estimate:
    return Estimate(_NAN, _NAN, _NAN, 0)


def rate_estimate(successes: int, n: int, *, confidence: float = 0.95) -> Estimate:
    """Percentage with its Wilson score interval."""
    if n <= 0:
        return _empty()
    low, high = _wilson(np.array([float(successes)]), np.array([float(n)]), z_value(confidence))
    return Estimate(100.0 * successes / n, 100.0 * float(low[0]), 100.0 * float(high[0]), int(n))


def count_estimate(count: int, *, confidence: float = 0.95) -> Estimate:
    """A count with Garwood's exact Poisson interval."""
    alpha = 1.0 - confidence
    low = sps.chi2.ppf(alpha / 2.0, 2.0 * count) / 2.0 if count > 0 else 0.0
    high = sps.chi2.ppf(1.0 - alpha / 2.0, 2.0 * count + 2.0) / 2.0
    return Estimate(float(count), float(low), float(high), int(count))


def median_estimate(values: np.ndarray | Sequence[float], *, confidence: float = 0.95) -> Estimate:
    """Median with the distribution-free order-statistic interval (module docstring)."""
    x = np.sort(np.asarray(values, dtype=float))
    x = x[np.isfinite(x)]
    n = x.size
    if n == 0:
        return _empty()
    alpha = 1.0 - confidence
    l = int(sps.binom.ppf(alpha / 2.0, n, 0.5))  # noqa: E741  (the order statistic's usual name)
    l = max(l, 1)
    return Estimate(float(np.median(x)), float(x[l - 1]), float(x[n - l]), int(n))


def it_metrics(tickets: pd.DataFrame, *, confidence: float = 0.95) -> dict[str, Estimate]:
    """Every IT metric over the resolved tickets of ``tickets`` (columns: TICKET_COLUMNS)."""
    resolved = tickets[tickets["resolved"].astype(bool)]
    sla = resolved["sla_met"].dropna()
    reassigned = resolved["reassignment_count"].dropna()
    reopened = resolved["reopen_count"].dropna()
    answered = resolved["answered"].astype(bool)
    delays = resolved.loc[answered, "feedback_hours"].dropna()
    return {
        "resolved_volume": count_estimate(len(resolved), confidence=confidence),
        "sla_met_rate": rate_estimate(int((sla > 0).sum()), len(sla), confidence=confidence),
        "reassignment_rate": rate_estimate(int((reassigned > 0).sum()), len(reassigned), confidence=confidence),
        "reopen_rate": rate_estimate(int((reopened > 0).sum()), len(reopened), confidence=confidence),
        "median_resolution_hours": median_estimate(resolved["resolution_hours"].to_numpy(dtype=float), confidence=confidence),
        "survey_response_rate": rate_estimate(int(answered.sum()), len(resolved), confidence=confidence),
        "feedback_delay_hours": median_estimate(delays[delays >= 0].to_numpy(dtype=float), confidence=confidence),
    }


def it_metrics_by_period(
    tickets: pd.DataFrame, *, by: Sequence[str] = (), period: str = "period", confidence: float = 0.95
) -> pd.DataFrame:
    """Long frame: one row per period (x segment of ``by``) and metric.

    Columns: ``period``, the ``by`` columns, ``metric``, ``value``, ``ci_low``,
    ``ci_high``, ``n``, ``polarity``. Only resolved tickets have a period.
    """
    resolved = tickets[tickets["resolved"].astype(bool)]
    keys = [period, *by]
    rows = []
    for key, group in resolved.groupby(keys, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        for name, estimate in it_metrics(group, confidence=confidence).items():
            rows.append(
                (*key, name, estimate.value, estimate.ci_low, estimate.ci_high, estimate.n, IT_METRICS[name].polarity.value)
            )
    return pd.DataFrame(rows, columns=[*keys, "metric", "value", "ci_low", "ci_high", "n", "polarity"])


# --- IT metrics on additive per-period statistics (issue 12: change detection) ---------
#
# The weekly run detects changes in IT metrics with the same machinery as the survey
# metrics (``detectors.changepoints``), which works on sums per period. Rates are sums
# of successes and trials. A median is not additive, but a histogram is: resolution
# and feedback times are counted into ``BINS_PER_DECADE`` log-spaced bins, so a pooled
# stretch's median is read off the summed histogram (interpolated geometrically inside
# its bin, 1.5% at most off the exact median at 16 bins a decade) with the same
# order-statistic interval as ``median_estimate``, taken on the histogram.

from detectors.metrics import (  # noqa: E402  (kept next to what uses them)
    FactorShare,
    Metric,
    Volume,
    _column,
    _LogRatioMetric,
)

HOURS_LOW = 0.01  # 36 seconds: below it (an instant resolution) counts in the first bin
BINS_PER_DECADE = 16
DECADES = 6  # 0.01 h to 10,000 h (14 months): beyond it counts in the last bin
N_BINS = BINS_PER_DECADE * DECADES
_LOG_EDGES = np.log(HOURS_LOW) + np.arange(N_BINS + 1) * (np.log(10.0) / BINS_PER_DECADE)
_BIN_LOG_WIDTH = float(np.log(10.0) / BINS_PER_DECADE)

# Statistic columns of a ticket cube, one row per period.
RESOLUTION_BINS = tuple(f"rh{i}" for i in range(N_BINS))
FEEDBACK_BINS = tuple(f"fh{i}" for i in range(N_BINS))
TICKET_STATS = (
    "t_n",  # resolved tickets
    "sla_k", "sla_n",  # met SLA, SLA known
    "reas_k", "reas_n",  # reassigned at least once, count known
    "reop_k", "reop_n",  # reopened at least once, count known
    "ans_k",  # answered (at least one survey response)
    "fb_n",  # answered with a usable delay (answer not before resolution)
    *RESOLUTION_BINS,
    *FEEDBACK_BINS,
)


def hour_bins(hours: np.ndarray) -> np.ndarray:
    """Bin index of each duration in hours (-1 for missing or negative)."""
    hours = np.asarray(hours, dtype=float)
    usable = np.isfinite(hours) & (hours >= 0)
    logs = np.log(np.maximum(np.where(usable, hours, HOURS_LOW), HOURS_LOW))
    index = np.clip(np.searchsorted(_LOG_EDGES, logs, side="right") - 1, 0, N_BINS - 1)
    return np.where(usable, index, -1)


def ticket_cube(period: np.ndarray, group: np.ndarray, n_groups: int, n_periods: int, **tickets: np.ndarray) -> np.ndarray:
    """Sums per (group, period) of every ``TICKET_STATS`` column: shape (groups, periods, stats).

    ``tickets``: the per-ticket arrays of ``TicketColumns.of``, whose ``cube`` this is.
    """
    return TicketColumns.of(**tickets).cube(period, group, n_groups, n_periods)


# The ``TICKET_STATS`` columns that count tickets (one 0/1 flag per ticket each); the
# histogram bins follow them.
COUNTED_STATS = TICKET_STATS[: TICKET_STATS.index(RESOLUTION_BINS[0])]


@dataclass(frozen=True)
class TicketColumns:
    """What a ticket cube sums, per ticket: its ``COUNTED_STATS`` flags and the histogram
    bins of its hours. Derived once, so that a caller cutting many cubes from the same
    tickets (the analysis: one per grouping) does not derive them again for each."""

    flags: np.ndarray  # (tickets, COUNTED_STATS) bool
    resolution_bins: np.ndarray  # -1: in no bin
    feedback_bins: np.ndarray  # -1: unanswered, or no usable delay

    @classmethod
    def of(
        cls,
        *,
        sla: np.ndarray,
        reassignments: np.ndarray,
        reopens: np.ndarray,
        resolution_hours: np.ndarray,
        answered: np.ndarray,
        feedback_hours: np.ndarray,
    ) -> TicketColumns:
        """``sla``, ``reassignments`` and ``reopens`` are floats with NaN where unknown."""
        answered = np.asarray(answered).astype(bool)
        delay_bins = np.where(answered, hour_bins(feedback_hours), -1)
        flags = {
            "t_n": np.ones(len(answered), dtype=bool),
            "sla_k": np.nan_to_num(sla) > 0,
            "sla_n": np.isfinite(sla),
            "reas_k": np.nan_to_num(reassignments) > 0,
            "reas_n": np.isfinite(reassignments),
            "reop_k": np.nan_to_num(reopens) > 0,
            "reop_n": np.isfinite(reopens),
            "ans_k": answered,
            "fb_n": delay_bins >= 0,
        }
        return cls(np.column_stack([flags[name] for name in COUNTED_STATS]), hour_bins(resolution_hours), delay_bins)

    def cube(self, period: np.ndarray, group: np.ndarray, n_groups: int, n_periods: int) -> np.ndarray:
        """Sums per (group, period) of every ``TICKET_STATS`` column: shape (groups, periods, stats).

        One ``bincount`` per column over the combined key; tickets with a period or
        group outside the ranges (negative) are left out.
        """
        keep = (period >= 0) & (period < n_periods) & (group >= 0) & (group < n_groups)
        flags, resolution_bins, feedback_bins = self.flags, self.resolution_bins, self.feedback_bins
        if not keep.all():
            period, group, flags = period[keep], group[keep], flags[keep]
            resolution_bins, feedback_bins = resolution_bins[keep], feedback_bins[keep]
        key = group.astype(np.int64) * n_periods + period.astype(np.int64)
        size = n_groups * n_periods
        out = np.zeros((size, len(TICKET_STATS)))
        for index in range(len(COUNTED_STATS)):
            out[:, index] = np.bincount(key, weights=flags[:, index], minlength=size)
        for offset, bins in ((len(COUNTED_STATS), resolution_bins), (len(COUNTED_STATS) + N_BINS, feedback_bins)):
            usable = bins >= 0
            histogram = np.bincount(key[usable] * N_BINS + bins[usable], minlength=size * N_BINS)
            out[:, offset : offset + N_BINS] = histogram.reshape(size, N_BINS)
        return out.reshape(n_groups, n_periods, len(TICKET_STATS))


class TicketRate(FactorShare):
    """A percentage of tickets (SLA met, reassigned, reopened, answered): Wilson, Newcombe, z/Fisher.

    The same statistics as a factor share, on the ticket cube's success and trial columns.
    """

    def __init__(self, name: str, successes: str, trials: str, polarity: Polarity, min_effect: float) -> None:
        self.name = name
        self.factor = name
        self._successes, self._trials = successes, trials
        self.polarity = polarity
        self.min_effect = min_effect
        self.count_column = trials
        self.exposure_column = trials

    def _counts(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        return _column(frame, self._successes), _column(frame, self._trials)


class ResolvedVolume(Volume):
    """Tickets resolved per period: ``detectors.metrics.Volume`` counted on ``t_n``."""

    name = "resolved_volume"
    count_column = "t_n"


def _histogram_quantile_logs(counts: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """log(hours) of the ``positions``-th smallest value (1-based, fractional allowed), per row.

    Inside a bin the values are taken as spread evenly on the log scale.
    """
    cumulative = np.cumsum(counts, axis=1)
    total = cumulative[:, -1]
    pos = np.clip(positions, 1e-9, np.maximum(total, 1e-9))
    index = np.minimum((cumulative < pos[:, None]).sum(axis=1), N_BINS - 1)
    rows = np.arange(len(counts))
    before = np.where(index > 0, cumulative[rows, np.maximum(index - 1, 0)], 0.0)
    inside = counts[rows, index]
    fraction = np.where(inside > 0, (pos - before) / np.where(inside > 0, inside, 1.0), 0.5)
    return _LOG_EDGES[index] + np.clip(fraction, 0.0, 1.0) * _BIN_LOG_WIDTH


class BinnedMedian(_LogRatioMetric):
    """Median hours from a log-binned histogram; compared as a ratio on the log scale.

    Interval: the order statistics [x_(l), x_(n+1-l)] (as ``median_estimate``) read
    off the histogram. The log median's standard error is that interval's log width
    over 2z, with the bin width's rounding added (variance w^2/12), so a week whose
    answers all fall in one bin does not claim to be exact.
    """

    relative_effect = True
    offset = 0.0

    def __init__(self, name: str, bins: tuple[str, ...], count: str, min_effect: float) -> None:
        self.name = name
        self._bins = list(bins)
        self.count_column = count
        self.exposure_column = count
        self.polarity = Polarity.LOWER_IS_BETTER
        self.min_effect = min_effect

    def _counts(self, frame: pd.DataFrame) -> np.ndarray:
        return np.column_stack([_column(frame, name) for name in self._bins])

    def _parts(self, frame: pd.DataFrame, z: float = 1.959963984540054) -> tuple[np.ndarray, ...]:
        counts = self._counts(frame)
        n = counts.sum(axis=1)
        median = _histogram_quantile_logs(counts, (n + 1.0) / 2.0)
        alpha = 2.0 * sps.norm.sf(z)
        l = np.maximum(sps.binom.ppf(alpha / 2.0, np.maximum(n, 1).astype(np.int64), 0.5), 1.0)  # noqa: E741
        low = _histogram_quantile_logs(counts, l)
        high = _histogram_quantile_logs(counts, n + 1.0 - l)
        se = np.sqrt(((high - low) / (2.0 * z)) ** 2 + _BIN_LOG_WIDTH**2 / 12.0)
        empty = n <= 0
        return (np.where(empty, np.nan, median), np.where(empty, np.nan, low),
                np.where(empty, np.nan, high), np.where(empty, np.nan, se))

    def _value(self, frame: pd.DataFrame) -> np.ndarray:
        return np.exp(self._parts(frame)[0])

    def _interval(self, frame: pd.DataFrame, z: float) -> tuple[np.ndarray, np.ndarray]:
        _, low, high, _ = self._parts(frame, z)
        return np.exp(low), np.exp(high)

    def _log_level(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        median, _, _, se = self._parts(frame)
        return median, se

    def _variance(self, frame: pd.DataFrame) -> np.ndarray:
        median, _, _, se = self._parts(frame)
        return np.exp(2.0 * median) * se**2


def _detected() -> dict[str, Metric]:
    hi, lo = Polarity.HIGHER_IS_BETTER, Polarity.LOWER_IS_BETTER
    return {
        "resolved_volume": ResolvedVolume(),
        "sla_met": TicketRate("sla_met", "sla_k", "sla_n", hi, 5.0),
        "reassignment_rate": TicketRate("reassignment_rate", "reas_k", "reas_n", lo, 5.0),
        "reopen_rate": TicketRate("reopen_rate", "reop_k", "reop_n", lo, 3.0),
        "resolution_hours": BinnedMedian("resolution_hours", RESOLUTION_BINS, "t_n", 0.25),
        "response_rate": TicketRate("response_rate", "ans_k", "t_n", hi, 5.0),
        "feedback_delay_hours": BinnedMedian("feedback_delay_hours", FEEDBACK_BINS, "fb_n", 0.5),
    }


# The IT metrics the weekly run detects changes in, by the finding's metric name.
# (``it_metrics_by_period`` keeps its table names: sla_met_rate is sla_met here,
# median_resolution_hours is resolution_hours, survey_response_rate is response_rate.)
DETECTED_IT_METRICS = tuple(_detected())
IT_OVERALL_ONLY = ("resolved_volume",)  # an assignment group's throughput moves with every re-org


def it_metric_for(name: str) -> Metric | None:
    """The detectable IT metric called ``name``, or None."""
    return _detected().get(name)


def is_it_metric(name: str) -> bool:
    return name in DETECTED_IT_METRICS
