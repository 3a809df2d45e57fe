"""Findings with identities that survive weekly re-runs.

Each run detects changes afresh, and a change's estimated date can move by a week
as more data arrives. A detected change is matched to the stored finding with the
same metric and segment whose change date lies within ``MATCH_PERIODS`` periods,
and keeps that finding's id; otherwise it gets a new id derived from its metric,
segment and date (so the same data gives the same ids on any machine).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.analysis import DetectedChange
from monitor.models import Finding

MATCH_DAYS = 21  # three weeks either way


def finding_id(metric: str, segment_key: str, change_date: dt.date) -> str:
    digest = hashlib.blake2b(f"{metric}|{segment_key}|{change_date.isoformat()}".encode(), digest_size=5)
    return "F" + digest.hexdigest()


def _number(value: float) -> float:
    return float(value) if value is not None and math.isfinite(value) else 0.0


def record_findings(
    session: Session, detected: list[DetectedChange], as_of: dt.date, transitions: dict[str, str | None]
) -> list[Finding]:
    """Insert or update the stored findings for this run's changes; return them in order.

    ``transitions`` maps a detected change's key (see ``change_key``) to the name of
    the transition it falls in, if any.
    """
    stored: dict[tuple[str, str], list[Finding]] = {}
    for finding in session.scalars(select(Finding)):
        stored.setdefault((finding.metric, finding.segment_key), []).append(finding)
    claimed: set[str] = set()
    results = []
    for item in detected:
        change = item.change
        change_date = change.change_date.date()
        key = item.segment.key()
        candidates = [
            f for f in stored.get((item.metric, key), [])
            if f.id not in claimed and abs((f.change_date - change_date).days) <= MATCH_DAYS
        ]
        finding = min(candidates, key=lambda f: abs((f.change_date - change_date).days), default=None)
        if finding is None:
            finding = Finding(
                id=finding_id(item.metric, key, change_date),
                metric=item.metric,
                segment_key=key,
                segment=item.segment.as_dict(),
                first_reported=as_of,
            )
            existing = session.get(Finding, finding.id)
            finding = existing if existing is not None else finding
            session.add(finding)
        claimed.add(finding.id)
        finding.change_date = change_date
        finding.direction = str(change.direction)
        finding.before = _number(change.before.value)
        finding.after = _number(change.after.value)
        finding.delta = _number(change.delta)
        finding.ci_low = _number(change.ci_low)
        finding.ci_high = _number(change.ci_high)
        finding.n_before = int(change.n_before)
        finding.n_after = int(change.n_after)
        finding.p_value = None if change.p_value is None or not math.isfinite(change.p_value) else float(change.p_value)
        finding.recovered_on = None if change.recovered_at is None else change.recovered_at.date()
        finding.transition = transitions.get(change_key(item))
        finding.first_reported = min(finding.first_reported or as_of, as_of)
        finding.last_reported = max(finding.last_reported or as_of, as_of)
        results.append(finding)
    session.flush()
    return results


def change_key(item: DetectedChange) -> tuple[str, str, dt.date]:
    return (item.metric, item.segment.key(), item.change.change_date.date())
