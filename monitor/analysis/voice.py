"""Whose voice is missing: response-rate blind spots and skew, per segment.

Happiness is measured on those who answer. Four checks per segment (everyone and each
single dimension), on the resolved tickets and the survey answers of the analysis:

- ``response_rate_low`` (blind spot): over the last ``RECENT_PERIODS`` periods the
  segment resolved at least ``HIGH_VOLUME`` tickets, and either fewer than
  ``MIN_ANSWERS`` of them were answered (too few for a Happiness figure within
  about +-25 points) or the response rate's Wilson interval lies wholly below
  ``LOW_RATE`` (10%);
- ``response_rate_fell``: the last ``RECENT_PERIODS`` periods against the
  ``HISTORY_PERIODS`` before: at least ``FALL_POINTS`` points and a quarter of the
  rate lower, two-proportion test at 5% Bonferroni over the segments tested;
- ``extreme_ratings``: the segment's ratings over the last ``SKEW_PERIODS`` periods
  spread over 0-1 / 2-8 / 9-10 unlike everyone else's (chi-square test of
  homogeneity against everyone else, 2 df, Bonferroni), with its share of extremes
  (0-1 plus 9-10) at least ``EXTREME_POINTS`` points off everyone's;
- ``answered_differ``: over the last ``SKEW_PERIODS`` periods, the segment's
  answered tickets against its unanswered ones: median resolution hours (order
  statistic intervals; Mann-Whitney test) at most ``FAST_RATIO`` of the
  unanswered ones', or a reassignment rate ``REASSIGN_POINTS`` points lower
  (Newcombe interval, two-proportion test), Bonferroni. The people whose tickets
  went badly are the ones not heard.

A segment is named with its ticket figures; survey figures (counts of answers,
rating shares) only when it has at least the anonymity threshold of answers
(``fewer than k`` otherwise).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import stats as sps
from sqlalchemy import Connection, select

from detectors.it_metrics import TICKET_STATS, median_estimate, rate_estimate
from detectors.metrics import _two_proportion_p, _wilson, z_value
from monitor.analysis.aggregate import Segment
from monitor.analysis.it_detect import TicketTable
from monitor.periods import first_day, last_day, period_start
from monitor.store.models import Dimension, DimensionValue
from monitor.store.tickets import rating_extremes

RECENT_PERIODS = 4
HISTORY_PERIODS = 8
SKEW_PERIODS = 12
HIGH_VOLUME = 200
MIN_ANSWERS = 30
LOW_RATE = 10.0
FALL_POINTS = 5.0
EXTREME_POINTS = 10.0
FAST_RATIO = 0.75
REASSIGN_POINTS = 5.0
ALPHA = 0.05

_T = {name: i for i, name in enumerate(TICKET_STATS)}


@dataclass(frozen=True)
class VoiceFlag:
    kind: str  # response_rate_low, response_rate_fell, extreme_ratings, answered_differ
    segment: dict[str, str]
    message: str
    figures: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def covers(self, segment: Mapping[str, str]) -> bool:
        """Whether a finding in ``segment`` lies inside this flag's segment."""
        return self.segment.items() <= dict(segment).items()


def _name(segment: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in segment.items()) or "everyone"


def _answers(n: int, k: int) -> str:
    return f"{n}" if n >= k else f"fewer than {k}"


def _segments(table: TicketTable) -> list[tuple[Segment, np.ndarray]]:
    out = []
    for by in [(), *((name,) for name in table.labels)]:
        segments, cube = table.grouping(by)
        out.extend(zip(segments, cube, strict=True))
    return out


