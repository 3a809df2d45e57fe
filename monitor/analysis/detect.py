"""One analysis run: aggregate, screen, detect, compare transitions.

Data flows one way: the responses of the complete periods up to ``as_of`` are
aggregated once per grouping (everyone, each dimension, each pair), every metric
series of every segment large enough is screened in one vectorised pass, the
candidates get the calibrated change-point detector, and the changes that matter
become findings. Identities of findings are kept stable across weekly runs by
``monitor.analysis.findings``; this module is pure computation over a ``ResponseTable``.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import multiprocessing
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from enum import StrEnum

import numpy as np
import pandas as pd

from detectors import (
    Change,
    ChangeShape,
    ChangeSpan,
    Direction,
    Metric,
    PeriodValues,
    default_penalty,
    describe_changes,
    detect_changes,
    is_finding,
    metric_for,
    noise_scale,
    segment_survey_series,
)
from detectors import Polarity as MetricPolarity
from detectors.attribution import change_z, searched_critical_z
from detectors.polarity import FactorPolarity, Polarity, factor_polarities
from detectors.screening import window_scan
from monitor.analysis.aggregate import (
    ResponseTable,
    Segment,
    as_frame,
    grouping_cube,
    groupings,
)

CORE_METRICS = ("happiness", "lost_time")
OVERALL_ONLY_METRICS = ("volume",)  # a feed-health signal, meaningless per segment
# Volume falls every Christmas and summer for two or three weeks: only a level held
# for at least four periods is a change of the feed, not the calendar.
MIN_SIZE = {"volume": 4, "resolved_volume": 4}
# ...and a feed problem is a loss of half the responses; a 40% summer dip is not one.
MIN_EFFECT = {"volume": 0.5, "resolved_volume": 0.5}
MIN_JOBS_PER_WORKER = 20  # below this a process pool costs more than it saves


# A known date (go-live, stored finding) and a change the search found this many
# periods away are the same change: the search's date wanders by a week or two as
# weeks are added, the known date does not.
KNOWN_DATE_PERIODS = {"event": 1, "finding": 3, "companion": 1}
# The metric tested again where the others moved (see ``_corroborations``), and how
# near its own change must be to a companion's to be the same one (beyond the three
# weeks within which attribution makes changes one incident).
CORROBORATED = "happiness"
CORROBORATION_WEEKS = 4
# The search's date replaces a stored finding's (or a go-live's) only when a
# split there beats a split at the known date by this much (chi-square units,
# noise-scaled): moving among 7 nearby dates by chance gains ~5 at the 95th
# percentile, so 8 is "the evidence moved it", not noise.
DATE_EVIDENCE = 8.0
# A stored open finding stays a finding while its date still shows a clear worsening
# of at least this share of the minimum effect: hysteresis, so a dip near the
# threshold is not announced, dropped and announced again week after week.
KEEP_EFFECT_SHARE = 0.5
# Recovery must be shown by a stretch with at least this share of the usual weekly
# volume (the median week with responses before the change): a holiday week with a
# fifth of the responses cannot declare it.
RECOVERY_MIN_VOLUME = 0.5
RECOVERY_MIN_PERIODS = 2


class FoundBy(StrEnum):
    """How a change came to be reported."""

    SEARCH = "search"  # the change-point search found it (its date may be held at a known one)
    KNOWN_DATE = "known_date"  # tested at a known date (a go-live) without search
    KEPT = "kept"  # a stored finding re-tested at its own date (hysteresis), not found by search this week
    CORROBORATED = "corroborated"  # tested at the date lost time or a factor of the same segment changed


# Changes tested at a date given to them rather than searched for.
TESTED_AT_A_DATE = (FoundBy.KNOWN_DATE, FoundBy.CORROBORATED)


@dataclass(frozen=True)
class KnownDate:
    """A date tested directly as a change point, without searching for it.

    A transition's go-live (``kind="event"``): every metric but volume of each of
    ``segments`` (everyone, the transition's scope) is tested at that date, with
    the significance level divided by the number of series tested, so a collapse
    is found with one complete week before it. A stored open finding's date
    (``kind="finding"``, one metric, one segment): its date holds unless the data
    moves it decisively, and it stays a finding on a lower bar (hysteresis).
    """

    date: dt.date
    name: str  # the transition's name or the finding's id
    kind: str = "event"  # "event" or "finding"
    segments: tuple[Segment, ...] = (Segment(),)
    metrics: tuple[str, ...] | None = None  # None: every metric but the overall-only ones

    def concerns(self, metric: str) -> bool:
        if self.metrics is not None:
            return metric in self.metrics
        return metric not in OVERALL_ONLY_METRICS


@dataclass(frozen=True)
class AnalysisOptions:
    min_n: int = 30  # responses each side of a change, for it to be a finding
    anonymity_min_responses: int = 5
    pairs: bool = True
    confidence: float = 0.95
    workers: int = os.cpu_count() or 1  # processes for the detector
    factor_polarity: Mapping[str, str] = field(default_factory=dict)  # configured: positive|negative|neutral


@dataclass(frozen=True)
class DetectedChange:
    """A finding-worthy change in one metric of one segment."""

    metric: str
    segment: Segment
    change: Change
    found_by: FoundBy = FoundBy.SEARCH
    known: str | None = None  # the known date's name (transition, finding id) the change sits at

    @property
    def key(self) -> tuple[str, str, dt.date]:
        """Identifies a change within one run (findings get their lasting ids from it)."""
        return (self.metric, self.segment.key(), self.change.change_date.date())


@dataclass
class AnalysisResult:
    changes: list[DetectedChange] = field(default_factory=list)
    series_screened: int = 0
    series_detected: int = 0


def metric_names(table: ResponseTable) -> list[str]:
    factors = [name.removeprefix("f:") for name in table.stat_names if name.startswith("f:")]
    return [*CORE_METRICS, *OVERALL_ONLY_METRICS, *(f"factor:{name}" for name in factors)]


def polarities(table: ResponseTable, configured: Mapping[str, str] | None = None,
               confidence: float = 0.95) -> dict[str, Polarity]:
    """Each factor's sign: configured, else read from the ratings of those citing it."""
    names = list(table.stat_names)
    promoters = table.stats[:, names.index("promoters")]
    detractors = table.stats[:, names.index("detractors")]
    by_promoters, by_detractors = {}, {}
    for j, name in enumerate(names):
        if name.startswith("f:"):
            by_promoters[name[2:]] = float(table.stats[:, j] @ promoters)
            by_detractors[name[2:]] = float(table.stats[:, j] @ detractors)
    return factor_polarities(by_promoters, by_detractors, configured or {}, confidence=confidence)


def worse_side(name: str, polarity: Mapping[str, Polarity]) -> MetricPolarity | None:
    """The polarity hook: a positive factor is worse cited less, so its fall is what
    detection looks for (and its rise is an improvement, never a finding).
    None: the metric's own (a negative, undecided or neutral factor is worse cited more;
    attribution drops a neutral factor's changes)."""
    if not name.startswith("factor:"):
        return None
    known = polarity.get(name.removeprefix("factor:"))
    return MetricPolarity.HIGHER_IS_BETTER if known is not None and known.polarity is FactorPolarity.POSITIVE else None


def _per_period(metric: Metric, cube: np.ndarray, columns: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per-period values and variances of every segment at once (rows x periods)."""
    segments, periods, _ = cube.shape
    # An explicit width: a dimension only tickets carry has no segment among the responses.
    flat = pd.DataFrame(cube.reshape(segments * periods, len(columns)), columns=list(columns))
    values, variances, _ = metric.per_period(flat)
    return values.reshape(segments, periods), variances.reshape(segments, periods)


def family_penalty(n_points: int, family_size: int) -> float:
    """The calibrated penalty, raised for testing ``family_size`` series at once.

    The default penalty keeps false alarms near 1 per 100 series-years for one
    series; a grouping with K segments tests K series. For a chi-square statistic
    P(X > c) falls by about exp(-c/2), so adding 2 ln K to the penalty keeps the
    rate near 1 per 100 years for the whole family: pairs of small segments cannot
    produce a false finding every week.
    """
    return default_penalty(n_points) + 2.0 * math.log(max(family_size, 1))


def _candidates(
    metric: Metric, values: np.ndarray, variances: np.ndarray, eligible: np.ndarray, score_min: float
) -> np.ndarray:
    """Series with a notable stretch of at least 80% of the metric's minimum effect:
    only those are worth the full detector (which needs the full effect)."""
    threshold: np.ndarray | float = 0.8 * metric.min_effect
    if metric.relative_effect:
        finite = np.isfinite(values)
        count = finite.sum(axis=1)
        level = np.where(finite, values, 0.0).sum(axis=1) / np.maximum(count, 1)
        threshold = np.where(count > 0, 0.8 * metric.min_effect * np.abs(level), np.inf)
    screen = window_scan(values, variances, min_effect=threshold)
    return np.flatnonzero((screen.score >= score_min) & eligible)


def find_changes(
    table: ResponseTable, options: AnalysisOptions, known: Sequence[KnownDate] = ()
) -> AnalysisResult:
    """Every finding-worthy change, overall and per segment.

    Each segment is screened on its contrast with its parents (per period: a
    single-dimension segment minus everyone; a pair minus each of its two
    single-dimension parents, and it must stand out from both). A change everyone
    shares is then found once, overall, and a pair that merely repeats its parent
    is not sent through Pelt again. The detector itself runs on the segment's own
    series, so its figures are the segment's real before and after.

    ``known`` dates (go-lives, stored findings' dates) are tested directly on
    their series, whether or not the screen picked them (see :class:`KnownDate`);
    so are, in a second round, the dates at which lost time or a factor stepped
    worse where Happiness showed nothing (see ``_corroborations``).
    """
    result = AnalysisResult()
    names = metric_names(table)
    dimensions = tuple(table.labels)
    detector = _Detector(options)
    parents: dict[Segment, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    dates = _known_by_series(known, names, options.confidence)
    signs = polarities(table, options.factor_polarity, options.confidence) if len(table) else {}
    sides = {name: worse_side(name, signs) for name in names}
    # Where each segment's Happiness series is, for the second round: (cube, row, penalty, reference).
    headline_series: dict[Segment, tuple[np.ndarray, int, float, PeriodValues | None]] = {}
    for by in groupings(dimensions, pairs=options.pairs):
        segments, cube = grouping_cube(table, by)
        totals = cube[:, :, 0].sum(axis=1)
        # A change needs min_n responses on each side; a segment shown at all
        # needs the anonymity threshold in every window it is shown for.
        eligible = totals >= max(2 * options.min_n, options.anonymity_min_responses)
        for name in names:
            if by and name in OVERALL_ONLY_METRICS:
                continue
            metric = metric_for(name, polarity=sides.get(name))
            values, variances = _per_period(metric, cube, table.stat_names)
            if len(by) < 2:
                for row, segment in enumerate(segments):
                    parents.setdefault(segment, {})[name] = (values[row], variances[row])
            family = int(eligible.sum())
            result.series_screened += family
            penalty = family_penalty(values.shape[1], family)
            # Looser than the detector by one standard error: it drops work, not findings.
            score_min = (math.sqrt(penalty) - 1.0) ** 2
            # First against everyone, for all segments; then, for pairs, against
            # each single-dimension parent, only for the few that passed.
            if by:
                contrast = _contrast(values, variances, [parents[Segment()][name]] * len(segments))
                rows = _candidates(metric, *contrast, eligible, score_min)
            else:
                # Everyone's series are a handful: the detector sees each of them.
                rows = np.flatnonzero(eligible)
            for parent_of in _parent_segments(segments, by) if len(by) == 2 else []:
                if not len(rows):
                    break
                contrast = _contrast(values[rows], variances[rows], [parents[parent_of[r]][name] for r in rows])
                rows = rows[_candidates(metric, *contrast, eligible[rows], score_min)]
            everyone = PeriodValues(*parents[Segment()][name], np.zeros(values.shape[1])) if by else None
            submit_series(
                detector, name, segments, lambda row: as_frame(table, cube[row]), penalty, everyone, dates,
                screened=set(rows.tolist()), polarity=sides.get(name),
            )
            if name == CORROBORATED:
                headline_series.update((segments[row], (cube, row, penalty, everyone))
                                       for row in np.flatnonzero(eligible).tolist())
    collect_changes(detector, result)
    # Second round: Happiness at the dates its companion metrics located.
    second = _Detector(options)
    # A segment's companion must clear the bar of a change whose series and date were
    # both searched, as attribution asks of a change standing alone: its date is
    # evidence only if the change is.
    bar = searched_critical_z(result.series_screened, table.last_period - table.first_period + 1 if len(table) else 1,
                              1.0 - options.confidence)
    for segment, tests in _corroborations(result.changes, options.confidence, bar).items():
        if segment in headline_series:
            cube, row, penalty, reference = headline_series[segment]
            second.submit(_Job(CORROBORATED, segment, as_frame(table, cube[row]), penalty, reference, tests,
                               report_search=False))
    collect_changes(second, result)
    return result


def companion_step(item: DetectedChange, confidence: float, bar: float) -> bool:
    """Can ``item`` date a Happiness change of its segment: a step of lost time or a
    factor share getting worse, clear of ``bar`` in a segment (everyone's: its plain
    test)? Steps only: a step tested at the first week of a companion's slide would
    read the slide's later weeks as a level reached at once."""
    change = item.change
    if (item.metric in (CORROBORATED, *OVERALL_ONLY_METRICS) or change.direction is not Direction.WORSE
            or change.shape is not ChangeShape.STEP):
        return False
    return not item.segment.items or change_z(change.delta, change.ci_low, change.ci_high, change.p_value,
                                              confidence) >= bar


def _corroborations(
    changes: Sequence[DetectedChange], confidence: float, bar: float
) -> dict[Segment, tuple[_Known, ...]]:
    """Dates at which lost time or a factor worsened in a segment whose Happiness the
    search did not find changing there, each with the stretch it lasted.

    One cause moves every metric of the same respondents, and the sharpest of them
    (a factor only unhappy respondents are offered, lost time) can locate it where
    Happiness, searched over every date and segment, could not: a 20-point dip of
    five weeks in a pair holding a tenth of the answers. Each date is one test of
    Happiness, Bonferroni over all of them, and the change must still be a finding.
    A segment's companion must itself reach z ``bar`` (everyone's: its plain test).
    """
    near = pd.Timedelta(weeks=CORROBORATION_WEEKS)
    # Where Happiness of the segment or of a segment holding it (everyone included)
    # already changed: that change is the cause's, and attribution places it (a
    # slide: all along it; a step inside a trend would be the trend read as a step).
    found = [(c.segment.items, c.change.change_date - near, (c.change.end_date or c.change.change_date) + near)
             for c in changes if c.metric == CORROBORATED]
    tests: dict[tuple[Segment, pd.Timestamp], tuple[str, pd.Timestamp | None]] = {}
    for item in changes:
        change = item.change
        if not companion_step(item, confidence, bar):
            continue
        if any(set(items) <= set(item.segment.items) and first <= change.change_date <= last
               for items, first, last in found):
            continue
        until = None if change.after_to is None else change.after_to + pd.Timedelta(days=1)
        tests.setdefault((item.segment, change.change_date), (item.metric, until))
    alpha = (1.0 - confidence) / max(len(tests), 1)
    out: dict[Segment, list[_Known]] = {}
    for (segment, when), (companion, until) in sorted(tests.items(), key=lambda kv: kv[0][1]):
        out.setdefault(segment, []).append(_Known(when, companion, "companion", alpha, until))
    return {segment: tuple(known) for segment, known in out.items()}


def submit_series(
    detector: _Detector,
    name: str,
    segments: Sequence[Segment],
    frame_of: Callable[[int], pd.DataFrame],
    penalty: float,
    reference: PeriodValues | None,
    dates: Mapping[tuple[str, Segment], tuple[KnownDate, ...]],
    *,
    screened: set[int],
    polarity: MetricPolarity | None = None,
    eligible: np.ndarray | None = None,
) -> None:
    """Send one metric's screened series, and those with a known date to test, to the detector."""
    with_dates = {
        row for row, segment in enumerate(segments)
        if (name, segment) in dates and (eligible is None or eligible[row])
    }
    for row in sorted(screened | with_dates):
        segment = segments[row]
        detector.submit(
            _Job(
                name,
                segment,
                frame_of(row),
                penalty,
                reference,
                dates.get((name, segment), ()),
                report_search=row in screened,
                polarity=polarity,
            )
        )


def collect_changes(detector: _Detector, result: AnalysisResult) -> None:
    """The detector's changes, as they come back from its workers."""
    for job, found in detector.results():
        result.series_detected += 1
        result.changes.extend(DetectedChange(job.metric, job.segment, *item) for item in found)


@dataclass(frozen=True)
class _Known:
    """One known date of one series, with the bar its change must clear."""

    when: pd.Timestamp
    name: str
    kind: str  # "event", "finding" or "companion" (another metric's change)
    alpha: float  # significance level of the test at this date
    until: pd.Timestamp | None = None  # the change is measured up to this period (exclusive), if known


def _known_by_series(
    known: Sequence[KnownDate], names: list[str], confidence: float
) -> dict[tuple[str, Segment], tuple[_Known, ...]]:
    """Each series' known dates. An event's level is shared (Bonferroni) by all the
    series it is tested on; a finding's own date is tested at the plain level."""
    out: dict[tuple[str, Segment], list[_Known]] = {}
    for item in known:
        metrics = [name for name in names if item.concerns(name)]
        family = max(len(metrics) * len(item.segments), 1) if item.kind == "event" else 1
        for name in metrics:
            for segment in item.segments:
                if segment.items and name in OVERALL_ONLY_METRICS:
                    continue
                out.setdefault((name, segment), []).append(
                    _Known(pd.Timestamp(item.date), item.name, item.kind, (1.0 - confidence) / family)
                )
    return {key: tuple(sorted(value, key=lambda k: k.when)) for key, value in out.items()}


@dataclass(frozen=True)
class _Job:
    """One series for the detector: small and picklable, for worker processes."""

    metric: str
    segment: Segment
    stats: pd.DataFrame
    penalty: float
    reference: PeriodValues | None
    known: tuple[_Known, ...] = ()
    report_search: bool = True  # False: the screen did not pick it; only known dates may report
    polarity: MetricPolarity | None = None  # a factor's worse side (see ``worse_side``)


_Found = tuple[Change, FoundBy, str | None]


def _detect(job: _Job, min_n: int, confidence: float) -> list[_Found]:
    """The series' finding-worthy changes: the search's, then its known dates'."""
    metric = metric_for(job.metric, polarity=job.polarity)
    min_effect = MIN_EFFECT.get(job.metric)
    min_size = MIN_SIZE.get(job.metric, 2)
    changes = detect_changes(
        metric,
        job.stats,
        penalty=job.penalty,
        min_size=min_size,
        min_effect=min_effect,
        min_n=min_n,
        confidence=confidence,
        reference=job.reference,
    )
    # A slide still going on at the last period must have lasted ``min_size`` periods
    # too: two holiday weeks at the end of the data are no decline of the feed yet.
    settled = [c for c in changes if not (c.ongoing and len(job.stats) - c.index < min_size)]
    found: list[_Found] = [(c, FoundBy.SEARCH, None) for c in settled if c.finding and job.report_search]
    if job.known and len(job.stats):
        series = _Series.of(metric, job.stats, job.reference, min_effect, min_n, confidence,
                            penalty=job.penalty, min_size=min_size)
        for known in job.known:
            found = series.at_known_date(known, changes, found)
    ends = {k.when: int(job.stats.index.searchsorted(k.until)) for k in job.known if k.until is not None}
    return [
        (replace(change, recovered_at=_recovery(metric, job.stats, change, changes, min_n, confidence,
                                                until=ends.get(change.change_date))), how, name)
        for change, how, name in found
    ]


def _span(change: Change, size: int) -> ChangeSpan:
    """The rows a reported change spans (see ``detectors.ChangeSpan``)."""
    if change.shape is ChangeShape.GRADUAL and change.end_index is not None:
        return ChangeSpan(change.index, size if change.ongoing else change.end_index + 1)
    return ChangeSpan(change.index, change.index)


@dataclass(frozen=True)
class _Series:
    """One series as the detector located its changes: values (minus the reference,
    if any) and chi-square weights at the detector's noise scale."""

    metric: Metric
    stats: pd.DataFrame
    values: np.ndarray
    weights: np.ndarray  # chi-square weights: inverse variance / sigma^2
    sigma: float
    min_effect: float | None
    min_n: int
    confidence: float

    @classmethod
    def of(
        cls,
        metric: Metric,
        stats: pd.DataFrame,
        reference: PeriodValues | None,
        min_effect: float | None,
        min_n: int,
        confidence: float,
        *,
        penalty: float,
        min_size: int,
    ) -> _Series:
        # As detectors.detect_changes does, so a known date and the search weigh alike.
        values, variances, _ = metric.per_period(stats)
        variances = np.fmax(variances, metric.pooled_variance(stats))
        if reference is not None:
            values = values - reference.values
            variances = variances + np.nan_to_num(reference.variances, nan=np.inf)
        weights = np.zeros(values.shape)
        usable = np.isfinite(values) & np.isfinite(variances) & (variances > 0)
        np.divide(1.0, variances, out=weights, where=usable)
        segmentation = segment_survey_series(np.where(usable, values, np.nan), np.where(usable, weights, np.nan),
                                             penalty=penalty, min_size=min_size)
        sigma = 1.0 if segmentation is None else segmentation.noise
        return cls(
            metric, stats, np.where(usable, values, 0.0), weights / sigma**2, sigma, min_effect, min_n, confidence
        )

    def at_known_date(self, known: _Known, changes: list[Change], found: list[_Found]) -> list[_Found]:
        """``found`` with the change at ``known``'s date settled.

        A change the search found within ``KNOWN_DATE_PERIODS`` of the date is
        that change: it is dated at the known date unless a split at its own date
        fits decisively better (``DATE_EVIDENCE``). Without one, the date is
        tested directly: an event's change must be a finding at the event's
        (Bonferroni) level; a stored finding's must still show at least
        ``KEEP_EFFECT_SHARE`` of the minimum effect, clearly.
        """
        size = len(self.stats)
        row = int(self.stats.index.searchsorted(known.when))  # first period starting on or after it
        if row <= 0 or row >= size or any(item[0].index == row for item in found):
            return found
        near = [c for c in changes if abs(c.index - row) <= KNOWN_DATE_PERIODS[known.kind]]
        nearest = min(near, key=lambda c: (abs(c.index - row), c.index), default=None)
        others = [c for c in changes if c is not nearest]
        held = next((k for k, item in enumerate(found) if item[0] is nearest), None)
        if held is not None and nearest is not None:
            how = found[held][1]
            if self._moved(nearest, row, others):
                found[held] = (nearest, how, found[held][2] or known.name)
                return found
            candidate = self._describe_at(row, others, nearest, self._row_of(known.until))
            if candidate is not None and (candidate.finding or self._kept(candidate, known)):
                found[held] = (replace(candidate, finding=True), how, known.name)
            return found
        candidate = self._describe_at(row, others, nearest, self._row_of(known.until))
        if candidate is None:
            return found
        if known.kind != "finding":
            passes = candidate.finding and candidate.p_value is not None and candidate.p_value <= known.alpha
            how = FoundBy.CORROBORATED if known.kind == "companion" else FoundBy.KNOWN_DATE
        else:
            passes = self._kept(candidate, known)
            how = FoundBy.KEPT
        if passes:
            found.append((replace(candidate, finding=True), how, known.name))
        return found

    def _kept(self, change: Change, known: _Known) -> bool:
        """The hysteresis bar of a stored finding: a clear worsening of a share of the minimum effect."""
        if known.kind != "finding":
            return False
        threshold = KEEP_EFFECT_SHARE * (self.metric.min_effect if self.min_effect is None else self.min_effect)
        clear = change.p_value is not None and change.p_value <= known.alpha
        return clear and is_finding(change, self.metric, min_effect=threshold, min_n=self.min_n)

    def _stretch(self, others: list[Change], first: int, last: int) -> tuple[int, int]:
        """Rows [lo, hi) between the other changes around rows first..last."""
        size = len(self.stats)
        lo = max((_span(c, size).end for c in others if _span(c, size).end <= first), default=0)
        hi = min((c.index for c in others if c.index > last), default=size)
        return lo, hi

    def _split_cost(self, lo: int, hi: int, at: int) -> float:
        """Chi-square residual of one level on [lo, at) and another on [at, hi)."""
        total = 0.0
        for a, b in ((lo, at), (at, hi)):
            x, w = self.values[a:b], self.weights[a:b]
            if w.sum() > 0:
                total += float(np.sum(w * (x - np.sum(w * x) / w.sum()) ** 2))
        return total

    def _moved(self, change: Change, row: int, others: list[Change]) -> bool:
        """Whether the data put the change decisively away from ``row``."""
        if change.index == row:
            return False
        lo, hi = self._stretch(others, min(row, change.index), max(row, change.index))
        if not lo < min(row, change.index) or not max(row, change.index) < hi:
            return True  # the known date leaves a side empty: the search's date stands
        return self._split_cost(lo, hi, row) - self._split_cost(lo, hi, change.index) > DATE_EVIDENCE

    def _design_effect(self, lo: int, row: int, hi: int) -> float:
        """Week-to-week variation beyond sampling around the two levels either side of ``row``.

        As ``detectors.test_known_date`` estimates it: each side's mean taken out
        first, so the change being tested does not pass for noise (the series'
        own noise estimate would, on a short series around a large step).
        """
        raw = self.weights * self.sigma**2
        centred = np.full(self.values.shape, np.nan)
        for a, b in ((lo, row), (row, hi)):
            w = raw[a:b]
            if w.sum() > 0:
                centred[a:b] = np.where(w > 0, self.values[a:b] - np.sum(w * self.values[a:b]) / w.sum(), np.nan)
        scale = noise_scale(centred[lo:hi], np.where(raw[lo:hi] > 0, raw[lo:hi], np.nan))
        return max(1.0, scale) ** 2

    def _row_of(self, when: pd.Timestamp | None) -> int | None:
        return None if when is None else int(self.stats.index.searchsorted(when))

    def _describe_at(self, row: int, others: list[Change], like: Change | None, until: int | None = None) -> Change | None:
        """The change at ``row`` described between the other changes (a slide stays one),
        and no further than ``until`` when it is known to have ended there."""
        size = len(self.stats)
        end = row
        if like is not None and like.shape is ChangeShape.GRADUAL:
            span = _span(like, size)
            end = span.end if span.end > row + 1 else row
        spans = [_span(c, size) for c in others]
        spans = [s for s in spans if s.end < row or s.start > end]
        lo, hi = self._stretch(others, row, end)
        if until is not None and end < until < hi:
            spans.append(ChangeSpan(until, until))
            hi = until
        spans = sorted([*spans, ChangeSpan(row, end)], key=lambda s: s.start)
        described = describe_changes(
            self.metric,
            self.stats,
            spans,
            design_effect=self._design_effect(lo, row, hi),
            min_effect=self.min_effect,
            min_n=self.min_n,
            confidence=self.confidence,
        )
        return next((c for c in described if c.index == row), None)


def _recovery(
    metric: Metric, stats: pd.DataFrame, change: Change, changes: list[Change], min_n: int, confidence: float,
    *, until: int | None = None,
) -> pd.Timestamp | None:
    """Start of the first later stretch that shows the metric back, with the responses to show it.

    The stretches are those between the series' later changes. One shows a
    recovery when it lasts ``RECOVERY_MIN_PERIODS``, has ``min_n`` responses and
    at least ``RECOVERY_MIN_VOLUME`` of the usual weekly volume (a holiday
    stretch with a fifth of the responses proves nothing), its interval overlaps
    the level before the change or its value is better than that level, and its
    interval excludes the level after the change.
    """
    if metric.direction(change.delta) is not Direction.WORSE:
        return change.recovered_at
    size = len(stats)
    counts = np.nan_to_num(np.asarray(metric.per_period(stats).n, dtype=float))
    first = int(stats.index.searchsorted(change.before_from)) if change.before_from is not None else 0
    before = counts[first : change.index]
    usual = float(np.median(before[before > 0])) if (before > 0).any() else 0.0
    # (first row of the stretch after a later change, the change's own first row); a
    # change known to have ended at ``until`` (its companion metric's end) is one too.
    bounds = [(_span(c, size).end, c.index) for c in changes if c.index > change.index]
    if until is not None and change.index < until < size:
        bounds.append((until, until))
    bounds.sort(key=lambda b: b[1])
    stretches = [(start, bounds[k + 1][1] if k + 1 < len(bounds) else size) for k, (start, _) in enumerate(bounds)]
    for start, end in stretches:
        if end - start < RECOVERY_MIN_PERIODS or counts[start:end].mean() < RECOVERY_MIN_VOLUME * usual:
            continue
        estimate = metric.estimate(stats.iloc[start:end].sum(), confidence=confidence)
        if estimate.n < min_n or not np.isfinite(estimate.ci_low):
            continue
        if metric.is_back(estimate, change.before) and not estimate.ci_low <= change.after.value <= estimate.ci_high:
            return stats.index[start]
    return None


class _Detector:
    """Runs detector jobs as they are planned, in worker processes once there are many.

    PELT with a Python cost is CPU-bound and holds the GIL, so processes, not
    threads. Jobs go to the workers while the parent goes on screening the next
    groupings, so screening and detection overlap. Workers are forked: they share
    the parent's memory and only the small jobs and their results travel; they
    run numpy/pandas/ruptures only, never Arrow or the database.
    """

    def __init__(self, options: AnalysisOptions) -> None:
        self._detect = functools.partial(_detect, min_n=options.min_n, confidence=options.confidence)
        self._workers = options.workers
        self._pool: ProcessPoolExecutor | None = None
        self._jobs: list[_Job] = []
        self._futures: list[Future[list[_Found]]] = []

    def submit(self, job: _Job) -> None:
        self._jobs.append(job)
        if self._pool is None and self._workers >= 2 and len(self._jobs) >= MIN_JOBS_PER_WORKER:
            context = multiprocessing.get_context("fork")
            self._pool = ProcessPoolExecutor(max_workers=self._workers, mp_context=context)
            self._futures = [self._pool.submit(self._detect, queued) for queued in self._jobs]
        elif self._pool is not None:
            self._futures.append(self._pool.submit(self._detect, job))

    def results(self) -> list[tuple[_Job, list[_Found]]]:
        """Every job with its changes, in submission order; shuts the workers down."""
        if self._pool is None:
            return [(job, self._detect(job)) for job in self._jobs]
        try:
            return [(job, future.result()) for job, future in zip(self._jobs, self._futures, strict=True)]
        finally:
            self._pool.shutdown()


def _contrast(
    values: np.ndarray, variances: np.ndarray, parents: list[tuple[np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray]:
    """Segment minus parent per period, with the variance of the difference."""
    base_values = np.stack([p[0] for p in parents]) if parents else values[:0]
    base_variances = np.stack([p[1] for p in parents]) if parents else variances[:0]
    return values - base_values, variances + base_variances


def _parent_segments(segments: list[Segment], by: tuple[str, ...]) -> list[list[Segment]]:
    """For each dimension of a pair, the single-dimension parent of every segment."""
    return [[Segment.of({name: seg.as_dict()[name]}) for seg in segments] for name in by]
