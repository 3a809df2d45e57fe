"""Findings with identities that survive weekly re-runs.

Each run detects changes afresh, and a change's estimated date can move as more
data arrives. Three things keep a finding one finding:

- the analysis tests each recent finding's own date directly (``KnownDate`` of kind
  "finding" in ``monitor.analysis.detect``): the date holds unless the data moves
  it decisively, and the finding stays while its date still shows a clear
  worsening of half the minimum effect (hysteresis);
- a detected change is matched to the stored finding of the same metric and
  segment whose dip overlaps its own (change date to recovery, or to now), or
  failing that whose date lies within ``MATCH_DAYS``, and keeps its id and its
  first date; otherwise it gets a new id derived from its metric, segment and date
  (so the same data gives the same ids on any machine);
- a root that more data names differently (a pair's parent, a value's child, a
  segment carrying what was read as everyone's) continues the stored root of the
  same metric and date whose segment nests with its own: it keeps the id, and the
  name it was first reported under (``first_named``);
- a finding whose segment stops receiving responses ends (``state: "ended"``, with
  ``ended_on`` and ``ended_reason``) instead of staying open for ever.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from detectors import Change
from monitor.analysis.aggregate import Segment
from monitor.analysis.attribution import ChangeKey, Role
from monitor.analysis.detect import DetectedChange, KnownDate
from monitor.analysis.finding_view import Explanation
from monitor.store.models import Finding, FindingState

MATCH_DAYS = 21  # three weeks either way
NEW_DAYS = 7  # a finding first reported within the last week is new
# A segment without responses for this many weeks has ended (a group dissolved in a
# reorganisation, a location closed): its open findings end with it.
ENDED_WEEKS = 4
# Findings last reported within this many weeks are re-tested at their own date.
ANCHOR_WEEKS = 4
# A root renamed by more data continues a stored root dated within this many days.
RENAMED_DAYS = 7
OPEN_STATES = (FindingState.NEW, FindingState.ONGOING)


def finding_id(metric: str, segment_key: str, change_date: dt.date, attempt: int = 0) -> str:
    text = f"{metric}|{segment_key}|{change_date.isoformat()}" + (f"|{attempt}" if attempt else "")
    return "F" + hashlib.blake2b(text.encode(), digest_size=5).hexdigest()


def _number(value: float) -> float:
    return float(value) if value is not None and math.isfinite(value) else 0.0


def known_findings(session: Session, as_of: dt.date) -> list[KnownDate]:
    """Recent findings' dates, for the analysis to test directly (see the module docstring).

    Only findings already reported by ``as_of`` (a replay of the past does not
    see later findings) and reported within ``ANCHOR_WEEKS`` of it.
    """
    recent = as_of - dt.timedelta(weeks=ANCHOR_WEEKS)
    query = select(Finding).where(
        Finding.first_reported <= as_of, Finding.last_reported >= recent, Finding.state != FindingState.ENDED
    )
    return [
        KnownDate(f.change_date, f.id, kind="finding", segments=(Segment.of(f.segment),), metrics=(f.metric,))
        for f in session.scalars(query)
        if f.change_date <= as_of
    ]


def record_findings(
    session: Session,
    detected: list[DetectedChange],
    as_of: dt.date,
    transitions: dict[ChangeKey, str | None],
    roles: dict[ChangeKey, Role] | None = None,
    last_response: dict[str, dt.date | None] | None = None,
    data_until: dt.date | None = None,
    ends: Callable[[str], bool] | None = None,
) -> list[Finding]:
    """Insert or update the stored findings for this run's changes; return them in order.

    ``transitions`` maps a change's key to the name of the transition it falls in,
    if any; ``roles`` (from ``monitor.analysis.attribution``) says which changes are roots and
    which echo a root, with the roots' attribution. ``last_response`` maps segment
    keys to the last day of the last period with a response (None: none in the
    analysed window), ``data_until`` is the last day analysed: open findings of
    segments quiet for ``ENDED_WEEKS`` end, whether detected this run or not.
    ``ends`` picks the metrics whose stored findings this call may end (default
    all): survey findings end with their responses, IT findings with their tickets.
    """
    stored: dict[tuple[str, str], list[Finding]] = {}
    for finding in session.scalars(select(Finding)):
        stored.setdefault((finding.metric, finding.segment_key), []).append(finding)
    renamed = _renamed_roots(stored, detected, roles or {}, as_of)
    claimed: set[str] = {finding.id for finding in renamed.values()}
    by_key: dict[ChangeKey, Finding] = {}
    for item in sorted(detected, key=lambda d: d.found_by != "search"):  # the search's changes claim first
        finding = renamed.get(item.key) or _match(session, stored, claimed, item, as_of)
        if item.key in renamed:
            _rename(finding, item.segment)
        claimed.add(finding.id)
        _describe(finding, item)
        finding.transition = transitions.get(item.key)
        finding.first_reported = min(finding.first_reported or as_of, as_of)
        finding.last_reported = max(finding.last_reported or as_of, as_of)
        finding.state = _state(finding, as_of)
        by_key[item.key] = finding
    for finding in [f for group in stored.values() for f in group] + list(by_key.values()):
        if ends is not None and not ends(finding.metric):
            continue
        if last_response is not None and data_until is not None:
            _end_if_quiet(finding, last_response, data_until, claimed)
    for key, finding in by_key.items():
        _assign_role(finding, (roles or {}).get(key), by_key)
    session.flush()
    return list(by_key.values())


def _end_if_quiet(
    finding: Finding, last_response: dict[str, dt.date | None], data_until: dt.date, claimed: set[str]
) -> None:
    """End an open finding whose segment has had no response for ``ENDED_WEEKS``."""
    reported = finding.id in claimed
    if finding.first_reported > data_until + dt.timedelta(days=7):  # a replay of the past: not yet reported
        return
    if finding.segment_key not in last_response or (not reported and finding.state not in OPEN_STATES):
        return
    if reported and finding.state == FindingState.RECOVERED:
        return
    last = last_response[finding.segment_key]
    if last is not None and (data_until - last).days < 7 * ENDED_WEEKS:
        if finding.state == FindingState.ENDED:  # responses again: open once more
            finding.ended_on = finding.ended_reason = None
            finding.state = FindingState.ONGOING
        return
    finding.state = FindingState.ENDED
    if last is None:
        finding.ended_on = finding.ended_on or data_until
        finding.ended_reason = finding.ended_reason or "no responses in the analysed history"
        return
    finding.ended_on = last + dt.timedelta(days=1)
    weeks = (data_until - last).days // 7
    finding.ended_reason = (
        f"the segment received no response after {last.isoformat()} ({weeks} weeks up to {data_until.isoformat()})"
    )


def _overlap_days(finding: Finding, change: Change, as_of: dt.date) -> int:
    """Days the stored finding's dip and this change's have in common (<= 0: none)."""
    start = change.change_date.date()
    end = change.recovered_at.date() if change.recovered_at is not None else as_of
    stored_end = finding.recovered_on or finding.ended_on or max(finding.last_reported, as_of)
    return (min(end, stored_end) - max(start, finding.change_date)).days


def _match(
    session: Session, stored: dict[tuple[str, str], list[Finding]], claimed: set[str], item: DetectedChange, as_of: dt.date
) -> Finding:
    """The stored finding this change continues, or a new one with a derived id.

    The one named by the change's known date, if any; else one whose dip
    overlaps the change's (the nearest date among them), else one within
    ``MATCH_DAYS``.
    """
    change_date = item.change.change_date.date()
    key = item.segment.key()
    pool = [f for f in stored.get((item.metric, key), []) if f.id not in claimed]
    named = next((f for f in pool if f.id == item.known), None)
    candidates = _continued(pool, item, as_of)
    finding = named or min(
        candidates,
        key=lambda f: (_overlap_days(f, item.change, as_of) <= 0, abs((f.change_date - change_date).days)),
        default=None,
    )
    if finding is not None:
        return finding
    attempt = 0
    while True:  # the derived id may belong to a root since renamed (see ``_renamed_roots``)
        new_id = finding_id(item.metric, key, change_date, attempt)
        finding = session.get(Finding, new_id)
        if finding is None or (finding.segment_key == key and finding.id not in claimed):
            break
        attempt += 1
    finding = finding or Finding(
        id=new_id, metric=item.metric, segment_key=key, segment=item.segment.as_dict(), first_reported=as_of
    )
    session.add(finding)
    return finding


def _continued(pool: list[Finding], item: DetectedChange, as_of: dt.date) -> list[Finding]:
    """The stored findings of the change's own segment it may continue."""
    change_date = item.change.change_date.date()
    return [
        f for f in pool
        if _overlap_days(f, item.change, as_of) > 0 or abs((f.change_date - change_date).days) <= MATCH_DAYS
    ]


