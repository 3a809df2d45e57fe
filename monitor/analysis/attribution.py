"""Break each dip down by area: one root finding per cause, its echoes folded under it.

Per-segment detection finds the same dip many times: a drop in Finland x SAP
also shows in Finland, in SAP, in SAP x Finance... This step groups the detected
changes of a metric that start within ``MATCH_DAYS`` of each other into an
*incident*, and explains the incident on the additive parts of the metric over
the windows the detector compared (see ``detectors.attribution`` for the
statistics and the published methods they borrow from):

1. Every segment of every dimension and pair of dimensions is tested for an
   *excess* change against the rest of the respondents (Bonferroni over all
   segments tested, and at least half the metric's minimum effect).
2. Candidates are taken in order of the overall change they carry. A candidate
   is re-tested with the roots found so far removed from it and from the rest:
   if it no longer stands out, it is an echo of the root it overlaps most.
   Otherwise it becomes a root, unless its change is concentrated in its
   largest child (a pair inside a single dimension's segment): the rest of the
   segment changed clearly less than the child. Then the child is the more
   precise root (HotSpot's ripple effect, applied one level down). A set of
   respondents goes by its shortest name ("Lyon", not "France x Lyon").
3. The change outside every root decides the scope: none and no roots is
   ``generic``; roots and a clear change outside them is ``mixed``; roots alone
   is ``localized``.

Detected findings then take their roles: in a localized incident each root
segment's finding is a root (created from the window comparison when the
detector had not flagged that exact segment) and everything else echoes the
root it overlaps; in a generic or mixed incident the least specific finding
(usually everyone's) is the root and the rest fold into it, as do later segment
dips that start while a generic dip is still open (inhibition).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from detectors import (
    Change,
    ChangeShape,
    Delta,
    Direction,
    Metric,
    is_finding,
    metric_for,
)
from detectors.attribution import (
    DiffInDiff,
    Shift,
    change_z,
    critical_z,
    diff_in_diff,
    excess,
    excess_and_error,
    rising_factors,
    searched_critical_z,
    shift,
    shift_share,
    worse_sign,
)
from detectors.polarity import FactorPolarity, Polarity
from monitor.analysis.aggregate import (
    ResponseTable,
    Segment,
    grouping_cube,
    groupings,
    period_of_day,
)
from monitor.analysis.detect import (
    CORROBORATED,
    CORROBORATION_WEEKS,
    TESTED_AT_A_DATE,
    DetectedChange,
    FoundBy,
    companion_step,
    metric_names,
    worse_side,
)
from monitor.analysis.detect import polarities as table_polarities
from monitor.analysis.suggestions import suggestions_for
from monitor.analysis.transitions import Window, recovery_period
from monitor.periods import EPOCH, periods_per_week
from monitor.store.models import FindingScope

MATCH_DAYS = 21  # changes starting within three weeks of each other are one incident
GENERIC_SPREAD = 0.5  # a segment stands out only by half the overall change or more
BEFORE_WEEKS, MIN_BEFORE_WEEKS = 12, 4  # the baseline: a quarter, at least a month
AFTER_WEEKS, MIN_AFTER_WEEKS = 8, 2  # the change: two months, at least two weeks
STABLE_PARTITION = 0.05  # share of responses allowed in segments present on one side only
TREE_CHILDREN = 3  # segments per dimension shown under a node of the drill-down tree
PERSISTENT_SHARE = 0.2  # responses allowed in values seen only early or only late, for a lasting dimension
RIPPLE = 0.25  # a parent's remainder changing this much of its child's excess keeps the parent
MAX_DEPTH = 3  # dimensions a root may combine (country x service x channel)
CHILDREN_TRIED = 5  # children of a node tried, most carried first, when descending
HAPPINESS = metric_for("happiness")
CLEAR_RISE_Z = 1.645  # one-sided 95%: Happiness clearly rose (a positive factor's fall is then crowding out)


@dataclass(frozen=True)
class AttributionOptions:
    anonymity_min_responses: int = 5
    min_n: int = 30
    alpha: float = 0.05
    confidence: float = 0.95
    pairs: bool = True
    suggestions: Mapping[str, str] = field(default_factory=dict)
    factor_polarity: Mapping[str, str] = field(default_factory=dict)  # configured: positive|negative|neutral
    # What the detector searched (series screened, periods per series), for the
    # significance of a searched change that stands alone (``_searched_enough``);
    # 0: counted from the table.
    searched_series: int = 0
    searched_periods: int = 0

    @property
    def min_segment(self) -> int:
        """Responses a segment needs in each window to be named at all."""
        return max(self.min_n, self.anonymity_min_responses)


@dataclass(frozen=True)
class SegmentEffect:
    """One segment's change over an incident's windows, and how it compares to the rest."""

    segment: Segment
    n_before: int
    n_after: int
    before: float
    after: float
    excess: float  # worse-signed: how much more it worsened than everyone else
    z: float
    weight: float  # mean share of the parent's responses over both windows
    contribution: float  # its rate + mix part of the parent's change (metric units)

    @property
    def delta(self) -> float:
        return self.after - self.before

    @property
    def carried(self) -> float:
        """The part of the parent's change its excess carries: what ranks candidates."""
        return self.weight * self.excess


ChangeKey = tuple[str, str, dt.date]
# The (name, scope) of the transition a change falls in, if any.
TransitionOf = Callable[[DetectedChange], tuple[str, dict[str, list[str]]] | None]


@dataclass
class Role:
    """What attribution says about one detected (or root-created) change."""

    root: bool = True
    root_key: ChangeKey | None = None
    children: list[ChangeKey] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)  # root only: scope, segments, factors ...


@dataclass
class AttributionResult:
    changes: list[DetectedChange]  # detected ones plus roots created for located segments
    roles: dict[ChangeKey, Role]


def _period(table: ResponseTable, day: dt.date | pd.Timestamp) -> int:
    if isinstance(day, pd.Timestamp):
        day = day.date()
    return int(period_of_day((day - EPOCH).days, table.period))


@dataclass(frozen=True)
class Mask:
    """A set of respondents: one boolean array per window (before, after)."""

    before: np.ndarray
    after: np.ndarray

    def __and__(self, other: Mask) -> Mask:
        return Mask(self.before & other.before, self.after & other.after)

    def __or__(self, other: Mask) -> Mask:
        return Mask(self.before | other.before, self.after | other.after)

    def without(self, other: Mask) -> Mask:
        return Mask(self.before & ~other.before, self.after & ~other.after)

    def overlap_after(self, other: Mask) -> int:
        return int(np.count_nonzero(self.after & other.after))


class _Masks:
    """Window sums of any set of respondents of an incident.

    Only the responses of the two windows are kept, split by window, so a mask is
    a fraction of the table. Masks stay small (a segment, the roots): the sums of
    a large complement are the window totals minus the small side's.
    """

    def __init__(
        self, table: ResponseTable, before: Window, after: Window, persistent: Mapping[str, bool] | None = None
    ) -> None:
        self.table = table
        self._persistent = persistent or {}
        self.columns = list(table.stat_names)
        self._windows = [table.between(window.first, window.last) for window in (before, after)]
        self.totals = tuple(pd.Series(part.stats.sum(axis=0), index=self.columns) for part in self._windows)
        self._partitions: dict[tuple[str, str], tuple[list[str], pd.DataFrame, pd.DataFrame]] = {}
        self._segments: dict[Segment, Mask] = {}
        self._sums: dict[Segment, tuple[pd.Series, pd.Series]] = {}
        self._cited_by_all: dict[tuple[str, str], tuple[float, float]] = {}

    @property
    def windows(self) -> list[ResponseTable]:
        return self._windows

    def persists(self, name: str) -> bool:
        """Do the dimension's values continue across the go-live (see ``persistent_dimensions``)?"""
        return self._persistent.get(name, True)

    def nobody(self) -> Mask:
        return Mask(*(np.zeros(len(part), dtype=bool) for part in self._windows))

    def of(self, segment: Segment) -> Mask:
        if segment not in self._segments:
            self._segments[segment] = Mask(*(part.of(segment) for part in self._windows))
        return self._segments[segment]

    def of_any(self, segments: Iterable[Segment]) -> Mask:
        """Respondents of any of ``segments`` (nobody for none)."""
        union = self.nobody()
        for segment in segments:
            union = union | self.of(segment)
        return union

    def in_scope(self, scope: Mapping[str, list[str]]) -> Mask:
        """Respondents whose value of each listed dimension is one of those listed."""
        return Mask(*(part.scope_mask(scope) for part in self._windows))

    def sums(self, mask: Mask | None) -> tuple[pd.Series, pd.Series]:
        """Window sums of ``mask`` (everyone when None)."""
        if mask is None:
            return self.totals
        before, after = (part.stats[m].sum(axis=0) for part, m in zip(self._windows, (mask.before, mask.after), strict=True))
        return pd.Series(before, index=self.columns), pd.Series(after, index=self.columns)

    def segment_sums(self, segment: Segment) -> tuple[pd.Series, pd.Series]:
        """Window sums of one segment, kept: nested tests ask for a root's many times."""
        if segment not in self._sums:
            self._sums[segment] = self.sums(self.of(segment))
        return self._sums[segment]

    def cited_by_unhappy(self, mask: Mask, factor: str) -> tuple[float, float]:
        """Citations of ``factor`` by respondents rating 0-6 in ``mask``, per window."""
        return self.cited_within(mask, factor, "detractors")

    def cited_within(self, mask: Mask, factor: str, band: str) -> tuple[float, float]:
        """Citations of ``factor`` by the ``band`` ("promoters", "detractors") of ``mask``, per window."""
        f, d = self.columns.index(f"f:{factor}"), self.columns.index(band)
        return tuple(  # type: ignore[return-value]
            float(part.stats[m, f] @ part.stats[m, d])
            for part, m in zip(self._windows, (mask.before, mask.after), strict=True)
        )

    def cited_by_all(self, factor: str, band: str) -> tuple[float, float]:
        """``cited_within`` everyone, kept: each candidate segment's rest needs it."""
        if (factor, band) not in self._cited_by_all:
            self._cited_by_all[factor, band] = self.cited_within(self.of(Segment()), factor, band)
        return self._cited_by_all[factor, band]

    def complement(self, mask: Mask) -> tuple[pd.Series, pd.Series]:
        """Window sums of everyone outside ``mask``."""
        before, after = self.sums(mask)
        return self.totals[0] - before, self.totals[1] - after

    def partition(self, segment: Segment, name: str) -> tuple[list[str], pd.DataFrame, pd.DataFrame]:
        """Window sums of a segment's respondents split by the values of one dimension."""
        key = (segment.key(), name)
        if key not in self._partitions:
            labels = self.table.labels[name]
            frames = []
            for part, inside in zip(self._windows, (self.of(segment).before, self.of(segment).after), strict=True):
                codes = part.codes[name]
                keep = inside & (codes >= 0)
                sums = np.zeros((len(labels), len(self.columns)))
                for j, column in enumerate(part.stats[keep].T):
                    sums[:, j] = np.bincount(codes[keep], weights=column, minlength=len(labels))
                frames.append(pd.DataFrame(sums, columns=self.columns))
            self._partitions[key] = (labels, frames[0], frames[1])
        return self._partitions[key]


