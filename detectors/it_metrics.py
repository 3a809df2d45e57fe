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
