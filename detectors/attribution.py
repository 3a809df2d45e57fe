"""Where a change happened and why: pure statistics over segments' window totals.

A ratio metric such as Happiness is a weighted mean of its segments' values,
``V = sum(w_s * v_s)`` with ``w_s`` each segment's share of the responses (of the
answers, for lost time). So the change between two windows splits exactly into

* a **rate** part, ``sum(mean(w_s) * dv_s)``: segments themselves got worse, and
* a **mix** part, ``sum(dw_s * (mean(v_s) - mean(V)))``: more responses now come
  from segments that were always less happy,

and each segment's contribution ``c_s`` (its rate plus mix term) adds up to the
overall change. This is Adtributor's *explanatory power* for derived measures,
done on the additive parts so that a ratio is never averaged.

Adtributor's second ingredient, *surprise*, is replaced by a test that knows
about sample sizes: a segment stands out when its change differs from the change
of everyone else (``excess = dv_s - dv_rest``, z-scored with both sides'
sampling variances). Small segments cannot stand out on noise, which
Jensen-Shannon surprise on tiny counts does. HotSpot's *ripple effect* and
Squeeze's generalised potential score motivate the drill-down in
``monitor.analysis.attribution``: a root is the least specific segment whose removal
makes every echo disappear, and a more specific child replaces it when it carries
most of its excess. iDice's combination search is bounded here to pairs of
dimensions, which the store pre-aggregates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.stats as sps

from detectors.metrics import Direction, FactorShare, Metric, PeriodValues, z_value


@dataclass(frozen=True)
class Shift:
    """Values, variances and sample sizes of segments (vector entries) in two windows."""

    value_before: np.ndarray
    value_after: np.ndarray
    var_before: np.ndarray
    var_after: np.ndarray
    n_before: np.ndarray
    n_after: np.ndarray
    # Values and variances on the scale the change is tested on (``Metric.test_scale``):
    # the log of lost time; None when that is the metric's own scale.
    tested_before: PeriodValues | None = None
    tested_after: PeriodValues | None = None

    @property
    def delta(self) -> np.ndarray:
        return self.value_after - self.value_before

    @property
    def delta_variance(self) -> np.ndarray:
        return self.var_before + self.var_after

    @property
    def test_delta(self) -> np.ndarray:
        if self.tested_before is None or self.tested_after is None:
            return self.delta
        return self.tested_after.values - self.tested_before.values

    @property
    def test_variance(self) -> np.ndarray:
        """The tested change's sampling variance, the larger of two estimates.

        Each window's own (Wald) variance understates the noise of a small segment
        whose answers in one window happen to agree (36 detractors out of 36: almost
        no variance): the test would read a chance run as a certain collapse. The
        pooled estimate (both windows as one sample, their difference included: the
        variance if nothing had changed, as a score test uses) does not.
        """
        if self.tested_before is None or self.tested_after is None:
            before = PeriodValues(self.value_before, self.var_before, self.n_before)
            after = PeriodValues(self.value_after, self.var_after, self.n_after)
        else:
            before, after = self.tested_before, self.tested_after
        (v_b, var_b, n_b), (v_a, var_a, n_a) = before, after
        with np.errstate(divide="ignore", invalid="ignore"):
            n = n_b + n_a
            per_answer = (n_b * n_b * var_b + n_a * n_a * var_a) / n + n_b * n_a * (v_a - v_b) ** 2 / (n * n)
            pooled = per_answer * (1.0 / n_b + 1.0 / n_a)
        return np.fmax(var_b + var_a, pooled)


def shift(metric: Metric, before: pd.DataFrame, after: pd.DataFrame) -> Shift:
    """Each row's metric value before and after (rows of pooled window totals)."""
    b, a = metric.per_period(before), metric.per_period(after)
    if type(metric).test_scale is Metric.test_scale:
        return Shift(b.values, a.values, b.variances, a.variances, b.n, a.n)
    return Shift(b.values, a.values, b.variances, a.variances, b.n, a.n, metric.test_scale(before), metric.test_scale(after))


def worse_sign(metric: Metric) -> float:
    """+1 if an increase is worse for ``metric``, -1 if a decrease is."""
    return 1.0 if metric.direction(1.0) is Direction.WORSE else -1.0


