"""Period arithmetic: days and Monday-based weeks numbered since the epoch, the one copy.

Responses are stored with ``local_day`` (days since 1970-01-01 in the configured time
zone); a period number is that day (``day``) or the Monday-based week that holds it
(``week``, week 0 starts on 1970-01-05). Integer arithmetic gives the same answer in
SQL on every backend and in numpy.
"""

from __future__ import annotations

import datetime as dt
from typing import TypeVar

import numpy as np

EPOCH = dt.date(1970, 1, 1)
FIRST_MONDAY = 4  # 1970-01-05, day 4 since the epoch, starts week 0
PERIODS = ("week", "day")

IntOrArray = TypeVar("IntOrArray", int, np.ndarray)


def day_number(day: dt.date) -> int:
    return (day - EPOCH).days


def period_of_day(day: IntOrArray, period: str) -> IntOrArray:
    """Period number of a day number (or an array of them)."""
    return day if period == "day" else (day - FIRST_MONDAY) // 7


def period_of_date(day: dt.date, period: str) -> int:
    return int(period_of_day(day_number(day), period))


def first_day(number: int, period: str) -> int:
    """Day number of the period's first day."""
    return int(number) if period == "day" else FIRST_MONDAY + 7 * int(number)


def last_day(number: int, period: str) -> int:
    """Day number of the period's last day."""
    return int(number) if period == "day" else FIRST_MONDAY + 7 * int(number) + 6


def periods_per_week(period: str) -> int:
    return 7 if period == "day" else 1


def period_start(number: int, period: str) -> dt.date:
    return EPOCH + dt.timedelta(days=first_day(number, period))


def last_complete_period(as_of: dt.date, period: str) -> int:
    """The newest period that ended on or before ``as_of``: partial weeks would look like dips."""
    day = day_number(as_of)
    current = period_of_day(day, period)
    return current if last_day(current, period) == day else current - 1