@dataclass
class Incident:
    """Detected changes of one metric starting close together, and their explanation."""

    metric: Metric
    members: list[DetectedChange]
    before: Window
    after: Window
    overall: Delta | None = None
    roots: list[SegmentEffect] = field(default_factory=list)
    rest: Delta | None = None
    scope: FindingScope | None = None
    threshold: float = np.inf  # z a segment needs to stand out (Bonferroni over those tested, and incidents)
    naming_threshold: float = np.inf  # the same over those tested only: naming a root's place inside it
    floor: float = 0.0  # excess a segment needs beyond everyone's change
    adopted: set[Segment] = field(default_factory=set)  # roots taken from Happiness roots of the same weeks
    later: list[DetectedChange] = field(default_factory=list)  # the metric's changes after the incident's
    search_after: Window | None = None  # the segments' after window, when longer (see ``_windows``)
    own_only: bool = False  # windows run over other changes: only segments nested with a sliding member are searched
    own_before: Window | None = None  # since everyone's last change, when shorter: did a segment itself worsen?

    @property
    def anchor(self) -> DetectedChange:
        return self.members[0]


def attribute(
    table: ResponseTable,
    detected: list[DetectedChange],
    options: AttributionOptions,
    transition_of: TransitionOf | None = None,
) -> AttributionResult:
    """Roles for every detected change; root changes carry the full attribution.

    ``transition_of`` gives a root's transition (name, scope), when it falls in
    one with a scope: segments outside the scope are then the control group of a
    difference-in-differences estimate.
    """
    roles: dict[ChangeKey, Role] = {}
    searched = _Searched(table, options)
    polarity = polarities(table, options)
    # A positive (or neutral) factor cited more is no dip: never a root, no red card.
    detected = [d for d in detected if _bad_news(d, polarity)]
    changes = list(detected)
    persistent = persistent_dimensions(table)
    open_generic: list[DetectedChange] = []
    localized: list[DetectedChange] = []  # Happiness roots of named segments, for the other metrics
    # Volume is a feed-health signal of everyone: nothing to break down, and its
    # window sums are counts over windows of different lengths. Happiness
    # incidents come first: their roots are the hypotheses of the other metrics'.
    incidents = _incidents(table, [d for d in detected if d.metric != "volume"], polarity)
    # Each incident searches every segment for one standing out: a run with K incidents
    # makes K such searches, and a false root in any of them is a false root of the run.
    segment_alpha = options.alpha / max(len(incidents), 1)
    for incident in incidents:
        masks = _Masks(table, incident.before, incident.search_after or incident.after, persistent)
        measured = masks if incident.search_after is None else _Masks(table, incident.before, incident.after, persistent)
        if _praise_crowded_out(masks, incident):
            changes = [c for c in changes if c not in incident.members]
            continue
        if _promoters_lost(masks, incident.metric, incident.anchor.segment):
            host = _happiness_root_of(masks, incident, changes, roles)
            if host is None:
                changes = [c for c in changes if c not in incident.members]
            else:
                for member in incident.members:
                    _fold(roles, host.key, member.key)
            continue
        onset = incident.anchor.change.change_date
        hypotheses = [] if incident.metric.name == "happiness" else list(dict.fromkeys(
            root.segment for root in localized if _open_at(root, onset)))
        own = None if incident.own_before is None else _Masks(
            table, incident.own_before, incident.search_after or incident.after, persistent)
        date_bar = _date_bar(incident, searched, detected, options.confidence)
        _explain(table, masks, incident, options, hypotheses, date_bar, measured, alpha=segment_alpha, own=own)
        # A segment's dip while a generic one is open is part of it when nothing stands
        # out; everyone's own second dip is a cause of its own.
        inhibitor = next(
            (root for root in open_generic
             if root.metric == incident.metric.name and not incident.roots and incident.anchor.segment.items
             and _open_at(root, incident.anchor.change.change_date)),
            None,
        )
        if inhibitor is not None:
            for member in incident.members:
                _fold(roles, inhibitor.key, member.key)
            continue
        if incident.scope is None:
            # Nothing stands out and everyone did not change. A member that could
            # be tested here and did not stand out is not confirmed: Pelt's long
            # stretches can place the sum of later dips of a small segment at an
            # earlier, noisy week. Members too small to test keep their finding.
            # A positive factor's fall is the mirror of promoters lost, and its 5-point
            # minimum effect is small beside its level (a third of responses or more):
            # in a small segment it stands alone only when it could be tested.
            mirror = incident.metric.name.startswith("factor:") and worse_sign(incident.metric) < 0
            unconfirmed = [m for m in incident.members
                           if not _confirmed(masks, incident, m, options, untestable=not mirror)
                           or not _searched_enough(table, m, options, searched, detected)]
            changes = [c for c in changes if c not in unconfirmed]
            incident.members = [m for m in incident.members if m not in unconfirmed]
            if not incident.members:
                continue
        if incident.scope is FindingScope.GENERIC and incident.anchor.segment.items:
            # Everyone's change is clear on the windows but the detector found it only in
            # segments, and none stands out: the root would name a segment nobody located,
            # on a searched date. It stands only with the searched significance.
            weak = [m for m in incident.members if not _searched_enough(table, m, options, searched, detected)]
            changes = [c for c in changes if c not in weak]
            incident.members = [m for m in incident.members if m not in weak]
            if not incident.members:
                continue
            if not _place_generic(table, masks, incident, options, _crosses_everyone(table, incident, detected)):
                changes = [c for c in changes if c not in incident.members]
                continue
        roots = _root_changes(table, masks, incident, options)
        if incident.scope is FindingScope.MIXED and len(roots) > 1:
            # The generic part is its own root: it recovers when everyone outside
            # the localized roots is back, whatever the localized parts do.
            generic = _with_recovery(
                roots[0], _recovered(table, incident, ~_rows_of(table, roots[1:]), Segment(), options)
            )
            changes = [generic if c is roots[0] else c for c in changes]
            roots[0] = incident.members[0] = generic
        changes.extend(root for root in roots if root not in changes)
        if incident.metric.name == "happiness":
            localized.extend(root for root in roots if root.segment.items)
        for root in roots:
            role = roles.setdefault(root.key, Role())
            role.root, role.root_key = True, None
            role.details = _details(table, masks, incident, root, options, transition_of, polarity)
        for member in incident.members:
            if member in roots:
                continue
            _fold(roles, _root_for(masks, incident, member, roots).key, member.key)
        if incident.scope in (FindingScope.GENERIC, FindingScope.MIXED):
            open_generic.append(roots[0])
    _fold_related_metrics(table, changes, roles)
    return AttributionResult(changes, roles)


# A stored finding re-tested at its own date keeps its root on a bar one standard
# error lower than a new one needs (the detector's screen is looser by the same
# margin): hysteresis, so a root near the bar is not announced and withdrawn in turn.
KEPT_Z_SLACK = 1.0


class _Searched:
    """The critical z of a searched change (``detectors.attribution.searched_critical_z``),
    from what the detector searched: the run's count when given, else the table's
    segments (every grouping, every metric) with enough responses to be searched."""

    def __init__(self, table: ResponseTable, options: AttributionOptions) -> None:
        self._table, self._options = table, options
        self._z: float | None = None

    @property
    def critical_z(self) -> float:
        if self._z is None:
            table, options = self._table, self._options
            series = options.searched_series
            if series <= 0:
                sizes = [grouping_cube(table, by)[1][:, :, 0].sum(axis=1)
                         for by in groupings(tuple(table.labels), pairs=options.pairs)]
                series = sum(int((s >= 2 * options.min_segment).sum()) for s in sizes) * len(metric_names(table))
            periods = options.searched_periods or (table.last_period - table.first_period + 1 if len(table) else 1)
            self._z = searched_critical_z(series, periods, options.alpha)
        return self._z

    def bar(self, kept: bool) -> float:
        """The z a searched change must clear: ``KEPT_Z_SLACK`` lower for a stored
        finding re-tested at its own date (hysteresis)."""
        return self.critical_z - (KEPT_Z_SLACK if kept else 0.0)


def _date_bar(incident: Incident, searched: _Searched, detected: list[DetectedChange], confidence: float) -> float:
    """The z a segment of the incident needs when the incident's date was itself searched
    among segments: no member is everyone's and none sits at a known date.

    The windows were then placed where some segment's series dipped most, among
    every segment and week, so a segment standing out on them was chosen twice by
    the data; the Bonferroni over segments alone would let noise in small pairs
    through in most runs. The bar is ``_Searched.bar``, as for a searched change that
    stands alone (``_searched_enough``). 0: no date search to count.
    """
    if any(_date_given(m, detected, searched, confidence) for m in incident.members):
        return 0.0
    return searched.bar(kept=all(m.found_by is FoundBy.KEPT for m in incident.members))


def _date_given(member: DetectedChange, detected: list[DetectedChange], searched: _Searched, confidence: float) -> bool:
    """Was the member's date given rather than searched: everyone's series, a known
    date, or (Happiness) a step of lost time or a factor of the same segment that
    located it?

    A companion clear of the searched bar locates the cause as the detector's second
    round does (``monitor.analysis.detect._corroborations``), which tests Happiness at
    the companion's date when the search missed it; a Happiness change the search found
    there too is held to the same bar, not a harsher one (a pair's 21-point dip,
    its lost time up 88 minutes at z 11 the same week, stayed no root at z 5.0).
    """
    if not member.segment.items or member.found_by in TESTED_AT_A_DATE:
        return True
    if member.metric != CORROBORATED:
        return False
    near = pd.Timedelta(weeks=CORROBORATION_WEEKS)
    return any(
        item.segment == member.segment and abs(item.change.change_date - member.change.change_date) <= near
        and companion_step(item, confidence, searched.critical_z)
        for item in detected
    )


