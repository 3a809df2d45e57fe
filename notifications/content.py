"""What a digest says, as frozen dataclasses that know nothing about any channel.

``notifications.compose`` fills them from the store; ``notifications.render`` turns
them into text and HTML; a Slack or Teams channel would read the same objects.
Numbers are kept as numbers and formatted by the templates' filters, so every
channel shows them alike.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from monitor.analysis.transitions import TransitionStatus
from notifications.channels.base import InlineImage


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float
    n: int


@dataclass(frozen=True)
class MetricHeadline:
    """One metric of a transition: baseline before go-live against the last weeks."""

    metric: str  # happiness, lost_time
    before: Interval | None  # None: too few responses to show (anonymity)
    now: Interval | None
    delta: Interval | None  # only when both sides are shown
    now_from: dt.date
    verdict: str  # "back within baseline", "recovering (expected by week 12)", ...
    on_track: bool


@dataclass(frozen=True)
class TransitionHeadline:
    name: str
    go_live: dt.date
    weeks_since_go_live: int
    slice_label: str  # "everyone" or "assignment group MSP-Europe-L1"
    status: TransitionStatus  # the web view's status for the same transition and slice
    metrics: tuple[MetricHeadline, ...]
    targets: tuple[str, ...]  # "happiness>=70@12w by 2025-11-24: not met (46.7)"
    on_track: bool
    chart: InlineImage | None


@dataclass(frozen=True)
class NamedSegment:
    label: str  # "country Finland x service SAP"
    share: float | None  # share of the change this segment explains, 0..1
    delta: float | None
    n_after: int | None


@dataclass(frozen=True)
class FactorShift:
    factor: str
    before_share: float  # percent of responses citing it
    after_share: float


@dataclass(frozen=True)
class NewFinding:
    """A root finding this subscription has not been told about: shown in full."""

    id: str
    metric: str
    where: str  # the segment, "everyone" if none
    scope: str | None  # generic, localized, mixed
    since: dt.date
    before: float
    after: float
    delta: Interval  # with ci and n_after; n_before in ``n_before``
    n_before: int
    segments: tuple[NamedSegment, ...]
    factors: tuple[FactorShift, ...]
    suggestions: tuple[str, ...]
    related: int  # echoes folded into this root
    expected: bool  # labelled "expected": shown, but as such
    link: str


@dataclass(frozen=True)
class FindingLine:
    """An ongoing, recovered or ended finding: one line."""

    id: str
    metric: str
    where: str
    since: dt.date
    delta: float
    weeks_open: int
    recovered_on: dt.date | None
    expected: bool
    link: str
    ended_on: dt.date | None = None  # its segment stopped answering (the finding is closed, not open)
    ended_reason: str | None = None


@dataclass(frozen=True)
class Reading:
    """A metric before and after a change, each with its 95% interval, and the change."""

    metric: str  # happiness, sla_met
    before: float
    before_ci: tuple[float, float] | None  # None when the finding carries no interval for it
    after: float
    after_ci: tuple[float, float] | None
    delta: Interval  # the change with its interval; ``n`` the responses or tickets after


@dataclass(frozen=True)
class Disconnect:
    """The service desk's figures and people's experience disagree (issue 12).

    ``sla_held``: Happiness fell while the SLA held ("SLA green, experience red");
    ``not_felt``: the SLA broke and Happiness did not move ("people did not mind").
    """

    kind: str
    id: str  # the finding
    where: str
    since: dt.date
    experience: Reading  # Happiness
    sla: Reading  # SLA met, percent
    link: str


@dataclass(frozen=True)
class DigestContent:
    subscription_id: int
    subscription: str
    period: str  # ISO week, e.g. 2026-W48
    as_of: dt.date | None  # the analysis reported; None before the first run
    transitions: tuple[TransitionHeadline, ...]
    new: tuple[NewFinding, ...]
    more_new: tuple[FindingLine, ...]  # new ones beyond the detailed few
    ongoing: tuple[FindingLine, ...]
    recovered: tuple[FindingLine, ...]
    health: tuple[str, ...]
    manage_link: str
    web_link: str
    # Finding ids per section: stored with the digest so the next one knows what
    # this subscription has already been told.
    finding_ids: dict[str, list[str]] = field(default_factory=dict)
    disconnects: tuple[Disconnect, ...] = ()  # open findings whose SLA and experience disagree
    # Findings this subscription heard of whose segment stopped answering: closed, said once.
    ended: tuple[FindingLine, ...] = ()

    @property
    def quiet(self) -> bool:
        """Nothing new to say: no new finding, no recovery, no ending, no data problem."""
        return not (self.new or self.more_new or self.recovered or self.ended or self.health)

    @property
    def images(self) -> tuple[InlineImage, ...]:
        return tuple(t.chart for t in self.transitions if t.chart is not None)
