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
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from detectors import (
    Change,
    Metric,
    PeriodValues,
    default_penalty,
    detect_changes,
    metric_for,
)
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
MIN_SIZE = {"volume": 4}
# ...and a feed problem is a loss of half the responses; a 40% summer dip is not one.
MIN_EFFECT = {"volume": 0.5}
MIN_JOBS_PER_WORKER = 20  # below this a process pool costs more than it saves


@dataclass(frozen=True)
class AnalysisOptions:
    min_n: int = 30  # responses each side of a change, for it to be a finding
    anonymity_min_responses: int = 5
    pairs: bool = True
    confidence: float = 0.95
    workers: int = os.cpu_count() or 1  # processes for the detector


@dataclass(frozen=True)
class DetectedChange:
    """A finding-worthy change in one metric of one segment."""

    metric: str
    segment: Segment
    change: Change

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


def _per_period(metric: Metric, cube: np.ndarray, columns: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per-period values and variances of every segment at once (rows x periods)."""
    segments, periods, _ = cube.shape
    flat = pd.DataFrame(cube.reshape(segments * periods, -1), columns=list(columns))
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


def find_changes(table: ResponseTable, options: AnalysisOptions) -> AnalysisResult:
    """Every finding-worthy change, overall and per segment.

    Each segment is screened on its contrast with its parents (per period: a
    single-dimension segment minus everyone; a pair minus each of its two
    single-dimension parents, and it must stand out from both). A change everyone
    shares is then found once, overall, and a pair that merely repeats its parent
    is not sent through Pelt again. The detector itself runs on the segment's own
    series, so its figures are the segment's real before and after.
    """
    result = AnalysisResult()
    names = metric_names(table)
    dimensions = tuple(table.labels)
    detector = _Detector(options)
    parents: dict[Segment, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for by in groupings(dimensions, pairs=options.pairs):
        segments, cube = grouping_cube(table, by)
        totals = cube[:, :, 0].sum(axis=1)
        # A change needs min_n responses on each side; a segment shown at all
        # needs the anonymity threshold in every window it is shown for.
        eligible = totals >= max(2 * options.min_n, options.anonymity_min_responses)
        for name in names:
            if by and name in OVERALL_ONLY_METRICS:
                continue
            metric = metric_for(name)
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
            for row in rows:
                detector.submit(_Job(name, segments[row], as_frame(table, cube[row]), penalty, everyone))
    for job, found in detector.results():
        result.series_detected += 1
        result.changes.extend(DetectedChange(job.metric, job.segment, change) for change in found if change.finding)
    return result


@dataclass(frozen=True)
class _Job:
    """One series for the detector: small and picklable, for worker processes."""

    metric: str
    segment: Segment
    stats: pd.DataFrame
    penalty: float
    reference: PeriodValues | None


def _detect(job: _Job, min_n: int, confidence: float) -> list[Change]:
    return detect_changes(
        metric_for(job.metric),
        job.stats,
        penalty=job.penalty,
        min_size=MIN_SIZE.get(job.metric, 2),
        min_effect=MIN_EFFECT.get(job.metric),
        min_n=min_n,
        confidence=confidence,
        reference=job.reference,
    )


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
        self._futures: list[Future[list[Change]]] = []

    def submit(self, job: _Job) -> None:
        self._jobs.append(job)
        if self._pool is None and self._workers >= 2 and len(self._jobs) >= MIN_JOBS_PER_WORKER:
            context = multiprocessing.get_context("fork")
            self._pool = ProcessPoolExecutor(max_workers=self._workers, mp_context=context)
            self._futures = [self._pool.submit(self._detect, queued) for queued in self._jobs]
        elif self._pool is not None:
            self._futures.append(self._pool.submit(self._detect, job))

    def results(self) -> list[tuple[_Job, list[Change]]]:
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