def _searched_enough(table: ResponseTable, member: DetectedChange, options: AttributionOptions,
                     searched: _Searched, detected: list[DetectedChange]) -> bool:
    """Is a segment's searched change that stands alone (no root located on the
    incident's windows) significant once the search is counted?

    Its segment and date were chosen from the data among thousands of series and
    dates, so its plain 95% interval is optimistic: a segment of two responses a
    week makes a noise "dip" somewhere. It must clear the searched critical z
    (``KEPT_Z_SLACK`` lower for a stored finding kept at its date). Everyone's
    series and dates given to the test (go-lives, a companion metric's change; see
    ``monitor.analysis.detect``) keep their own.
    """
    if _date_given(member, detected, searched, options.confidence):
        return True
    change = member.change
    z = change_z(change.delta, change.ci_low, change.ci_high, change.p_value, options.confidence)
    return bool(np.isfinite(z) and z >= searched.bar(kept=member.found_by is FoundBy.KEPT))


def polarities(table: ResponseTable, options: AttributionOptions) -> dict[str, Polarity]:
    """Each factor's sign: configured, else read from the ratings of those citing it."""
    return table_polarities(table, options.factor_polarity, options.confidence)


def _bad_news(change: DetectedChange, polarity: Mapping[str, Polarity]) -> bool:
    """Is the change a worsening? A factor's reading follows its polarity: a negative
    (or undecided) one cited more, a positive one cited less; a neutral one never."""
    if not change.metric.startswith("factor:"):
        return True
    known = polarity.get(change.metric.removeprefix("factor:"))
    if known is None or known.worse_when_rising:
        return change.change.delta > 0 or not np.isfinite(change.change.delta)
    return known.polarity is FactorPolarity.POSITIVE and change.change.delta < 0


def _clearly_worse(metric: Metric, delta: Delta) -> bool:
    """Does ``delta``'s interval lie wholly on the metric's worse side of zero?"""
    return bool((delta.ci_low > 0) if worse_sign(metric) > 0 else (delta.ci_high < 0))


def _place_generic(
    table: ResponseTable, masks: _Masks, incident: Incident, options: AttributionOptions, crossed: bool
) -> bool:
    """Where a generic incident the detector saw only in segments belongs (False: nowhere).

    ``crossed``: everyone's own change of the metric starts or ends inside the
    windows; everyone's change over them is then that change's, not this one's (a
    slide in one department, measured where it ended, took in a later go-live dip of
    everyone and became a generic root dated at the slide).

    Nothing stood out, so the segment's name would send the reader where nothing
    changed more than elsewhere: when everyone outside the segment changed clearly
    too, the root is everyone's change, if that is a finding. When the rest held,
    everyone's clear change is the segment's own: it is the place (localized), though
    the search over every segment, on top of the detector's, could not single it out.
    """
    if crossed:
        return False
    rest = incident.metric.compare(*masks.complement(masks.of(incident.anchor.segment)), confidence=options.confidence)
    if not _clearly_worse(incident.metric, rest):
        incident.scope = FindingScope.LOCALIZED
        effect = _effect_of(masks, incident.metric, incident.anchor.segment, masks.nobody(), options)
        incident.roots = [] if effect is None else [effect]
        return True
    everyone = _created_change(table, masks, incident, Segment(), options)
    if everyone.change.finding:
        incident.members.insert(0, everyone)
    return everyone.change.finding


def _events(
    table: ResponseTable, incident: Incident, detected: list[DetectedChange], keep: Callable[[DetectedChange], bool]
) -> list[int]:
    """Periods where the metric's other changes that ``keep`` accepts start or recover."""
    members = set(map(id, incident.members))
    return [
        _period(table, when)
        for item in detected
        if item.metric == incident.metric.name and id(item) not in members and keep(item)
        for when in (item.change.change_date, item.change.recovered_at)
        if when is not None
    ]


def _of_everyone(item: DetectedChange) -> bool:
    return not item.segment.items


def _crosses_everyone(table: ResponseTable, incident: Incident, detected: list[DetectedChange]) -> bool:
    """Does another change of everyone start or end inside the incident's windows?"""
    first, last = incident.before.first, (incident.search_after or incident.after).last
    return any(first <= e <= last for e in _events(table, incident, detected, _of_everyone))


def _praise_crowded_out(masks: _Masks, incident: Incident) -> bool:
    """Is a positive factor's fall only other praise taking its place?

    Respondents cite a few factors each: when "Quick resolution" rises with an
    improvement, "Friendly service" is cited less by the same, happier people. A
    positive factor cited less is news of its own kind unless the respondents'
    Happiness rose clearly (95%, one-sided) over the same windows.
    """
    if not incident.metric.name.startswith("factor:") or worse_sign(incident.metric) > 0:
        return False
    happiness = _shift_of(HAPPINESS, masks.segment_sums(incident.anchor.segment))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = happiness.delta[0] / np.sqrt(happiness.delta_variance[0])
    return bool(np.isfinite(z) and z >= CLEAR_RISE_Z)


def _promoters_lost(masks: _Masks, metric: Metric, segment: Segment) -> bool:
    """Is a positive factor's fall only fewer promoters to cite it?

    A positive factor is offered to 9-10 ratings: where a dip turns promoters into
    detractors, its share among everyone falls while the promoters left cite it as
    often as before. That fall is the Happiness dip seen again (a generic
    "Quick resolution" root beside a dip in a third of the answers), not news of
    its own: the promoters' share fell clearly (95%, one-sided) and their citing
    rate did not.
    """
    if not metric.name.startswith("factor:") or worse_sign(metric) > 0:
        return False
    factor = metric.name.removeprefix("factor:")
    mask = masks.of(segment)
    sums = masks.segment_sums(segment)
    promoters = np.array([float(w["promoters"]) for w in sums])
    responses = np.array([float(w["n"]) for w in sums])
    cited = np.array(masks.cited_within(mask, factor, "promoters"))
    if np.any(promoters <= 0) or np.any(responses <= 0):
        return False
    return bool(_fall_z(promoters, responses) >= CLEAR_RISE_Z and _fall_z(cited, promoters) < CLEAR_RISE_Z)


def _only_more_unhappy(masks: _Masks, metric: Metric, segment: Segment) -> bool:
    """Does a negative factor rise more in ``segment`` than elsewhere only because
    more of its respondents are unhappy, not because the unhappy cite it more?

    A negative factor is offered to 0-6 ratings: where ratings spread (more 0-6
    and more 9-10, Happiness unchanged) a factor everyone cites more rises most,
    in share of all answers, where the unhappy are most. The segment is then no
    place of its own: its unhappy respondents' citing rate rose no more than the
    rest's (one-sided 95%).
    """
    if not metric.name.startswith("factor:") or worse_sign(metric) < 0 or not segment.items:
        return False
    factor = metric.name.removeprefix("factor:")
    inside = masks.segment_sums(segment)
    outside = tuple(total - part for total, part in zip(masks.totals, inside, strict=True))
    unhappy = [np.array([float(w["detractors"]) for w in sums]) for sums in (inside, outside)]
    if any(np.any(u <= 0) for u in unhappy):
        return False
    everyone = masks.cited_by_all(factor, "detractors")
    cited_inside = np.array(masks.cited_within(masks.of(segment), factor, "detractors"))
    cited = [cited_inside, np.array(everyone) - cited_inside]
    rates = [c / u for c, u in zip(cited, unhappy, strict=True)]
    rises = [r[1] - r[0] for r in rates]
    se = np.sqrt(sum(np.sum(r * (1.0 - r) / u) for r, u in zip(rates, unhappy, strict=True)))
    more_unhappy = float(inside[1]["detractors"] / inside[1]["n"] - inside[0]["detractors"] / inside[0]["n"]) > 0
    return bool(more_unhappy and se > 0 and (rises[0] - rises[1]) / se < CLEAR_RISE_Z)


def _fall_z(hits: np.ndarray, trials: np.ndarray) -> float:
    """z of the fall of a proportion from the before window to the after one."""
    rate = hits / trials
    se = np.sqrt(np.sum(rate * (1.0 - rate) / trials))
    return float((rate[0] - rate[1]) / se) if se > 0 else 0.0


def _happiness_root_of(
    masks: _Masks, incident: Incident, changes: list[DetectedChange], roles: dict[ChangeKey, Role]
) -> DetectedChange | None:
    """The Happiness root open at the incident's onset that shares most of its respondents."""
    onset = incident.anchor.change.change_date
    own = masks.of(incident.anchor.segment)
    hosts = [c for c in changes if c.metric == HAPPINESS.name and c.key in roles and roles[c.key].root
             and _open_at(c, onset)]
    shared = [(own.overlap_after(masks.of(c.segment)), c) for c in hosts]
    best = max(shared, key=lambda item: item[0], default=(0, None))
    return best[1] if best[0] > 0 else None


def _metric(name: str, polarity: Mapping[str, Polarity]) -> Metric:
    """The metric called ``name``, a factor's worse side following its polarity."""
    return metric_for(name, polarity=worse_side(name, polarity))


