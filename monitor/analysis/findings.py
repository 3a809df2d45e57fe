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

from detectors import Change
from monitor.analysis.attribution import ChangeKey, Role
from monitor.analysis.detect import DetectedChange
from monitor.analysis.finding_view import Explanation
from monitor.store.models import Finding, FindingState

MATCH_DAYS = 21  # three weeks either way
NEW_DAYS = 7  # a finding first reported within the last week is new


def finding_id(metric: str, segment_key: str, change_date: dt.date) -> str:
    digest = hashlib.blake2b(f"{metric}|{segment_key}|{change_date.isoformat()}".encode(), digest_size=5)
    return "F" + digest.hexdigest()


def _number(value: float) -> float:
    return float(value) if value is not None and math.isfinite(value) else 0.0


def record_findings(
    session: Session,
    detected: list[DetectedChange],
    as_of: dt.date,
    transitions: dict[ChangeKey, str | None],
    roles: dict[ChangeKey, Role] | None = None,
) -> list[Finding]:
    """Insert or update the stored findings for this run's changes; return them in order.

    ``transitions`` maps a change's key to the name of the transition it falls in,
    if any; ``roles`` (from ``monitor.analysis.attribution``) says which changes are roots and
    which echo a root, with the roots' attribution.
    """
    stored: dict[tuple[str, str], list[Finding]] = {}
    for finding in session.scalars(select(Finding)):
        stored.setdefault((finding.metric, finding.segment_key), []).append(finding)
    claimed: set[str] = set()
    by_key: dict[ChangeKey, Finding] = {}
    for item in detected:
        finding = _match(session, stored, claimed, item, as_of)
        claimed.add(finding.id)
        _describe(finding, item.change)
        finding.transition = transitions.get(item.key)
        finding.first_reported = min(finding.first_reported or as_of, as_of)
        finding.last_reported = max(finding.last_reported or as_of, as_of)
        finding.state = _state(finding, as_of)
        by_key[item.key] = finding
    for key, finding in by_key.items():
        _assign_role(finding, (roles or {}).get(key), by_key)
    session.flush()
    return list(by_key.values())


def _match(
    session: Session, stored: dict[tuple[str, str], list[Finding]], claimed: set[str], item: DetectedChange, as_of: dt.date
) -> Finding:
    """The stored finding this change continues, or a new one with a derived id."""
    change_date = item.change.change_date.date()
    key = item.segment.key()
    candidates = [
        f for f in stored.get((item.metric, key), [])
        if f.id not in claimed and abs((f.change_date - change_date).days) <= MATCH_DAYS
    ]
    finding = min(candidates, key=lambda f: abs((f.change_date - change_date).days), default=None)
    if finding is not None:
        return finding
    new_id = finding_id(item.metric, key, change_date)
    finding = session.get(Finding, new_id) or Finding(
        id=new_id, metric=item.metric, segment_key=key, segment=item.segment.as_dict(), first_reported=as_of
    )
    session.add(finding)
    return finding


def _describe(finding: Finding, change: Change) -> None:
    finding.change_date = change.change_date.date()
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


def _state(finding: Finding, as_of: dt.date) -> FindingState:
    """Recovered once the metric came back; new in the week it was first reported."""
    if finding.recovered_on is not None and finding.recovered_on <= as_of:
        return FindingState.RECOVERED
    if (as_of - finding.first_reported).days < NEW_DAYS:
        return FindingState.NEW
    return FindingState.ONGOING


def _assign_role(finding: Finding, role: Role | None, by_key: dict[ChangeKey, Finding]) -> None:
    if role is None or role.root:
        details = dict(role.details) if role is not None else {}
        children = [] if role is None else [by_key[key].id for key in role.children if key in by_key]
        finding.root, finding.root_id = True, None
        finding.scope = details.pop("scope", None)
        finding.explains = details.pop("explains", None)
        finding.impact = details.pop("impact", None)
        # Through the typed form, so a key the readers do not know fails here, not in an email.
        finding.attribution = Explanation.from_json({**details, "children": children}).to_json()
        return
    root = by_key.get(role.root_key) if role.root_key else None
    finding.root, finding.root_id = False, None if root is None else root.id
    finding.scope = finding.explains = finding.impact = None
    finding.attribution = {}