def _renamed_roots(
    stored: dict[tuple[str, str], list[Finding]], detected: list[DetectedChange], roles: dict[ChangeKey, Role],
    as_of: dt.date,
) -> dict[ChangeKey, Finding]:
    """Roots of this run that continue a stored root under another name.

    A root with no stored finding of its own segment takes the recent open root of
    the same metric whose date is within ``RENAMED_DAYS`` and whose segment holds
    or lies in its own, unless that segment is still a root of its own this run.
    Each stored root goes to one root at most, the nearest in date (then in depth).
    """
    roots = [d for d in detected if (roles.get(d.key) or Role(root=True)).root]
    root_keys = {(d.metric, d.segment.key()) for d in roots}
    recent = as_of - dt.timedelta(weeks=ANCHOR_WEEKS)
    open_roots = [
        f for group in stored.values() for f in group
        if f.root and f.state in OPEN_STATES and f.last_reported >= recent and f.first_reported <= as_of
        and (f.metric, f.segment_key) not in root_keys
    ]
    out: dict[ChangeKey, Finding] = {}
    for item in roots:
        if _continued(stored.get((item.metric, item.segment.key()), []), item, as_of):
            continue  # a finding of its own continues it
        day, mine = item.change.change_date.date(), set(item.segment.items)
        nested = [
            (abs((f.change_date - day).days), abs(len(f.segment) - len(mine)), f.id, f) for f in open_roots
            if f.metric == item.metric and f not in out.values() and abs((f.change_date - day).days) <= RENAMED_DAYS
            and (set(f.segment.items()) <= mine or mine <= set(f.segment.items()))
        ]
        if nested:
            out[item.key] = min(nested, key=lambda entry: entry[:3])[3]
    return out