def excess(metric: Metric, segment: Shift, rest: Shift) -> tuple[np.ndarray, np.ndarray]:
    """How much more each segment changed than everyone else, and its z-score.

    Both are signed so that positive means worse (a Happiness excess of +12 is a
    segment that fell 12 points more than the rest). NaN where a side is empty.
    The excess is in the metric's units (what sizes are judged on); the z-score
    is taken on the metric's test scale (log minutes for lost time).
    """
    difference = worse_sign(metric) * (segment.delta - rest.delta)
    tested, se = excess_and_error(metric, segment, rest)
    with np.errstate(divide="ignore", invalid="ignore"):
        return difference, tested / se


def excess_and_error(metric: Metric, segment: Shift, rest: Shift) -> tuple[np.ndarray, np.ndarray]:
    """The worse-signed excess on the test scale and its standard error (sampling
    variances of all four sides)."""
    difference = worse_sign(metric) * (segment.test_delta - rest.test_delta)
    return difference, np.sqrt(segment.test_variance + rest.test_variance)


@dataclass(frozen=True)
class ShiftShare:
    """Per-segment rate and mix parts of the overall change; they sum to it exactly."""

    rate: np.ndarray
    mix: np.ndarray

    @property
    def contribution(self) -> np.ndarray:
        return self.rate + self.mix

    @property
    def total(self) -> float:
        return float(np.sum(self.contribution))


def shift_share(values: Shift) -> ShiftShare:
    """Split the change of the weighted mean over a complete partition into rate and mix.

    ``values`` must cover every response of the parent once (one grouping's
    segments). A segment empty on one side takes its other side's value, so it
    contributes through mix only.
    """
    v_b = np.where(np.isfinite(values.value_before), values.value_before, values.value_after)
    v_a = np.where(np.isfinite(values.value_after), values.value_after, values.value_before)
    v_b, v_a = np.nan_to_num(v_b), np.nan_to_num(v_a)
    w_b = values.n_before / max(values.n_before.sum(), 1.0)
    w_a = values.n_after / max(values.n_after.sum(), 1.0)
    overall = 0.5 * (np.sum(w_b * v_b) + np.sum(w_a * v_a))
    rate = 0.5 * (w_b + w_a) * (v_a - v_b)
    mix = (w_a - w_b) * (0.5 * (v_a + v_b) - overall)
    return ShiftShare(rate, mix)


def critical_z(tests: int, alpha: float = 0.05) -> float:
    """One-sided Bonferroni threshold for ``tests`` segments tested at once."""
    return float(sps.norm.isf(alpha / max(tests, 1)))


def searched_critical_z(series: int, periods: int, alpha: float = 0.05) -> float:
    """Two-sided threshold on z = delta / SE for a change whose series *and* date were searched.

    The search looked at ``series`` series and, in each, at up to ``periods`` split
    dates, and reports the best it saw: the plain 1.96 would be met by chance in a
    fraction of all the places it looked. Bonferroni over every (series, date) pair
    keeps the chance that pure noise yields one such change anywhere in the run at
    ``alpha`` (the family-wise target: 0.05 false roots per analysis). Split dates of
    one series are strongly correlated, so this errs on the safe side; it is meant
    for segments whose change was not confirmed otherwise (too small for the window
    test), where a false root costs more than a missed one.
    """
    tests = max(series, 1) * max(periods, 1)
    return float(sps.norm.isf(alpha / (2.0 * tests)))


def change_z(delta: float, ci_low: float, ci_high: float, p_value: float | None, confidence: float = 0.95) -> float:
    """A change's z = |delta| / SE: from its two-sided p-value when it has one, else
    from the half-width of its ``confidence`` interval (asymmetric ones: the side
    toward zero, the one the test is about)."""
    if p_value is not None and np.isfinite(p_value) and p_value > 0:
        return float(sps.norm.isf(p_value / 2.0))
    if p_value is not None and p_value == 0:
        return float("inf")
    half = (delta - ci_low) if delta > 0 else (ci_high - delta)
    if not np.isfinite(half) or half <= 0:
        return float("nan")
    return float(abs(delta) / (half / sps.norm.isf((1.0 - confidence) / 2.0)))


@dataclass(frozen=True)
class FactorShift:
    factor: str
    before_share: float
    after_share: float
    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    rest_delta: float | None = None  # the rest's change over the same weeks, when tested against it
    p_beyond_rest: float | None = None  # one-sided p of rising more than the rest

    def as_dict(self) -> dict[str, float | str | None]:
        out: dict[str, float | str | None] = {
            "factor": self.factor,
            "before_share": round(self.before_share, 2),
            "after_share": round(self.after_share, 2),
            "delta": round(self.delta, 2),
            "ci_low": round(self.ci_low, 2),
            "ci_high": round(self.ci_high, 2),
            "p_value": float(f"{self.p_value:.3g}"),
        }
        if self.rest_delta is not None:
            out["rest_delta"] = round(self.rest_delta, 2)
            out["p_beyond_rest"] = None if self.p_beyond_rest is None else float(f"{self.p_beyond_rest:.3g}")
        return out


