"""Data health: is the survey feed still telling the truth?

A dip in Happiness means little if half the responses stopped arriving. Four checks,
each a small aggregate query on the store (the recent weeks through the
``local_day`` index, never a loop over rows in Python):

* response volume: the last complete week against the median of the eight before;
* the lost-time answer rate: the last four weeks against the eight before;
* dimension values never seen before the last complete week (a new assignment
  group, a renamed country), named only when at least ``min_responses`` answered;
* data that stopped arriving: no response in the last ``STALE_DAYS`` days before ``as_of``;
* whose voice is missing (issue 12): segments whose survey response rate fell or is too
  low for their Happiness to be trusted, whose ratings over-represent the extremes, or
  whose answered tickets went better than their unanswered ones. The weekly analysis
  computes these from the tickets (``monitor.analysis.voice``, rules there) and keeps
  them in its run's report; this reads the latest run's, never the tickets.

A scope (``{"assignment_group": ["MSP-Europe-L1"]}``) limits the volume and answer
rate checks to that slice, so an account manager hears about their own feed.
"""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import ColumnElement, and_, case, func, select, true
from sqlalchemy.orm import Session

from monitor.periods import (
    EPOCH,
    first_day,
    last_complete_period,
    last_day,
    period_start,
)
from monitor.store import period_index
from monitor.store.models import (
    AnalysisRun,
    Dimension,
    DimensionValue,
    responses,
    slot_column,
)

HISTORY_WEEKS = 8  # the weeks a recent figure is compared with
RECENT_WEEKS = 4  # lost-time answer rate: recent stretch
VOLUME_DROP = 0.5  # last week below half the usual volume
ANSWER_RATE_DROP = 0.10  # ten percentage points fewer lost-time answers
STALE_DAYS = 8  # nothing newer than this before as_of: the feed stopped


class HealthKind(StrEnum):
    VOLUME_DROP = "volume_drop"
    ANSWER_RATE = "lost_time_answer_rate"
    NEW_VALUES = "new_values"
    STOPPED = "stopped"
    RESPONSE_RATE_LOW = "response_rate_low"
    RESPONSE_RATE_FELL = "response_rate_fell"
    EXTREME_RATINGS = "extreme_ratings"
    ANSWERED_DIFFER = "answered_differ"


@dataclass(frozen=True)
class HealthItem:
    kind: HealthKind
    message: str


def _scope_condition(session: Session, scope: dict[str, list[str]]) -> ColumnElement[bool]:
    """Responses in the slice: each dimension's value among the listed ones."""
    conditions = []
    for name, values in scope.items():
        slot = session.scalars(select(Dimension.slot).where(Dimension.name == name)).first()
        ids = list(
            session.scalars(
                select(DimensionValue.id).join(Dimension).where(Dimension.name == name, DimensionValue.value.in_(values))
            )
        )
        if slot is None or not ids:
            return responses.c.id < 0  # nothing can match
        conditions.append(responses.c[slot_column(slot)].in_(ids))
    return and_(true(), *conditions)


def data_health(
    session: Session, as_of: dt.date, *, min_responses: int, scope: dict[str, list[str]] | None = None
) -> list[HealthItem]:
    """What is wrong with the data as it stood on ``as_of`` (weekly periods), most urgent first."""
    last = last_complete_period(as_of, "week")
    first = last - HISTORY_WEEKS - RECENT_WEEKS + 1
    in_scope = _scope_condition(session, scope or {})
    week = period_index("week")
    rows = session.execute(
        select(week, func.count(), func.count(responses.c.lost_time_minutes))
        .where(responses.c.local_day.between(first_day(first, "week"), last_day(last, "week")), in_scope)
        .group_by(week)
    ).all()
    counts = {int(number): (int(n), int(answered)) for number, n, answered in rows}
    items = _stopped(session, as_of, in_scope)
    items += _volume(last, counts, min_responses)
    items += _answer_rate(last, counts, min_responses)
    items += _new_values(session, last, min_responses)
    items += _voice(session, as_of, scope or {})
    return items


def _voice(session: Session, as_of: dt.date, scope: dict[str, list[str]]) -> list[HealthItem]:
    """The response-rate and skew flags of the latest successful analysis up to ``as_of``.

    With a scope, only flags on segments that overlap it (everyone's included).
    """
    report = session.scalars(
        select(AnalysisRun.report)
        .where(AnalysisRun.status == "succeeded", AnalysisRun.as_of <= as_of)
        .order_by(AnalysisRun.as_of.desc(), AnalysisRun.id.desc())
        .limit(1)
    ).first()
    items = []
    for flag in (report or {}).get("voice") or []:
        segment = flag.get("segment") or {}
        if any(name in scope and value not in scope[name] for name, value in segment.items()):
            continue
        items.append(HealthItem(HealthKind(flag["kind"]), flag["message"]))
    return items