def _rename(finding: Finding, segment: Segment) -> None:
    """The finding's segment is now ``segment``; the first name it was reported under is kept."""
    first = (finding.attribution or {}).get("first_named")
    finding.attribution = {**(finding.attribution or {}), "first_named": finding.segment if first is None else first}
    finding.segment_key, finding.segment = segment.key(), segment.as_dict()


def _describe(finding: Finding, item: DetectedChange) -> None:
    change = item.change
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
    finding.found_by = str(item.found_by)
    finding.known_date = item.known
    finding.shape = str(change.shape)
    gradual = change.shape == "gradual"
    finding.ramp_end = change.end_date.date() if gradual and change.end_date is not None else None
    finding.slope = _optional(change.slope) if gradual else None
    finding.slope_ci_low = _optional(change.slope_ci_low) if gradual else None
    finding.slope_ci_high = _optional(change.slope_ci_high) if gradual else None


def _optional(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _state(finding: Finding, as_of: dt.date) -> FindingState:
    """Recovered once the metric came back; new in the week it was first reported.

    (Ended is decided afterwards, from the segment's responses.)
    """
    if finding.recovered_on is not None and finding.recovered_on <= as_of:
        return FindingState.RECOVERED
    if (as_of - finding.first_reported).days < NEW_DAYS:
        return FindingState.NEW
    return FindingState.ONGOING


def _assign_role(finding: Finding, role: Role | None, by_key: dict[ChangeKey, Finding]) -> None:
    if role is None or role.root:
        details = dict(role.details) if role is not None else {}
        children = [] if role is None else [by_key[key].id for key in role.children if key in by_key]
        first_named = (finding.attribution or {}).get("first_named")
        if first_named == finding.segment:
            first_named = None
        finding.root, finding.root_id = True, None
        finding.scope = details.pop("scope", None)
        finding.explains = details.pop("explains", None)
        finding.impact = details.pop("impact", None)
        # Through the typed form, so a key the readers do not know fails here, not in an email.
        finding.attribution = Explanation.from_json(
            {**details, "children": children, "first_named": first_named}
        ).to_json()
        return
    root = by_key.get(role.root_key) if role.root_key else None
    finding.root, finding.root_id = False, None if root is None else root.id
    finding.scope = finding.explains = finding.impact = None
    finding.attribution = {}