def response_rate_flags(table: TicketTable, *, anonymity_min_responses: int) -> list[VoiceFlag]:
    """Blind spots and falls of the response rate (module docstring)."""
    if not len(table):
        return []
    last = table.n_periods
    recent = slice(max(last - RECENT_PERIODS, 0), last)
    before = slice(max(last - RECENT_PERIODS - HISTORY_PERIODS, 0), max(last - RECENT_PERIODS, 0))
    series = _segments(table)
    tested = []
    flags: list[VoiceFlag] = []
    z = z_value(0.95)
    since = period_start(table.last_period - RECENT_PERIODS + 1, table.period).isoformat()
    for segment, cube in series:
        n_recent, k_recent = cube[recent, _T["t_n"]].sum(), cube[recent, _T["ans_k"]].sum()
        n_before, k_before = cube[before, _T["t_n"]].sum(), cube[before, _T["ans_k"]].sum()
        if n_recent >= HIGH_VOLUME:
            _, high = _wilson(np.array([k_recent]), np.array([n_recent]), z)
            rate = 100.0 * k_recent / n_recent
            if k_recent < MIN_ANSWERS or 100.0 * high[0] < LOW_RATE:
                reason = f"{_answers(int(k_recent), anonymity_min_responses)} answers" if k_recent < MIN_ANSWERS else f"a response rate of {rate:.1f}% (at most {100 * high[0]:.1f}%)"
                flags.append(
                    VoiceFlag(
                        "response_rate_low",
                        segment.as_dict(),
                        f"Blind spot: {_name(segment.as_dict())} resolved {int(n_recent)} tickets since {since} with "
                        f"{reason}; its Happiness cannot be trusted.",
                        {"resolved": int(n_recent), "rate": round(rate, 2), "rate_ci_high": round(100 * high[0], 2),
                         "answers": int(k_recent) if k_recent >= anonymity_min_responses else None},
                    )
                )
        if n_recent >= 2 * MIN_ANSWERS and n_before >= 2 * MIN_ANSWERS:
            tested.append((segment, n_before, k_before, n_recent, k_recent))
    level = ALPHA / max(len(tested), 1)
    for segment, n_b, k_b, n_a, k_a in tested:
        rate_b, rate_a = 100.0 * k_b / n_b, 100.0 * k_a / n_a
        if rate_b - rate_a < FALL_POINTS or rate_a > 0.75 * rate_b:
            continue
        p = _two_proportion_p(k_b, n_b, k_a, n_a)
        if p > level:
            continue
        before_est, after_est = rate_estimate(int(k_b), int(n_b)), rate_estimate(int(k_a), int(n_a))
        flags.append(
            VoiceFlag(
                "response_rate_fell",
                segment.as_dict(),
                f"Response rate fell in {_name(segment.as_dict())}: {rate_a:.1f}% [{after_est.ci_low:.1f}, {after_est.ci_high:.1f}] "
                f"of resolved tickets answered since {since}, {rate_b:.1f}% [{before_est.ci_low:.1f}, {before_est.ci_high:.1f}] "
                f"in the {HISTORY_PERIODS} periods before (p={p:.2g}). Happiness there rests on fewer, perhaps different, people.",
                {"before": round(rate_b, 2), "after": round(rate_a, 2), "p_value": p,
                 "resolved_before": int(n_b), "resolved_after": int(n_a)},
            )
        )
    return flags


def extreme_flags(
    counts: Mapping[str, Mapping[str, tuple[int, int, int]]], overall: tuple[int, int, int], *, anonymity_min_responses: int
) -> list[VoiceFlag]:
    """Segments whose ratings over-represent (or lack) the extremes against everyone else.

    ``counts``: dimension -> value -> (ratings 0-1, ratings 9-10, all ratings).
    """
    tested = [
        (name, value, c) for name, values in counts.items() for value, c in values.items()
        if c[2] >= max(MIN_ANSWERS, anonymity_min_responses) and overall[2] - c[2] >= MIN_ANSWERS
    ]
    level = ALPHA / max(len(tested), 1)
    flags = []
    for name, value, (low, high, n) in tested:
        rest = (overall[0] - low, overall[1] - high, overall[2] - n)
        table = np.array([[low, n - low - high, high], [rest[0], rest[2] - rest[0] - rest[1], rest[1]]], dtype=float)
        table = table[:, table.sum(axis=0) > 0]
        if table.shape[1] < 2:
            continue
        p = float(sps.chi2_contingency(table, correction=False).pvalue)
        share, rest_share = 100.0 * (low + high) / n, 100.0 * (rest[0] + rest[1]) / rest[2]
        everyone = 100.0 * (overall[0] + overall[1]) / overall[2]
        # Tested against the rest, sized against everyone: one loud segment does not
        # make every other look quiet.
        if p > level or abs(share - everyone) < EXTREME_POINTS:
            continue
        segment = {name: value}
        more = "over-represent" if share > everyone else "lack"
        flags.append(
            VoiceFlag(
                "extreme_ratings",
                segment,
                f"Skewed voice in {_name(segment)}: {share:.0f}% of its ratings are 0-1 or 9-10 against {rest_share:.0f}% "
                f"elsewhere and {everyone:.0f}% overall (chi-square p={p:.2g}); its answers {more} the extremes.",
                {"extreme_share": round(share, 2), "rest_share": round(rest_share, 2), "overall_share": round(everyone, 2),
                 "p_value": p, "answers": n},
            )
        )
    return flags


