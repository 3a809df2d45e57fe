"""The disconnect between the service desk's figures and people's experience ("watermelon").

Green outside, red inside: the SLA-met rate holds while Happiness dips. For every
Happiness finding for the worse, the SLA-met rate of the same segment over the same
weeks is attached (``notes["sla"]``): before and after with their Wilson intervals,
the change with Newcombe's interval, and a status:

- ``held``: the interval of the change excludes a fall of half the SLA minimum
  effect (2.5 points), or the rate after meets a ``sla_met`` target of the
  finding's transition; with the Happiness dip this is the watermelon;
- ``broke``: worse beyond doubt (the interval excludes 0);
- ``unclear``: neither.

The reverse case (the SLA broke and people did not mind) is a note on each SLA-met
finding for the worse (``notes["happiness"]``): ``felt`` when Happiness in the same
segment and weeks fell beyond doubt, ``not_felt`` when its interval excludes a dip of
the Happiness minimum effect (10 points: no finding could hide there), ``unclear`` otherwise; Happiness
figures are given only with the anonymity threshold of responses on each side.

Windows: before is up to ``WINDOW_PERIODS`` periods before the change date (from the
change's own ``before_from`` when later), after is the change date up to its
recovery or the last complete period, at most ``WINDOW_PERIODS`` long.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from detectors import Direction, metric_for, pool
from monitor.analysis.aggregate import ResponseTable, as_frame
from monitor.analysis.detect import DetectedChange
from monitor.analysis.it_detect import TicketTable
from monitor.periods import period_of_date, period_start

WINDOW_PERIODS = 12
SLA_HELD_SHARE = 0.5  # of the SLA metric's minimum effect (5 points)
NOT_FELT_SHARE = 1.0  # of Happiness's minimum effect: no dip of 10 points could hide in the interval


def _windows(change: DetectedChange, first: int, last: int, period: str) -> tuple[tuple[int, int], tuple[int, int]]:
    start = period_of_date(change.change.change_date.date(), period)
    before_from = start - WINDOW_PERIODS
    if change.change.before_from is not None:
        before_from = max(before_from, period_of_date(change.change.before_from.date(), period))
    end = last
    if change.change.recovered_at is not None:
        end = min(end, period_of_date(change.change.recovered_at.date(), period) - 1)
    end = min(end, start + WINDOW_PERIODS - 1)
    return (max(before_from, first), start - 1), (start, max(end, start))


def _pooled(frame: pd.DataFrame, window: tuple[int, int], first: int) -> pd.Series:
    lo, hi = window[0] - first, window[1] - first + 1
    return pool(frame.iloc[max(lo, 0) : max(hi, 0)])


def _rounded(value: float) -> float | None:
    return round(float(value), 2) if value is not None and math.isfinite(value) else None


def _compared(metric_name: str, frame: pd.DataFrame, windows: Sequence[tuple[int, int]], first: int, period: str) -> dict[str, Any]:
    metric = metric_for(metric_name)
    delta = metric.compare(_pooled(frame, windows[0], first), _pooled(frame, windows[1], first))
    return {
        "before": _rounded(delta.before.value),
        "before_ci": [_rounded(delta.before.ci_low), _rounded(delta.before.ci_high)],
        "after": _rounded(delta.after.value),
        "after_ci": [_rounded(delta.after.ci_low), _rounded(delta.after.ci_high)],
        "delta": _rounded(delta.delta),
        "ci": [_rounded(delta.ci_low), _rounded(delta.ci_high)],
        "n_before": delta.n_before,
        "n_after": delta.n_after,
        "windows": [[period_start(a, period).isoformat(), period_start(b, period).isoformat()] for a, b in windows],
    }


def sla_note(
    change: DetectedChange,
    tickets: TicketTable,
    *,
    min_n: int,
    sla_targets: Sequence[float] = (),
) -> dict[str, Any] | None:
    """The SLA-met rate beside a Happiness finding (module docstring); None without SLA data."""
    keep = tickets.mask(change.segment.as_dict())
    if not keep.any():
        return None
    frame = tickets.frame(tickets.cube_of(keep))
    windows = _windows(change, tickets.first_period, tickets.last_period, tickets.period)
    note = _compared("sla_met", frame, windows, tickets.first_period, tickets.period)
    if min(note["n_before"], note["n_after"]) < min_n or note["delta"] is None:
        return None
    min_effect = metric_for("sla_met").min_effect
    low, high = note["ci"]
    met_target = next((t for t in sla_targets if note["after"] >= t), None)
    if (low is not None and low > -SLA_HELD_SHARE * min_effect) or met_target is not None:
        status = "held"
    elif high is not None and high < 0:
        status = "broke"
    else:
        status = "unclear"
    note.update(status=status, target=met_target, watermelon=status == "held")
    note["text"] = (
        f"SLA met {note['before']:.1f}% [{note['before_ci'][0]:.1f}, {note['before_ci'][1]:.1f}] before, "
        f"{note['after']:.1f}% [{note['after_ci'][0]:.1f}, {note['after_ci'][1]:.1f}] after "
        + ("(held while Happiness fell)" if status == "held" else f"({status})")
    )
    return note


def happiness_note(
    change: DetectedChange, responses: ResponseTable, *, anonymity_min_responses: int
) -> dict[str, Any] | None:
    """Happiness beside an SLA-met finding: did people feel it? (module docstring)."""
    if not len(responses):
        return None
    sub = responses.within({name: [value] for name, value in change.segment.items})
    if not len(sub):
        return {"status": "no_responses"}
    counts = np.zeros((responses.last_period - responses.first_period + 1, len(responses.stat_names)))
    np.add.at(counts, sub.periods - responses.first_period, sub.stats)
    frame = as_frame(responses, counts)
    windows = _windows(change, responses.first_period, responses.last_period, responses.period)
    note = _compared("happiness", frame, windows, responses.first_period, responses.period)
    if min(note["n_before"], note["n_after"]) < anonymity_min_responses:
        return {"status": "too_few_responses"}
    low, high = note["ci"]
    min_effect = metric_for("happiness").min_effect
    if high is not None and high < 0:
        status = "felt"
    elif low is not None and low > -NOT_FELT_SHARE * min_effect:
        status = "not_felt"
    else:
        status = "unclear"
    note.update(status=status)
    note["text"] = (
        f"Happiness {note['before']:+.1f} before, {note['after']:+.1f} after "
        + ("(people did not feel the SLA break)" if status == "not_felt" else f"({status})")
    )
    return note


def disconnect_notes(
    changes: Sequence[DetectedChange],
    responses: ResponseTable,
    tickets: TicketTable | None,
    *,
    min_n: int,
    anonymity_min_responses: int,
    sla_targets: Mapping[str | None, Sequence[float]] | None = None,
    transitions: Mapping[tuple[str, str, dt.date], str | None] | None = None,
) -> dict[tuple[str, str, dt.date], dict[str, Any]]:
    """Notes per change key: ``sla`` on Happiness dips, ``happiness`` on SLA-met falls."""
    notes: dict[tuple[str, str, dt.date], dict[str, Any]] = {}
    if tickets is None or not len(tickets):
        return notes
    for change in changes:
        worse = metric_for(change.metric).direction(change.change.delta) is Direction.WORSE
        if not worse:
            continue
        if change.metric == "happiness":
            transition = (transitions or {}).get(change.key)
            targets = (sla_targets or {}).get(transition, ())
            note = sla_note(change, tickets, min_n=min_n, sla_targets=targets)
            if note is not None:
                notes.setdefault(change.key, {})["sla"] = note
        elif change.metric == "sla_met":
            note = happiness_note(change, responses, anonymity_min_responses=anonymity_min_responses)
            if note is not None:
                notes.setdefault(change.key, {})["happiness"] = note
    return notes

