"""IT metrics of the stored tickets, per period, overall and per segment (issue 12).

Loads tickets with their first survey answer from the store and hands a plain frame
to ``detectors.it_metrics``; periods are the configured ones (Monday weeks or days
in the configured time zone), by the day each ticket was resolved.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from detectors.it_metrics import it_metrics_by_period
from monitor.periods import last_complete_period, period_of_day, period_start
from monitor.store.tickets import load_ticket_frame


def ticket_frame(engine: Engine, period: str) -> pd.DataFrame:
    """The detectors' input: one row per ticket with its period and derived hours."""
    with engine.connect() as connection:
        frame = load_ticket_frame(connection)
    resolved = frame["resolved_day"].notna()
    frame["resolved"] = resolved
    days = frame["resolved_day"].fillna(0).to_numpy(dtype=np.int64)
    frame["period"] = np.where(resolved, period_of_day(days, period), -1)
    hour = pd.Timedelta(hours=1)
    frame["resolution_hours"] = (frame["resolved_at"] - frame["opened_at"]) / hour
    frame["feedback_hours"] = (frame["answered_at"] - frame["resolved_at"]) / hour
    frame["answered"] = frame["answered_at"].notna()
    frame["sla_met"] = frame["sla_met"].astype(float)
    for name in ("reassignment_count", "reopen_count"):
        frame[name] = frame[name].astype(float)
    return frame


def it_metrics_table(
    engine: Engine, *, period: str, as_of: dt.date, by: Sequence[str] = (), confidence: float = 0.95
) -> pd.DataFrame:
    """Complete periods up to ``as_of``; ``period_start`` added as a date column."""
    frame = ticket_frame(engine, period)
    missing = [name for name in by if name not in frame.columns]
    if missing:
        raise ValueError(f"unknown dimension(s) {', '.join(missing)}")
    frame = frame[frame["period"] <= last_complete_period(as_of, period)]
    table = it_metrics_by_period(frame, by=by, confidence=confidence)
    table.insert(1, "period_start", [period_start(int(p), period).isoformat() for p in table["period"]])
    return table