def _stopped(session: Session, as_of: dt.date, in_scope: ColumnElement[bool]) -> list[HealthItem]:
    latest_day = session.scalar(select(func.max(responses.c.local_day)).where(in_scope))
    if latest_day is None:
        return [HealthItem(HealthKind.STOPPED, "No responses have arrived at all.")]
    latest = EPOCH + dt.timedelta(days=int(latest_day))
    if (as_of - latest).days < STALE_DAYS:
        return []
    return [
        HealthItem(
            HealthKind.STOPPED,
            f"Data stopped arriving: the newest response is from {latest.isoformat()} "
            f"({(as_of - latest).days} days before {as_of.isoformat()}).",
        )
    ]


def _volume(last: int, counts: dict[int, tuple[int, int]], min_responses: int) -> list[HealthItem]:
    history = [counts.get(n, (0, 0))[0] for n in range(last - HISTORY_WEEKS, last)]
    usual = statistics.median(history)
    latest = counts.get(last, (0, 0))[0]
    if usual < min_responses or latest == 0 or latest >= VOLUME_DROP * usual:
        return []  # too little to judge, or already reported as stopped
    return [
        HealthItem(
            HealthKind.VOLUME_DROP,
            f"Response volume dropped: {latest} responses in the week of {period_start(last, 'week').isoformat()}, "
            f"against a usual {usual:.0f} a week ({latest / usual - 1:+.0%}).",
        )
    ]


def _answer_rate(last: int, counts: dict[int, tuple[int, int]], min_responses: int) -> list[HealthItem]:
    def rate(numbers: range) -> tuple[float, int]:
        n = sum(counts.get(k, (0, 0))[0] for k in numbers)
        answered = sum(counts.get(k, (0, 0))[1] for k in numbers)
        return (answered / n if n else float("nan")), n

    recent, n_recent = rate(range(last - RECENT_WEEKS + 1, last + 1))
    before, n_before = rate(range(last - RECENT_WEEKS - HISTORY_WEEKS + 1, last - RECENT_WEEKS + 1))
    if min(n_recent, n_before) < max(min_responses, 30) or not before - recent >= ANSWER_RATE_DROP:
        return []
    return [
        HealthItem(
            HealthKind.ANSWER_RATE,
            f"Fewer people answer the lost-time question: {recent:.0%} over the last {RECENT_WEEKS} weeks, "
            f"{before:.0%} in the {HISTORY_WEEKS} weeks before. Lost-time figures rest on fewer answers.",
        )
    ]


def _new_values(session: Session, last: int, min_responses: int) -> list[HealthItem]:
    """Values whose first response falls in the last complete week.

    Candidates are the values registered since shortly before that week (a handful
    in a normal week), then one GROUP BY per dimension that has candidates checks
    when each was first answered, so an old value re-imported today is not new.
    """
    week_start = first_day(last, "week")
    registered_since = dt.datetime.combine(period_start(last, "week"), dt.time(), dt.UTC)
    candidates = session.execute(
        select(Dimension.name, Dimension.slot, DimensionValue.id, DimensionValue.value)
        .join(Dimension)
        .where(DimensionValue.first_seen_at >= registered_since)
        .order_by(Dimension.slot, DimensionValue.value)
    ).all()
    by_slot: dict[tuple[str, int], dict[int, str]] = {}
    for name, slot, value_id, value in candidates:
        by_slot.setdefault((name, slot), {})[value_id] = value
    items = []
    for (name, slot), values in by_slot.items():
        column = responses.c[slot_column(slot)]
        rows = session.execute(
            select(column, func.min(responses.c.local_day), func.sum(case((responses.c.local_day >= week_start, 1), else_=0)))
            .where(column.in_(list(values)))
            .group_by(column)
        ).all()
        fresh = [(values[value_id], int(recent)) for value_id, first_answered, recent in rows if first_answered >= week_start]
        if not fresh:
            continue
        named = sorted(value for value, recent in fresh if recent >= min_responses)
        hidden = len(fresh) - len(named)
        parts = [", ".join(named)] if named else []
        if hidden:
            parts.append(f"{hidden} more with fewer than {min_responses} responses (not named)")
        items.append(
            HealthItem(HealthKind.NEW_VALUES, f"New {name.replace('_', ' ')} values this week: {'; '.join(parts)}.")
        )
    return items
