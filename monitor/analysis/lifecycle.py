"""What people say about findings: labels (verdicts) and silences (mutes until a date).

The analysis decides a finding's ``state`` (new, ongoing, recovered); people add a
label (confirmed, expected, false alarm, new normal) with a note, and may silence
a finding or a whole segment until a date. Digests leave silenced findings out
until the silence expires; the web view shows the silence and its reason. The CLI,
the web view and the digests all go through these functions.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.analysis.aggregate import Segment
from monitor.store.models import Finding, FindingLabel, Label, Silence


class LifecycleError(ValueError):
    """A label or silence that cannot be recorded; the message says why."""


def _finding(session: Session, finding_id: str) -> Finding:
    finding = session.get(Finding, finding_id)
    if finding is None:
        raise LifecycleError(f"no finding with id {finding_id!r}")
    return finding


def label_finding(
    session: Session, finding_id: str, label: str, *, author: str, note: str = "", now: dt.datetime | None = None
) -> FindingLabel:
    """Record a verdict on a finding; earlier verdicts stay as history."""
    try:
        verdict = Label(label)
    except ValueError:
        allowed = ", ".join(item.value for item in Label)
        raise LifecycleError(f"unknown label {label!r}; use one of {allowed}") from None
    if not author.strip():
        raise LifecycleError("a label needs an author")
    finding = _finding(session, finding_id)
    entry = FindingLabel(label=verdict.value, author=author, note=note, created_at=now or dt.datetime.now(dt.UTC))
    finding.labels.append(entry)
    session.flush()
    return entry


def add_silence(
    session: Session,
    *,
    until: dt.date,
    reason: str,
    author: str,
    finding_id: str | None = None,
    segment: dict[str, str] | None = None,
    today: dt.date | None = None,
    now: dt.datetime | None = None,
) -> Silence:
    """Mute one finding or one segment (and the segments inside it) until ``until``."""
    if (finding_id is None) == (segment is None):
        raise LifecycleError("silence either one finding or one segment")
    if not reason.strip():
        raise LifecycleError("a silence needs a reason")
    if not author.strip():
        raise LifecycleError("a silence needs an author")
    if until <= (today or dt.date.today()):
        raise LifecycleError(f"a silence must end after today; {until.isoformat()} is not")
    silence = Silence(until=until, reason=reason, author=author, created_at=now or dt.datetime.now(dt.UTC))
    if finding_id is not None:
        silence.finding_id = _finding(session, finding_id).id
    else:
        assert segment is not None
        silence.segment = dict(segment)
        silence.segment_key = Segment.of(segment).key()
    session.add(silence)
    session.flush()
    return silence


def active_silences(session: Session, on: dt.date) -> list[Silence]:
    """Silences still in force on ``on`` (a silence ends at the start of its ``until`` day)."""
    return list(session.scalars(select(Silence).where(Silence.until > on).order_by(Silence.id)))


def silence_for(finding: Finding, silences: list[Silence]) -> Silence | None:
    """The silence that mutes ``finding``, if any: its own, or one on a segment containing it."""
    for silence in silences:
        if silence.finding_id is not None:
            if silence.finding_id in (finding.id, finding.root_id):
                return silence
        elif silence.segment is not None and silence.segment.items() <= finding.segment.items():
            return silence
    return None