def persistent_dimensions(table: ResponseTable) -> dict[str, bool]:
    """Which dimensions keep their values from the first quarter of the data to the last.

    Countries and services continue across a go-live; the in-house assignment
    groups do not (the MSP's replace them). A name made of lasting dimensions reads
    the same before and after, so it is preferred among names of the same respondents.
    """
    if not len(table):
        return {}
    span = table.last_period - table.first_period + 1
    early = table.periods < table.first_period + max(span // 4, 1)
    late = table.periods > table.last_period - max(span // 4, 1)
    result = {}
    for name, codes in table.codes.items():
        size = len(table.labels[name])
        first = np.bincount(codes[early & (codes >= 0)], minlength=size)
        last = np.bincount(codes[late & (codes >= 0)], minlength=size)
        one_sided = first[last == 0].sum() + last[first == 0].sum()
        result[name] = bool(one_sided <= PERSISTENT_SHARE * max(first.sum() + last.sum(), 1))
    return result


def _metric_rank(metric: str) -> int:
    """Which metric speaks for a cause: Happiness, then lost time, then factor shares."""
    return {"happiness": 0, "lost_time": 1}.get(metric, 2)


def _fold_related_metrics(table: ResponseTable, changes: list[DetectedChange], roles: dict[ChangeKey, Role]) -> None:
    """One cause, one root: fold other metrics' roots of the same segment (or of one
    inside it) into the Happiness root, or lost time's when Happiness has none.

    A dip in Finland x SAP moves Happiness, lost time and the share of a factor at
    once (or the factor a few weeks later, while the dip is still open); the root
    Happiness finding already lists the factors that rose. Volume stays apart: it
    is a feed-health signal for another reader.
    """
    roots = sorted(
        (c for c in changes if c.metric != "volume" and (c.key not in roles or roles[c.key].root)),
        key=lambda c: (_metric_rank(c.metric), c.change.change_date, c.metric),
    )
    hosts: list[DetectedChange] = []
    for change in roots:
        date = change.change.change_date
        # A later root of the same metric on the same segment is a second dip while the
        # first lasts, a cause of its own; inside a localized root it is part of it.
        host = next(
            (h for h in hosts
             if (h.metric != change.metric or h.segment != change.segment)
             and (_open_at(h, date) or _slopes_overlap(h, change)) and _within(table, change.segment, h.segment)),
            None,
        )
        if host is None:
            hosts.append(change)
            continue
        role = roles.pop(change.key, Role())
        if host.key in roles and roles[host.key].details:
            # The host says what else moved in its respondents: "lost time rose from 38 to 55 minutes".
            c = change.change
            roles[host.key].details.setdefault("related", []).append({
                "metric": change.metric, "segment": change.segment.as_dict(),
                "before": _r(c.before.value), "after": _r(c.after.value), "delta": _r(c.delta),
                "ci_low": _r(c.ci_low), "ci_high": _r(c.ci_high), "n_before": c.n_before, "n_after": c.n_after,
            })
        _fold(roles, host.key, change.key)
        for echo in role.children:
            _fold(roles, host.key, echo)


def _within(table: ResponseTable, segment: Segment, host: Segment) -> bool:
    """The same segment, or one inside a localized host: Finland x HR in HR, and
    Gothenburg in Sweden (every Gothenburg respondent is in Sweden).

    Not inside everyone: a localized root stands out from a generic change.
    """
    if segment == host or (host.items and set(host.items) < set(segment.items)):
        return True
    if not host.items:
        return False
    inside = table.of(segment)
    return bool(inside.any() and table.of(host)[inside].all())


def _slopes_overlap(a: DetectedChange, b: DetectedChange) -> bool:
    """Are both slides, and do their slopes overlap? A slope's start is fuzzy: lost
    time, noisier than Happiness, dated the same slide of the same respondents five
    weeks before Happiness did."""
    spans = [(c.change_date, c.end_date) for c in (a.change, b.change)
             if c.shape is ChangeShape.GRADUAL and c.end_date is not None]
    return len(spans) == 2 and spans[0][0] <= spans[1][1] and spans[1][0] <= spans[0][1]


def _open_at(change: DetectedChange, date: pd.Timestamp) -> bool:
    start, recovered = change.change.change_date, change.change.recovered_at
    return abs((date - start).days) <= MATCH_DAYS or (date > start and (recovered is None or date < recovered))


def _fold(roles: dict[ChangeKey, Role], root: ChangeKey, echo: ChangeKey) -> None:
    roles.setdefault(root, Role()).children.append(echo)
    roles[echo] = Role(root=False, root_key=root)


def _incidents(
    table: ResponseTable, detected: list[DetectedChange], polarity: Mapping[str, Polarity] | None = None
) -> list[Incident]:
    """Group changes per metric by start date; the least specific change anchors each group.

    Happiness first, then lost time, then factor shares (each by date): the
    Happiness roots are known when the other metrics' incidents are explained.
    """
    incidents: list[Incident] = []
    ordered = sorted(detected, key=lambda d: (len(d.segment.items), d.change.change_date, d.segment.key()))
    for item in ordered:
        date = item.change.change_date
        same_metric = [i for i in incidents if i.metric.name == item.metric]
        home = next((i for i in same_metric if abs((i.anchor.change.change_date - date).days) <= MATCH_DAYS), None)
        home = home or next((i for i in same_metric if any(_one_slide(member, item) for member in i.members)), None)
        if home is not None:
            home.members.append(item)
        else:
            incidents.append(
                Incident(_metric(item.metric, polarity or {}), [item], Window("before", 0, -1), Window("after", 0, -1))
            )
    for incident in incidents:
        incident.before, incident.after, incident.search_after, incident.own_only = _windows(table, incident, detected)
        incident.own_before = _own_before(table, incident, detected)
        onset = incident.anchor.change.change_date
        incident.later = [d for d in detected if d.metric == incident.metric.name
                          and (d.change.change_date - onset).days > MATCH_DAYS]
    return sorted(incidents, key=lambda i: (_metric_rank(i.metric.name), i.anchor.change.change_date, i.metric.name))


def _one_slide(slide: DetectedChange, item: DetectedChange) -> bool:
    """Does ``item`` start on ``slide``'s slope, in a segment holding or inside the
    slide's? Then both are one slide, dated weeks apart (a slope's start is fuzzy,
    more so where it is diluted); apart, each incident's windows stop at the other's
    onset, on the slope, and neither sees the level the slide reached. Not the other
    way round: a change read as a slide that started weeks before an incident (two
    steps of overlapping segments, seen together in their intersection) would move
    the incident's onset there. (Used only for a change near no incident's date.)"""
    a, b = set(slide.segment.items), set(item.segment.items)
    change = slide.change
    return bool(a and b and (a <= b or b <= a) and change.shape is ChangeShape.GRADUAL
                and change.end_date is not None and change.change_date <= item.change.change_date <= change.end_date)


def _windows(
    table: ResponseTable, incident: Incident, detected: list[DetectedChange]
) -> tuple[Window, Window, Window | None, bool]:
    """The stretches before and after the incident's onset that no other event disturbs;
    for an incident of everyone, the longer after window its segments are searched on;
    and whether other changes lie inside them (only segments holding or inside a
    sliding member are then searched).

    Segments are compared on how they changed between the two windows, so no other
    dip may start, and no dip may recover, inside them: the windows stop at the
    other changes of the same metric (their onsets and recoveries) and at the
    members' own recovery, and are capped at ``BEFORE_WEEKS`` and
    ``AFTER_WEEKS``. A window squeezed below its minimum keeps the minimum.

    Everyone's change is measured up to the next break of its own series, but its
    segments are compared with the rest of the respondents, who share that break: a
    generic part fading two weeks after go-live cut the search to two weeks, and a
    lasting local dip in half the respondents (250 answers a week, 35 points) was
    named by a noisy child of it. The search window stops only at other changes.
    """
    change = incident.anchor.change
    start = _onset(table, incident)
    after_first = max(_settled_from(table, member.change, start) for member in incident.members)
    # Everyone's own change (a go-live dip and its recovery) does not stop the windows
    # of a segment incident: segments are judged against the rest of the respondents,
    # who went through it too, so it cancels out; stopping there would leave a dip that
    # starts while a generic one recovers a week or two of data, too little to show.
    def events_of(keep: Callable[[DetectedChange], bool]) -> list[int]:
        return _events(table, incident, detected, keep)

    events = events_of(lambda item: bool(item.segment.items or not incident.anchor.segment.items)) + [
        _period(table, m.change.recovered_at) for m in incident.members if m.change.recovered_at is not None]
    # Another change on a slide's slope: where everyone's slide ended is not its own
    # level, so its windows stop at the slope's start. A segment's slide is compared
    # where it ended all the same (its first weeks show a fraction of it, and nothing
    # stood out), and the other changes are kept out by searching only the segments
    # holding it or inside it; unless a segment holding it (not everyone, whose change
    # cancels out) changes on the slope: the slide may be that change seen in part of
    # its respondents (two steps of overlapping segments read as one slide in their
    # intersection).
    sliding = [m for m in incident.members if m.change.shape is ChangeShape.GRADUAL]
    slides = [set(m.segment.items) for m in sliding]
    segment_slides = [s for s in slides if s]
    holders = events_of(lambda item: bool(item.segment.items) and any(set(item.segment.items) < s for s in slides))
    own_only = any(start < e <= after_first for e in events)
    # Where the segments' own slides ended (everyone's may run on through later causes).
    settled = max([_settled_from(table, m.change, start) for m in sliding if m.segment.items], default=after_first)
    if own_only and (not incident.anchor.segment.items or incident.metric.name != "happiness"
                     or any(start < e <= after_first for e in holders)):
        after_first, own_only = start, False
    later = [e for e in events if e > settled]
    events = [e for e in events if not start < e <= after_first]
    per_week = periods_per_week(table.period)
    first = max(
        [start - BEFORE_WEEKS * per_week, table.first_period]
        + ([_period(table, change.before_from)] if change.before_from is not None else [])
        + [e for e in events if e < start]
    )
    last = min(
        [after_first + AFTER_WEEKS * per_week - 1, table.last_period]
        + ([_period(table, change.after_to)] if change.after_to is not None else [])
        + [e - 1 for e in events if e > after_first]
    )
    first = min(first, max(start - MIN_BEFORE_WEEKS * per_week, table.first_period))
    last = max(last, min(after_first + MIN_AFTER_WEEKS * per_week - 1, table.last_period))
    search = None
    if not incident.anchor.segment.items and change.after_to is not None:
        search_last = min([after_first + AFTER_WEEKS * per_week - 1, table.last_period]
                          + [e - 1 for e in events if e > after_first])
        if search_last > last:
            search = Window("after", after_first, search_last)
    one_slide = bool(segment_slides) and all(
        any(set(m.segment.items) <= s or s <= set(m.segment.items) for s in segment_slides)
        for m in incident.members if m.segment.items)
    if (not incident.anchor.segment.items and incident.metric.name == "happiness" and one_slide
            and settled > after_first and not any(start < e <= settled for e in holders)):
        # Everyone's slide is measured up to the slope's start, but its segments are
        # searched where the slide ended, as a segment's slide is (and on the same
        # terms: no segment holding it changes on the slope), when the incident is
        # that slide (every segment member nested with a sliding one): a slide in one
        # service showed in everyone too, everyone became the incident's anchor, and
        # its windows, stopped on the slope, saw the slide's first weeks and no root.
        # (Beside a step elsewhere, the step's windows are the right ones.)
        search_last = min([settled + AFTER_WEEKS * per_week - 1, table.last_period] + [e - 1 for e in later])
        search, own_only = Window("after", settled, max(search_last, settled)), True
    return Window("before", first, start - 1), Window("after", after_first, last), search, own_only


def _own_before(table: ResponseTable, incident: Incident, detected: list[DetectedChange]) -> Window | None:
    """The before window since everyone's last change of the metric (its onset or
    recovery), when that leaves ``MIN_BEFORE_WEEKS`` at least; None when no such change
    falls inside the before window.

    A segment is judged against the rest over everyone's changes (they cancel out),
    but whether it got worse itself cannot be read across one: a generic dip in the
    before window made a business unit that held while the other one improved look
    13 points worse on its own."""
    start, first = incident.before.last + 1, incident.before.first
    since = max([e for e in _events(table, incident, detected, _of_everyone) if first < e < start], default=None)
    per_week = periods_per_week(table.period)
    if since is None or start - since < MIN_BEFORE_WEEKS * per_week:
        return None
    return Window("before", since, start - 1)


def _onset(table: ResponseTable, incident: Incident) -> int:
    """The incident's first period: its earliest member's (a pair's own estimate of
    the onset is often sharper than its parent's, which the dip dilutes)."""
    return min(_period(table, member.change.change_date) for member in incident.members)


def _settled_from(table: ResponseTable, change: Change, start: int) -> int:
    """The first period of the level a change reached: the onset for a step, the
    period after the slope for a slide (its last third while it is still sliding).

    Segments are compared on where they ended up: a decline over 26 weeks seen in
    the 8 weeks after its first period showed a seventh of it, and a 34-point slide
    in one country x language was no root at all.
    """
    if change.shape is not ChangeShape.GRADUAL or change.end_date is None:
        return start
    if change.ongoing:
        return max(start, table.last_period - (table.last_period - start) // 3)
    return max(start, min(_period(table, change.end_date) + 1, table.last_period))


def _effects(
    table: ResponseTable, incident: Incident, by: tuple[str, ...], totals: tuple[pd.Series, pd.Series], min_n: int
) -> tuple[list[SegmentEffect], np.ndarray]:
    """Every segment of one grouping over the incident's windows; and which are testable."""
    segments, cube = grouping_cube(table, by)
    offset = table.first_period
    before = cube[:, incident.before.first - offset : incident.before.last - offset + 1].sum(axis=1)
    window = incident.search_after or incident.after
    after = cube[:, window.first - offset : window.last - offset + 1].sum(axis=1)
    columns = list(table.stat_names)
    metric = incident.metric
    own = shift(metric, pd.DataFrame(before, columns=columns), pd.DataFrame(after, columns=columns))
    rest = shift(
        metric,
        pd.DataFrame(totals[0].to_numpy() - before, columns=columns),
        pd.DataFrame(totals[1].to_numpy() - after, columns=columns),
    )
    extra, z = excess(metric, own, rest)
    parts = shift_share(own)
    weight = 0.5 * (own.n_before / max(own.n_before.sum(), 1.0) + own.n_after / max(own.n_after.sum(), 1.0))
    responses = (before[:, 0], after[:, 0])
    testable = (
        (np.minimum(own.n_before, own.n_after) >= min_n)
        & (np.minimum(rest.n_before, rest.n_after) >= min_n)
        & (np.minimum(*responses) >= min_n)
        & np.isfinite(z)
    )
    effects = [
        SegmentEffect(
            segment, int(responses[0][i]), int(responses[1][i]), float(own.value_before[i]),
            float(own.value_after[i]), float(extra[i]), float(z[i]), float(weight[i]), float(parts.contribution[i]),
        )
        for i, segment in enumerate(segments)
    ]
    return effects, testable


def _worsened(masks: _Masks, metric: Metric, segment: Segment, level: float, confidence: float) -> bool:
    """Did the segment itself get clearly worse over the incident's windows, by half the
    minimum effect? Standing out from a rest that improved is no dip: when one
    service's agents were praised, every other service "lost" praise against the
    rest while its own share held."""
    change = metric.compare(*masks.segment_sums(segment), confidence=confidence)
    return _clearly_worse(metric, change) and _big_enough(metric, worse_sign(metric) * change.delta, level)


def _big_enough(metric: Metric, change: float, level: float, factor: float = 0.5) -> bool:
    """At least ``factor`` of the metric's minimum effect (relative ones on ``level``)."""
    if metric.relative_effect:
        return bool(level > 0 and change / level >= factor * metric.min_effect)
    return bool(change >= factor * metric.min_effect)


def _explain(
    table: ResponseTable,
    masks: _Masks,
    incident: Incident,
    options: AttributionOptions,
    hypotheses: list[Segment] | None = None,
    date_bar: float = 0.0,
    measured: _Masks | None = None,
    alpha: float | None = None,
    own: _Masks | None = None,
) -> None:
    """Find the incident's root segments, their echoes, and its scope.

    ``hypotheses`` are the segments of Happiness roots open at the incident's
    onset (for lost time and factor shares): see ``_adopt``. ``date_bar``: the z
    a segment needs at least, when the incident's date was searched (``_date_bar``).
    ``measured``: the masks of the windows everyone's change and the rest are measured
    on, when segments are searched on longer ones (``_windows``). ``alpha``: the
    level of this incident's search over segments (default ``options.alpha``).
    ``own``: the masks of the before window since everyone's last change
    (``_own_before``), on which a segment must have got worse itself.
    """
    metric = incident.metric
    measured = measured or masks
    totals = masks.totals
    incident.overall = metric.compare(*measured.totals, confidence=options.confidence)
    level = incident.overall.before.value
    found: list[SegmentEffect] = []
    tested = 0
    for by in groupings(tuple(table.labels), pairs=options.pairs):
        if not by:
            continue
        effects, testable = _effects(table, incident, by, totals, options.min_segment)
        tested += int(testable.sum())
        found.extend(e for e, ok in zip(effects, testable, strict=True) if ok)
    threshold = incident.threshold = max(critical_z(tested, options.alpha if alpha is None else alpha), date_bar)
    incident.naming_threshold = max(critical_z(tested, options.alpha), date_bar)
    # A generic change is not uniform in every unit: a Happiness dip that turns a
    # third of answers into detractors takes more points where more were
    # promoters. Only an excess of at least half everyone's change marks a segment,
    # everyone's change over the windows the excess is measured on.
    spread = incident.overall if measured is masks else metric.compare(*totals, confidence=options.confidence)
    floor = incident.floor = GENERIC_SPREAD * max(worse_sign(metric) * spread.delta, 0.0)
    candidates = sorted(
        (e for e in found if e.z >= threshold and e.excess >= floor and _big_enough(metric, e.excess, level)
         and not _only_more_unhappy(masks, metric, e.segment)
         and _worsened(own or masks, metric, e.segment, level, options.confidence)),
        key=lambda e: (-e.carried, len(e.segment.items), e.segment.key()),
    )
    if incident.own_only:
        slides = [m.segment for m in incident.members if m.change.shape is ChangeShape.GRADUAL and m.segment.items]
        candidates = [e for e in candidates
                      if any(_inside(masks, e.segment, s) or _inside(masks, s, e.segment) for s in slides)]
    root_mask = masks.nobody()
    settled: set[Segment] = set()
    pending = list(candidates)
    while pending:
        top = pending[0]
        if top.segment in settled:
            pending.pop(0)
            continue
        # Start from the least specific segment around the top candidate that still
        # waits: a dip in Finland and one in SAP overlap in Finland x SAP, which
        # carries both and may rank first; starting from Finland (and then SAP)
        # names the two roots and leaves their intersection an echo of them.
        around = [
            c for c in candidates
            if c.segment not in settled and set(c.segment.items) < set(top.segment.items)
        ]
        start = min(around, key=lambda c: (len(c.segment.items), -c.carried, c.segment.key())) if around else top
        settled.add(start.segment)
        hosts = [r.segment for r in incident.roots if _inside(masks, start.segment, r.segment)]
        if len(hosts) == 1:
            # Inside a root: an echo of it, unless it changed clearly more than the
            # rest of the root (a second cause on top of the root's).
            if not _stands_out_in(masks, metric, start.segment, hosts[0], threshold, level):
                continue
        elif hosts:
            # Where roots overlap (Finland x SAP) both dips add up: an echo of them,
            # unless it changed clearly more than their sum.
            if not _beyond_its_roots(masks, metric, start.segment, hosts, threshold, level):
                continue
        elif incident.roots and not _still_stands_out(masks, metric, start.segment, root_mask, threshold, level, floor):
            continue
        chosen = _descend(masks, incident, start, root_mask, options, level)
        chosen = _best_name(masks, chosen)
        settled.add(chosen.segment)
        incident.roots.append(chosen)
        root_mask = root_mask | masks.of(chosen.segment)
    if hypotheses:
        _adopt(masks, incident, hypotheses, options, level)
    rest = metric.compare(*measured.complement(measured.of_any(root.segment for root in incident.roots)),
                          confidence=options.confidence)
    incident.rest = rest
    # Over windows other changes run through, the rest's change is theirs.
    # (Everyone's own windows, ``measured``, stop before other changes.)
    judged = not incident.own_only or measured is not masks
    rest_matters = (judged and _clearly_worse(metric, rest)
                    and _big_enough(metric, worse_sign(metric) * rest.delta, rest.before.value))
    if not incident.roots:
        overall = incident.overall
        worse = (judged and _clearly_worse(metric, overall)
                 and metric.direction(overall.delta) is Direction.WORSE)
        incident.scope = FindingScope.GENERIC if worse else None
    else:
        incident.scope = FindingScope.MIXED if rest_matters else FindingScope.LOCALIZED


def _adopt(
    masks: _Masks, incident: Incident, hypotheses: list[Segment], options: AttributionOptions, level: float
) -> None:
    """Move another metric's roots onto the Happiness roots of the same weeks where
    those carry its change.

    One cause moves Happiness, lost time and a factor's share in the same
    respondents, but lost time (heavy-tailed) and a factor (a share of a share)
    are noisier: searched on their own over every segment, their drill-down
    stops one level too high (a whole country, or its old assignment group) or
    goes one level too deep. The Happiness root is a pre-specified segment, so it
    is tested alone (Bonferroni over the hypotheses only, not the whole cube):
    when it stands out for this metric too (against everyone outside it and the
    other roots, by half the minimum effect and the incident's floor), the
    metric's roots that share its respondents give way to it if they are

    * inside it and do not change clearly more than the rest of it (the echo
      rule of any segment inside a root), or
    * around or across it and the rest of them, without it, no longer stands
      out (the child-replaces-parent rule).

    A root that keeps standing out without the Happiness root's respondents is a
    cause of its own and stays (then the hypothesis is not added when that root
    holds it). Adopted roots are roots even when their own change is below the
    finding threshold: they fold under the Happiness root, never stand alone.
    """
    metric = incident.metric
    threshold = critical_z(len(hypotheses), options.alpha)
    for segment in hypotheses:
        if any(root.segment == segment for root in incident.roots):
            incident.adopted.add(segment)
            continue
        own = masks.of(segment)
        overlapping = [root for root in incident.roots if _overlap(masks.of(root.segment), own)]
        others = masks.of_any(root.segment for root in incident.roots if root not in overlapping)
        effect = _effect_of(masks, metric, segment, others, options)
        if effect is None or not (
            effect.z >= threshold and effect.excess >= incident.floor and _big_enough(metric, effect.excess, level)
        ):
            continue
        kept = [
            root for root in overlapping
            if (_stands_out_in(masks, metric, root.segment, segment, incident.threshold, level)
                if _inside(masks, root.segment, segment)
                else _still_stands_out(masks, metric, root.segment, others | own, incident.threshold, level,
                                       incident.floor))
        ]
        if any(_inside(masks, segment, root.segment) for root in kept):
            continue
        incident.roots = [root for root in incident.roots if root not in overlapping or root in kept] + [effect]
        incident.adopted.add(segment)


def _overlap(a: Mask, b: Mask) -> bool:
    return bool(np.any(a.before & b.before) or np.any(a.after & b.after))


def _effect_of(
    masks: _Masks, metric: Metric, segment: Segment, root_mask: Mask, options: AttributionOptions
) -> SegmentEffect | None:
    """One segment's change and its excess over everyone outside it and ``root_mask``."""
    before, after = masks.segment_sums(segment)
    if min(before["n"], after["n"]) < options.min_segment:
        return None
    own = masks.of(segment)
    remaining = masks.sums(own.without(root_mask))
    if min(remaining[0]["n"], remaining[1]["n"]) < 1:
        return None
    extra, z = excess(metric, _shift_of(metric, remaining), _shift_of(metric, masks.complement(own | root_mask)))
    if not np.isfinite(z[0]):
        return None
    totals = masks.totals
    weight = 0.5 * (before["n"] / max(float(totals[0]["n"]), 1.0) + after["n"] / max(float(totals[1]["n"]), 1.0))
    return SegmentEffect(
        segment, int(before["n"]), int(after["n"]), float(metric.estimate(before).value),
        float(metric.estimate(after).value), float(extra[0]), float(z[0]), float(weight),
        _contribution(metric, (before, after), totals),
    )


def _inside(masks: _Masks, segment: Segment, host: Segment) -> bool:
    """Is every respondent of ``segment`` (in both windows) one of ``host``'s?"""
    if set(host.items) <= set(segment.items):
        return True
    own, outer = masks.of(segment), masks.of(host)
    return not (np.any(own.before & ~outer.before) or np.any(own.after & ~outer.after))


def _descend(
    masks: _Masks, incident: Incident, node: SegmentEffect, root_mask: Mask, options: AttributionOptions, level: float
) -> SegmentEffect:
    """The most specific segment under ``node`` that carries its change (README's rule).

    A child replaces its parent when, without that child, the rest of the parent
    no longer stands out (against everyone outside it and the roots, by the same
    test as any segment, and by at least ``RIPPLE`` of the child's excess: a
    remainder that still changes comparably is the parent's own dip, while a
    remainder a few points off when the child fell 40 is the noise of windows
    chosen where the dip is sharpest), and the
    child changed clearly more than that rest (so a small, noisy remainder keeps
    the parent: a Sweden-wide dip is not a Stockholm dip because the other offices
    are small). An uneven dip therefore stays on its parent: its children are
    echoes, not a flood of roots. The search goes down one dimension at a time,
    only under the segment that won (HotSpot's and Squeeze's pruning: deeper
    combinations are looked at only where the level above carries the change),
    down to ``MAX_DEPTH`` dimensions.
    """
    metric = incident.metric
    depth = MAX_DEPTH if options.pairs else 1
    while len(node.segment.items) < depth:
        children, tested = _children(masks, incident, node.segment, options, level)
        for child in children[:CHILDREN_TRIED]:
            kid = masks.of(child.segment)
            rest_stands_out = _still_stands_out(
                masks, metric, node.segment, root_mask | kid, incident.naming_threshold, level,
                max(incident.floor, RIPPLE * child.excess),
            )
            if not rest_stands_out and _concentrated(
                masks, metric, node.segment, child.segment, root_mask, critical_z(tested, options.alpha),
                options.min_segment,
            ):
                node = child
                break
        else:
            break
    return node


def _children(
    masks: _Masks, incident: Incident, segment: Segment, options: AttributionOptions, level: float
) -> tuple[list[SegmentEffect], int]:
    """The children of ``segment`` (one more dimension) that stand out against everyone else,
    most carried first; and how many children were large enough to be tested."""
    metric = incident.metric
    totals = masks.totals
    found: list[SegmentEffect] = []
    tested = 0
    for name in masks.table.labels:
        if name in segment.as_dict():
            continue
        labels, before, after = masks.partition(segment, name)
        own = shift(metric, before, after)
        rest = shift(
            metric,
            pd.DataFrame(totals[0].to_numpy() - before.to_numpy(), columns=before.columns),
            pd.DataFrame(totals[1].to_numpy() - after.to_numpy(), columns=after.columns),
        )
        extra, z = excess(metric, own, rest)
        n_b, n_a = before["n"].to_numpy(), after["n"].to_numpy()
        large = (np.minimum(n_b, n_a) >= options.min_segment) & (np.minimum(own.n_before, own.n_after) >= options.min_segment)
        tested += int(large.sum())
        ok = large & np.isfinite(z) & (z >= incident.naming_threshold) & (extra >= incident.floor)
        for i in np.flatnonzero(ok):
            if not _big_enough(metric, float(extra[i]), level):
                continue
            child = Segment.of({**segment.as_dict(), name: labels[i]})
            weight = 0.5 * (n_b[i] / max(float(totals[0]["n"]), 1.0) + n_a[i] / max(float(totals[1]["n"]), 1.0))
            found.append(SegmentEffect(
                child, int(n_b[i]), int(n_a[i]), float(own.value_before[i]), float(own.value_after[i]),
                float(extra[i]), float(z[i]), float(weight),
                _contribution(metric, (before.iloc[i], after.iloc[i]), totals),
            ))
    return sorted(found, key=lambda e: (-e.carried, e.segment.key())), tested


def _stands_out_in(
    masks: _Masks, metric: Metric, segment: Segment, host: Segment, threshold: float, level: float
) -> bool:
    """Did ``segment`` change clearly more than the rest of the root ``host`` it lies in?

    The root's own effect is taken out by comparing with the rest of the root, not
    with everyone; "clearly" is the incident's threshold, and by at least half the
    root's own change (a root's dip is never even across its children).
    """
    # ``segment`` lies inside ``host``: the rest of the root is the root's sums minus its own.
    inside, outer = masks.segment_sums(segment), masks.segment_sums(host)
    rest = (outer[0] - inside[0], outer[1] - inside[1])
    if min(rest[0]["n"], rest[1]["n"]) < 1:
        return False
    extra, z = excess(metric, _shift_of(metric, inside), _shift_of(metric, rest))
    host_change = worse_sign(metric) * float(_shift_of(metric, outer).delta[0])
    return bool(
        np.isfinite(z[0]) and z[0] >= threshold and extra[0] >= GENERIC_SPREAD * max(host_change, 0.0)
        and _big_enough(metric, float(extra[0]), level)
    )


def _beyond_its_roots(
    masks: _Masks, metric: Metric, segment: Segment, hosts: list[Segment], threshold: float, level: float
) -> bool:
    """Did ``segment``, inside several roots, change clearly more than their effects added up?

    Each root's effect is measured on its respondents outside the other roots,
    against everyone outside all of them; the segment's own excess over those is
    compared with their sum. Clearly: the incident's threshold, by half the
    metric's minimum effect at least.
    """
    outside = _shift_of(metric, masks.complement(masks.of_any(hosts)))
    parts = [
        _shift_of(metric, masks.sums(masks.of(host).without(masks.of_any(h for h in hosts if h != host))))
        for host in hosts
    ]
    own = _shift_of(metric, masks.segment_sums(segment))
    k = len(hosts)
    sign = worse_sign(metric)
    residual = own.delta - sum(p.delta for p in parts) + (k - 1) * outside.delta
    tested = own.test_delta - sum(p.test_delta for p in parts) + (k - 1) * outside.test_delta
    variance = own.test_variance + sum(p.test_variance for p in parts) + (k - 1) ** 2 * outside.test_variance
    with np.errstate(divide="ignore", invalid="ignore"):
        z = sign * tested[0] / np.sqrt(variance[0])
    return bool(np.isfinite(z) and z >= threshold and _big_enough(metric, float(sign * residual[0]), level))


def _best_name(masks: _Masks, effect: SegmentEffect) -> SegmentEffect:
    """A set of respondents goes by its preferred name: "Lyon", not "France x Lyon"."""
    names = [alias for alias, when in _equivalents(masks, effect.segment) if when == "both"]
    if not names:
        return effect
    best = min([effect.segment, *names], key=lambda s: _name_rank(masks, s))
    return effect if best == effect.segment else replace(effect, segment=best)


def _name_rank(masks: _Masks, segment: Segment) -> tuple:
    """Fewest dimensions, then dimensions whose values continue across the go-live,
    then the configured order of dimensions."""
    order = list(masks.table.labels)
    names = [name for name, _ in segment.items]
    return (
        len(names),
        sum(not masks.persists(name) for name in names),
        sorted(order.index(name) for name in names),
        segment.key(),
    )


def _equivalents(masks: _Masks, segment: Segment) -> list[tuple[Segment, str]]:
    """Other names of the same respondents: ``"both"`` windows, or only ``"before"`` /
    ``"after"`` the onset (an in-house group that the MSP's replaced)."""
    own = masks.of(segment)
    per_window = []
    for part, inside in zip(masks.windows, (own.before, own.after), strict=True):
        count = int(np.count_nonzero(inside))
        constant = {}
        if count:
            for name, codes in part.codes.items():
                values = np.unique(codes[inside])
                if len(values) == 1 and values[0] >= 0:
                    constant[name] = masks.table.labels[name][int(values[0])]
        per_window.append((part, count, constant))
    names = sorted(set(per_window[0][2]) | set(per_window[1][2]))
    found: dict[Segment, set[str]] = {}
    for size in range(1, min(max(len(segment.items), 1) + 1, MAX_DEPTH) + 1):
        for combo in itertools.combinations(names, size):
            for (part, count, constant), when in zip(per_window, ("before", "after"), strict=True):
                if not count or any(name not in constant for name in combo):
                    continue
                alias = Segment.of({name: constant[name] for name in combo})
                if alias != segment and int(np.count_nonzero(part.of(alias))) == count:
                    found.setdefault(alias, set()).add(when)
    # A window where the segment has no respondents cannot tell names apart.
    empty = {when for (_, count, _), when in zip(per_window, ("before", "after"), strict=True) if not count}
    result = []
    for alias, windows in found.items():
        windows |= empty
        result.append((alias, "both" if windows == {"before", "after"} else next(iter(windows))))
    return sorted(result, key=lambda item: _name_rank(masks, item[0]))


def _concentrated(
    masks: _Masks, metric: Metric, parent: Segment, child: Segment, root_mask: Mask, threshold: float, min_n: int
) -> bool:
    """Did the child change clearly more than the rest of the parent (both against
    everyone else)? Yes too when the child is the whole parent.

    "Clearly" is Bonferroni over the parent's children that were tested: the child
    on trial is the one that carries most, picked from them by the data, so a
    plain 1.96 would let one of many children beat its siblings by chance (a
    Spain that is most of an assignment group replacing the group). A rest too
    small to test (under ``min_n`` in a window) cannot show a difference: the
    parent, the broader name of nearly the same respondents, stays.
    """
    own, kid = masks.of(parent), masks.of(child)
    remainder = masks.sums(own.without(kid | root_mask))
    if max(remainder[0]["n"], remainder[1]["n"]) < 1:
        return True
    if min(remainder[0]["n"], remainder[1]["n"]) < min_n:
        return False
    e_rest, se_rest = excess_and_error(
        metric, _shift_of(metric, remainder), _shift_of(metric, masks.complement(own | root_mask))
    )
    e_child, se_child = excess_and_error(
        metric, _shift_of(metric, masks.sums(kid.without(root_mask))), _shift_of(metric, masks.complement(kid | root_mask))
    )
    z = (e_child[0] - e_rest[0]) / np.hypot(se_child[0], se_rest[0])
    return bool(np.isfinite(z) and z >= threshold)


def _shift_of(metric: Metric, sums: tuple[pd.Series, pd.Series]) -> Shift:
    """One set of respondents' value before and after, from its window sums."""
    return shift(metric, pd.DataFrame([sums[0]]), pd.DataFrame([sums[1]]))


def _still_stands_out(
    masks: _Masks, metric: Metric, segment: Segment, root_mask: Mask, threshold: float, level: float, floor: float
) -> bool:
    """Does ``segment`` still change more than the rest once the roots are taken out of both?

    "More" means significantly, by half the metric's minimum effect, and by at
    least ``floor``.
    """
    own = masks.of(segment)
    remaining = masks.sums(own.without(root_mask))
    if min(remaining[0]["n"], remaining[1]["n"]) < 1:
        return False
    extra, z = excess(metric, _shift_of(metric, remaining), _shift_of(metric, masks.complement(own | root_mask)))
    return bool(
        np.isfinite(z[0]) and z[0] >= threshold and extra[0] >= floor and _big_enough(metric, float(extra[0]), level)
    )


def _confirmed(
    masks: _Masks, incident: Incident, member: DetectedChange, options: AttributionOptions, untestable: bool = True
) -> bool:
    """Does a member still stand out on the incident's windows (``untestable``: the
    answer for one too small to test)?"""
    before, after = masks.sums(masks.of(member.segment))
    if min(before["n"], after["n"]) < options.min_segment:
        return untestable
    level = incident.overall.before.value if incident.overall is not None else np.nan
    return _still_stands_out(
        masks, incident.metric, member.segment, masks.nobody(), incident.threshold, level, incident.floor
    ) and _worsened(masks, incident.metric, member.segment, level, options.confidence)


def _root_changes(
    table: ResponseTable, masks: _Masks, incident: Incident, options: AttributionOptions
) -> list[DetectedChange]:
    """The changes that stand for the incident's roots, created where none was detected.

    A mixed incident has the generic root (the least specific change, usually
    everyone's) first, then one root per localized part: a localized dip that
    starts with the go-live dip is a cause of its own, with its own factors,
    suggestions and recovery.
    """
    if incident.scope is FindingScope.GENERIC or incident.scope is None:
        return [incident.anchor]
    by_segment = {member.segment: member for member in incident.members}
    roots = [incident.anchor] if incident.scope is FindingScope.MIXED else []
    for effect in incident.roots:
        member = by_segment.get(effect.segment) or _created_change(table, masks, incident, effect.segment, options)
        # A located segment whose own change is too small to be a finding is named
        # by the root finding, never a root of its own; unless it is a Happiness
        # root's segment, under which it folds.
        if (member.change.finding or effect.segment in incident.adopted) and member not in roots:
            roots.append(member)
    return roots or [incident.anchor]


def _rows_of(table: ResponseTable, changes: list[DetectedChange]) -> np.ndarray:
    rows = np.zeros(len(table), dtype=bool)
    for change in changes:
        rows |= table.of(change.segment)
    return rows


def _recovered(
    table: ResponseTable, incident: Incident, rows: np.ndarray, segment: Segment, options: AttributionOptions
) -> pd.Timestamp | None:
    """When the respondents of ``rows`` (those of ``segment``, or of everyone outside
    the localized roots) came back within their baseline (``transitions.recovery_period``),
    judged up to the next change of the metric in ``segment`` or a segment holding it."""
    size = table.last_period - table.first_period + 1
    offsets = table.periods[rows] - table.first_period
    series = np.column_stack([
        np.bincount(offsets, weights=table.stats[rows, j], minlength=size) for j in range(table.stats.shape[1])
    ])
    until = min((_period(table, d.change.change_date) for d in incident.later
                 if set(d.segment.items) <= set(segment.items)), default=None)
    day = recovery_period(incident.metric, table, series, incident.before, incident.after.first, options.confidence,
                          until=until)
    return None if day is None else pd.Timestamp(day)


def _with_recovery(change: DetectedChange, recovered: pd.Timestamp | None) -> DetectedChange:
    return replace(change, change=replace(change.change, recovered_at=recovered))


def _created_change(
    table: ResponseTable, masks: _Masks, incident: Incident, segment: Segment, options: AttributionOptions
) -> DetectedChange:
    """A change for a located root segment the detector had not flagged by itself.

    Its figures are the segment's own over the incident's windows, so the root
    finding reads like any other ("Happiness in Finland x SAP fell from ... to ...").
    """
    metric = incident.metric
    delta = metric.compare(*masks.sums(masks.of(segment)), confidence=options.confidence)
    change = Change.of(
        metric,
        delta,
        index=_onset(table, incident) - table.first_period,
        change_date=pd.Timestamp(table.period_start(_onset(table, incident))),
        recovered_at=_recovered(table, incident, table.of(segment), segment, options),
        finding=is_finding(delta, metric, min_n=options.min_n),
        before_from=pd.Timestamp(table.period_start(incident.before.first)),
        after_to=pd.Timestamp(table.period_start((incident.search_after or incident.after).last)),
    )
    return DetectedChange(metric.name, segment, change)


def _root_for(masks: _Masks, incident: Incident, member: DetectedChange, roots: list[DetectedChange]) -> DetectedChange:
    """The root a non-root member echoes: the one whose respondents it shares most.

    In a mixed incident a member inside a localized root echoes it; any other
    member echoes the generic root.
    """
    if len(roots) == 1:
        return roots[0]
    if incident.scope is FindingScope.MIXED:
        return next((r for r in roots[1:] if _inside(masks, member.segment, r.segment)), roots[0])
    own = masks.of(member.segment)
    overlaps = [own.overlap_after(masks.of(root.segment)) for root in roots]
    return roots[int(np.argmax(overlaps))]


# --- what a root finding says -------------------------------------------------


def _details(
    table: ResponseTable,
    masks: _Masks,
    incident: Incident,
    root: DetectedChange,
    options: AttributionOptions,
    transition_of: TransitionOf | None,
    polarity: Mapping[str, Polarity] | None = None,
) -> dict[str, Any]:
    metric = incident.metric
    polarity = polarity or {}
    overall = incident.overall
    assert overall is not None
    mask = masks.of(root.segment)
    before, after = masks.sums(mask)
    contribution = _contribution(metric, (before, after), masks.totals)
    # The incident's windows can be shorter than the finding's own: below the
    # anonymity threshold there, nothing about the segment is shown from them.
    shown = min(before["n"], after["n"]) >= options.anonymity_min_responses
    factors = [name.removeprefix("f:") for name in table.stat_names if name.startswith("f:")]
    generic_root = incident.scope is not FindingScope.MIXED or root is incident.members[0]
    # The generic part of a mixed incident names the factors of the respondents
    # outside its localized roots: theirs are the localized roots' own.
    cited_mask = mask
    if incident.scope is FindingScope.MIXED and generic_root:
        cited_mask = mask.without(masks.of_any(effect.segment for effect in incident.roots))
    cited = masks.sums(cited_mask)
    negative = [f for f in factors if f not in polarity or polarity[f].worse_when_rising]
    positive = [f for f in factors if f in polarity and polarity[f].polarity is FactorPolarity.POSITIVE]
    # A named segment's factors are its own: each must also have moved more than
    # among everyone outside it, or a rise everyone shares (the generic part of
    # the same weeks) would be listed as the local cause.
    rest = masks.complement(cited_mask) if root.segment.items else None
    rose = rising_factors(*cited, negative, alpha=options.alpha, confidence=options.confidence,
                          rest=rest) if shown else []
    # A positive factor cited less ("Knowledgeable agent") is bad news of its own kind.
    fell = rising_factors(cited[1], cited[0], positive, alpha=options.alpha, confidence=options.confidence,
                          rest=None if rest is None else (rest[1], rest[0])) if shown else []
    sign = worse_sign(metric)
    segment = root.segment.as_dict()
    scope = incident.scope if generic_root else FindingScope.LOCALIZED
    own = [effect for effect in incident.roots if generic_root or effect.segment == root.segment]
    details: dict[str, Any] = {
        "scope": None if scope is None else str(scope),
        "explains": _share(sign * contribution, sign * overall.delta),
        "overall_effect": _r(contribution),
        "segments": _named_segments(incident, own, sign, overall.delta),
        "aliases": [{"segment": alias.as_dict(), "windows": when} for alias, when in _equivalents(masks, root.segment)],
        "co_roots": [effect.segment.as_dict() for effect in incident.roots if effect.segment != root.segment]
        + ([{}] if not generic_root else []),
        "factors": [{**item.as_dict(), **_unhappy_split(*cited, masks.cited_by_unhappy(cited_mask, item.factor)),
                     "polarity": str(polarity[item.factor].polarity) if item.factor in polarity else None}
                    for item in rose],
        "positive_factors_fell": [
            {"kind": "positive_factor_fell", "factor": item.factor, "before_share": round(item.after_share, 2),
             "after_share": round(item.before_share, 2), "delta": round(-item.delta, 2),
             "ci_low": round(-item.ci_high, 2), "ci_high": round(-item.ci_low, 2),
             "p_value": float(f"{item.p_value:.3g}"), "polarity": polarity[item.factor].as_dict(),
             **({} if item.rest_delta is None else {"rest_delta": round(-item.rest_delta, 2),
                                                    "p_beyond_rest": float(f"{item.p_beyond_rest:.3g}")})}
            for item in fell
        ],
        "suggestions": suggestions_for([item.factor for item in rose], segment, options.suggestions),
        "impact": round(sign * float(after["n"]) * (metric.estimate(after).value - metric.estimate(before).value), 1),
        "mix_rate": _mix_rate(masks, metric, root.segment) if shown else None,
        "did": None,
        "tree": _tree(masks, metric, mask, root.segment, options) if shown else None,
        "windows": {
            "before": [table.period_start(incident.before.first).isoformat(), table.period_start(incident.before.last).isoformat()],
            "after": [table.period_start(incident.after.first).isoformat(), table.period_start(incident.after.last).isoformat()],
        },
        "overall": {"before": _r(overall.before.value), "after": _r(overall.after.value), "delta": _r(overall.delta),
                    "ci_low": _r(overall.ci_low), "ci_high": _r(overall.ci_high),
                    "n_before": overall.n_before, "n_after": overall.n_after},
    }
    if scope is FindingScope.MIXED and incident.rest is not None:
        details["generic_part"] = {"delta": _r(incident.rest.delta), "ci_low": _r(incident.rest.ci_low),
                                   "ci_high": _r(incident.rest.ci_high), "n_before": incident.rest.n_before,
                                   "n_after": incident.rest.n_after}
    transition = transition_of(root) if transition_of is not None else None
    if transition is not None and transition[1]:
        inside = masks.in_scope(transition[1])
        result = diff_in_diff(metric, masks.sums(inside & mask), masks.complement(inside), confidence=options.confidence)
        details["did"] = _did_dict(result, transition[0])
    return details


def _unhappy_split(before: pd.Series, after: pd.Series, cited_by_unhappy: tuple[float, float]) -> dict[str, Any]:
    """A negative factor's rise among the respondents who could cite it (0-6), and
    its rise among everyone split into "more unhappy respondents" (mix) and "the
    unhappy cite it more" (rate); the two parts and the rest (citations from other
    ratings) add up to the change of its share among everyone, in points."""
    shares, rates = [], []
    for sums, cited in zip((before, after), cited_by_unhappy, strict=True):
        n, unhappy = float(sums["n"]), float(sums["detractors"])
        shares.append(unhappy / n if n else np.nan)
        rates.append(cited / unhappy if unhappy else np.nan)
    mix = (shares[1] - shares[0]) * 0.5 * (rates[0] + rates[1]) * 100.0
    rate = 0.5 * (shares[0] + shares[1]) * (rates[1] - rates[0]) * 100.0
    return {
        "among_unhappy": {"before": _r(100.0 * rates[0]), "after": _r(100.0 * rates[1]),
                          "delta": _r(100.0 * (rates[1] - rates[0]))},
        "more_unhappy": _r(mix),
        "unhappy_cite_more": _r(rate),
    }


def _r(value: float) -> float | None:
    return round(float(value), 2) if np.isfinite(value) else None


def _share(part: float, whole: float) -> float | None:
    """``part / whole`` as a share of a worsening, 0..1; None when the whole did not worsen."""
    if not np.isfinite(whole) or whole <= 0 or not np.isfinite(part):
        return None
    return round(float(min(max(part / whole, 0.0), 1.0)), 3)


def _contribution(
    metric: Metric, inside: tuple[pd.Series, pd.Series], totals: tuple[pd.Series, pd.Series]
) -> float:
    """The rate + mix part of everyone's change that a set of respondents carries."""
    frames = [pd.DataFrame([inside[i], totals[i] - inside[i]]) for i in range(2)]
    return float(shift_share(shift(metric, *frames)).contribution[0])


def _named_segments(
    incident: Incident, effects: list[SegmentEffect], sign: float, overall_delta: float
) -> list[dict[str, Any]]:
    """The segments carrying this root's dip, with the share of the overall change each explains.

    A segment that did not worsen carries no dip and is never named. In a mixed
    incident a segment's share is the part beyond the generic change (its weight
    times its excess over the rest), so generic and localized shares add up to
    the whole.
    """
    rest_delta = incident.rest.delta if incident.rest is not None else 0.0
    named = []
    for effect in effects:
        if not sign * effect.delta > 0:
            continue
        part = effect.contribution
        if incident.scope is FindingScope.MIXED:
            part = effect.weight * (effect.delta - rest_delta)
        named.append({
            "segment": effect.segment.as_dict(),
            "share": _share(sign * part, sign * overall_delta),
            "before": _r(effect.before),
            "after": _r(effect.after),
            "delta": _r(effect.delta),
            "excess": _r(effect.excess),
            "n_before": effect.n_before,
            "n_after": effect.n_after,
        })
    return named


def _mix_rate(masks: _Masks, metric: Metric, segment: Segment) -> dict[str, Any] | None:
    """Rate versus mix inside the root, split by the dimension where mix is largest.

    Only dimensions whose segments exist on both sides qualify: when the MSP's
    assignment groups replace the in-house ones, every change would look like
    mix, which says nothing about why the metric moved.
    """
    best = None
    for name in masks.table.labels:
        if name in segment.as_dict():
            continue
        _, before, after = masks.partition(segment, name)
        n_b, n_a = before["n"].to_numpy(), after["n"].to_numpy()
        one_sided = n_b[n_a == 0].sum() + n_a[n_b == 0].sum()
        if one_sided > STABLE_PARTITION * (n_b.sum() + n_a.sum()):
            continue
        parts = shift_share(shift(metric, before, after))
        rate, mix = float(parts.rate.sum()), float(parts.mix.sum())
        if best is None or abs(mix) > abs(best["mix"]):
            best = {"rate": round(rate, 2), "mix": round(mix, 2), "by": name}
    return best


def _tree(
    masks: _Masks, metric: Metric, mask: Mask, segment: Segment, options: AttributionOptions
) -> dict[str, Any]:
    """The root and, per other dimension, the segments inside it that carry its change.

    Segments below the anonymity threshold in either window are never named:
    their responses fold into one "other" node per dimension.
    """
    before, after = masks.sums(mask)
    node_delta = metric.estimate(after).value - metric.estimate(before).value
    sign = worse_sign(metric)
    children = []
    for name in masks.table.labels:
        if name in segment.as_dict():
            continue
        labels, b, a = masks.partition(segment, name)
        values = shift(metric, b, a)
        parts = shift_share(values)
        shown = np.minimum(b["n"].to_numpy(), a["n"].to_numpy()) >= options.anonymity_min_responses
        # Impact ranks: volume x deviation, so a big segment slightly worse comes
        # before a tiny one much worse.
        impact = np.nan_to_num(sign * a["n"].to_numpy() * values.delta, nan=-np.inf)
        order = np.argsort(-impact, kind="stable")
        named = [i for i in order if shown[i]][:TREE_CHILDREN]
        for i in named:
            child = Segment.of({**segment.as_dict(), name: labels[i]})
            children.append({
                "segment": child.as_dict(),
                "before": _r(values.value_before[i]),
                "after": _r(values.value_after[i]),
                "delta": _r(values.delta[i]),
                "share": _share(sign * parts.contribution[i], sign * node_delta),
                "impact": _r(impact[i]),
                "n_before": int(b["n"].iloc[i]),
                "n_after": int(a["n"].iloc[i]),
            })
        hidden = [i for i in range(len(labels)) if i not in named]
        if hidden and (b["n"].iloc[hidden].sum() + a["n"].iloc[hidden].sum()) > 0:
            children.append({
                "segment": {**segment.as_dict(), name: "other"},
                "share": _share(sign * float(parts.contribution[hidden].sum()), sign * node_delta),
                "n_before": int(b["n"].iloc[hidden].sum()),
                "n_after": int(a["n"].iloc[hidden].sum()),
            })
    return {
        "segment": segment.as_dict(),
        "before": _r(metric.estimate(before).value),
        "after": _r(metric.estimate(after).value),
        "delta": _r(node_delta),
        "n_before": int(before["n"]),
        "n_after": int(after["n"]),
        "children": children,
    }


def _did_dict(result: DiffInDiff | None, transition: str) -> dict[str, Any] | None:
    if result is None:
        return None
    return {"transition": transition, "control": "respondents outside the transition's scope", **result.as_dict()}