def rising_factors(
    before: pd.Series,
    after: pd.Series,
    factors: list[str],
    *,
    alpha: float = 0.05,
    confidence: float = 0.95,
    rest: tuple[pd.Series, pd.Series] | None = None,
) -> list[FactorShift]:
    """Factors cited significantly more often after than before, largest rise first.

    Each factor's share (percent of responses) is compared with Newcombe's
    interval and a two-proportion (or Fisher) test; the p-value must clear a
    Bonferroni threshold over all factors, since every factor is tried.

    With ``rest`` (the window sums of everyone else), a factor must also have
    risen more than it did in the rest, by the same Bonferroni level (a z-test
    on the difference of the two changes): a localized root's factors are its
    own, not a rise everyone shares.
    """
    threshold = alpha / max(len(factors), 1)
    rose = []
    for factor in factors:
        delta = FactorShare(factor).compare(before, after, confidence=confidence)
        p_value = delta.p_value if delta.p_value is not None else 1.0
        if not (delta.delta > 0 and p_value < threshold and delta.ci_low > 0):
            continue
        rest_delta = p_beyond = None
        if rest is not None:
            rest_delta, p_beyond = _beyond_rest(factor, (before, after), rest)
            if not p_beyond < threshold:
                continue
        rose.append(
            FactorShift(factor, delta.before.value, delta.after.value, delta.delta, delta.ci_low, delta.ci_high,
                        p_value, rest_delta, p_beyond)
        )
    return sorted(rose, key=lambda item: -item.delta)


def _beyond_rest(
    factor: str, inside: tuple[pd.Series, pd.Series], rest: tuple[pd.Series, pd.Series]
) -> tuple[float, float]:
    """The rest's change of a factor's share (points) and the one-sided p-value of
    the inside's change exceeding it (Agresti-Coull variances of the four shares)."""
    metric = FactorShare(factor)
    own = shift(metric, pd.DataFrame([inside[0]]), pd.DataFrame([inside[1]]))
    other = shift(metric, pd.DataFrame([rest[0]]), pd.DataFrame([rest[1]]))
    difference, z = excess(metric, own, other)
    p_value = float(sps.norm.sf(z[0])) if np.isfinite(z[0]) else 1.0
    return float(other.delta[0]), p_value


@dataclass(frozen=True)
class DiffInDiff:
    """The treated group's change minus the control group's, with a normal interval."""

    estimate: float
    ci_low: float
    ci_high: float
    treated_delta: float
    control_delta: float
    n_treated: tuple[int, int]
    n_control: tuple[int, int]

    def as_dict(self) -> dict[str, object]:
        return {
            "estimate": round(self.estimate, 2),
            "ci_low": round(self.ci_low, 2),
            "ci_high": round(self.ci_high, 2),
            "treated_delta": round(self.treated_delta, 2),
            "control_delta": round(self.control_delta, 2),
            "n_treated": list(self.n_treated),
            "n_control": list(self.n_control),
        }


def diff_in_diff(
    metric: Metric,
    treated: tuple[pd.Series, pd.Series],
    control: tuple[pd.Series, pd.Series],
    *,
    confidence: float = 0.95,
) -> DiffInDiff | None:
    """Difference-in-differences of two (before, after) pairs of window totals.

    Segments outside a transition's scope lived through the same calendar
    (holidays, seasons, a company-wide outage) without the change; subtracting
    their change leaves the transition's own effect. Standard errors are read off
    each delta's interval (half-width / z), which for the log-scale lost time is
    an approximation. None when either group has an empty window.
    """
    z = z_value(confidence)
    t = metric.compare(*treated, confidence=confidence)
    c = metric.compare(*control, confidence=confidence)
    if min(t.n_before, t.n_after, c.n_before, c.n_after) == 0:
        return None
    if not all(np.isfinite([t.delta, c.delta, t.ci_low, t.ci_high, c.ci_low, c.ci_high])):
        return None
    se = float(np.hypot((t.ci_high - t.ci_low) / (2 * z), (c.ci_high - c.ci_low) / (2 * z)))
    estimate = t.delta - c.delta
    return DiffInDiff(
        estimate, estimate - z * se, estimate + z * se, t.delta, c.delta, (t.n_before, t.n_after), (c.n_before, c.n_after)
    )