def answered_flags(table: TicketTable, *, anonymity_min_responses: int) -> list[VoiceFlag]:
    """Segments whose answered tickets went better than their unanswered ones (module docstring)."""
    if not len(table):
        return []
    recent = table.periods > table.last_period - SKEW_PERIODS
    candidates = []
    for segment, _ in _segments(table):
        keep = recent & table.of(segment) if segment.items else recent
        answered = keep & table.answered
        silent = keep & ~table.answered
        if answered.sum() >= max(MIN_ANSWERS, anonymity_min_responses) and silent.sum() >= MIN_ANSWERS:
            candidates.append((segment, answered, silent))
    level = ALPHA / max(2 * len(candidates), 1)
    flags = []
    for segment, answered, silent in candidates:
        fast = median_estimate(table.resolution_hours[answered])
        slow = median_estimate(table.resolution_hours[silent])
        reasons, figures = [], {}
        if np.isfinite(fast.value) and slow.value > 0 and fast.value <= FAST_RATIO * slow.value:
            a, b = table.resolution_hours[answered], table.resolution_hours[silent]
            p = float(sps.mannwhitneyu(a[np.isfinite(a)], b[np.isfinite(b)], alternative="two-sided").pvalue)
            if p <= level:
                reasons.append(
                    f"answered tickets were resolved in a median {fast.value:.1f} h [{fast.ci_low:.1f}, {fast.ci_high:.1f}], "
                    f"unanswered ones in {slow.value:.1f} h [{slow.ci_low:.1f}, {slow.ci_high:.1f}] (p={p:.2g})"
                )
                figures["resolution_hours"] = {"answered": asdict(fast), "unanswered": asdict(slow), "p_value": p}
        ra, rs = table.reassignments[answered], table.reassignments[silent]
        ra, rs = ra[np.isfinite(ra)], rs[np.isfinite(rs)]
        if len(ra) >= MIN_ANSWERS and len(rs) >= MIN_ANSWERS:
            k_a, k_s = int((ra > 0).sum()), int((rs > 0).sum())
            est_a, est_s = rate_estimate(k_a, len(ra)), rate_estimate(k_s, len(rs))
            p = _two_proportion_p(k_s, len(rs), k_a, len(ra))
            if est_s.value - est_a.value >= REASSIGN_POINTS and p <= level:
                reasons.append(
                    f"{est_a.value:.0f}% [{est_a.ci_low:.0f}, {est_a.ci_high:.0f}] of answered tickets were reassigned, "
                    f"{est_s.value:.0f}% [{est_s.ci_low:.0f}, {est_s.ci_high:.0f}] of unanswered ones (p={p:.2g})"
                )
                figures["reassignment_rate"] = {"answered": asdict(est_a), "unanswered": asdict(est_s), "p_value": p}
        if reasons:
            flags.append(
                VoiceFlag(
                    "answered_differ",
                    segment.as_dict(),
                    f"Missing voices in {_name(segment.as_dict())}: " + "; ".join(reasons)
                    + ". Those whose tickets went badly answer less: Happiness there is flattered.",
                    _finite(figures),
                )
            )
    return flags


def _finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def load_extremes(
    connection: Connection, table: TicketTable, as_of: dt.date
) -> tuple[dict[str, dict[str, tuple[int, int, int]]], tuple[int, int, int]]:
    """Rating extremes of the last ``SKEW_PERIODS`` periods per dimension value, and everyone's."""
    first, last = table.last_period - SKEW_PERIODS + 1, table.last_period
    raw = rating_extremes(connection, first_day(first, table.period), last_day(last, table.period))
    names = dict(connection.execute(select(Dimension.slot, Dimension.name)).all())
    values = dict(connection.execute(select(DimensionValue.id, DimensionValue.value)).all())
    counts = {
        names[slot]: {values[value_id]: c for value_id, c in by_value.items() if value_id in values}
        for slot, by_value in raw.items()
        if slot is not None and slot in names
    }
    return counts, raw[None][0]


def voice_flags(
    connection: Connection, table: TicketTable, as_of: dt.date, *, anonymity_min_responses: int
) -> list[VoiceFlag]:
    """Every response-rate and skew flag of the analysis (module docstring)."""
    if not len(table):
        return []
    counts, overall = load_extremes(connection, table, as_of)
    return (
        response_rate_flags(table, anonymity_min_responses=anonymity_min_responses)
        + extreme_flags(counts, overall, anonymity_min_responses=anonymity_min_responses)
        + answered_flags(table, anonymity_min_responses=anonymity_min_responses)
    )
