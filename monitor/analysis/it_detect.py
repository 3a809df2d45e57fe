"""IT metrics in the weekly run: per period, overall and per segment, with change detection.

The tickets resolved in the analysed periods are read once (``TicketTable``) and summed
per (segment, period) into the additive statistics of ``detectors.it_metrics``
(``TicketColumns``: rates as counts, resolution and feedback times as log-binned
histograms), then every IT metric series goes through the same machinery as the
survey metrics (``monitor.analysis.detect``): screened against everyone, the
calibrated PELT with a family penalty on the candidates, known dates (go-lives,
stored findings) tested directly. Changes for the worse become findings of metrics
``sla_met``, ``reassignment_rate``, ... with the same lifecycle.

Segments are everyone and each single dimension (the same dimensions as the survey
analysis; pairs are left out: a ticket export's dimensions are few and already
specific). A segment is analysed only with ``2 * min_n`` resolved tickets and at
least the anonymity threshold, as survey segments are. ``resolved_volume`` is
analysed overall only: an assignment group's throughput moves with every re-org.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sqlalchemy import Connection, select

from detectors import PeriodValues, metric_for
from detectors.it_metrics import (
    DETECTED_IT_METRICS,
    IT_OVERALL_ONLY,
    TICKET_STATS,
    TicketColumns,
)
from monitor.analysis.aggregate import MISSING, Segment, codes_in, history_periods
from monitor.analysis.detect import (
    AnalysisOptions,
    AnalysisResult,
    KnownDate,
    _candidates,
    _contrast,
    _Detector,
    _known_by_series,
    _per_period,
    collect_changes,
    family_penalty,
    submit_series,
)
from monitor.periods import (
    first_day,
    last_complete_period,
    last_day,
    period_of_day,
    period_start,
)
from monitor.store.models import Dimension, DimensionValue
from monitor.store.tickets import load_ticket_arrays

TICKET_COUNT = TICKET_STATS.index("t_n")


@dataclass
class TicketTable:
    """The resolved tickets of the analysed periods, one entry per ticket in each array."""

    period: str
    periods: np.ndarray  # period number of each ticket's resolution
    codes: dict[str, np.ndarray]  # dimension -> value code (MISSING if none), codes as ResponseTable's
    labels: dict[str, list[str]]
    first_period: int
    last_period: int
    sla: np.ndarray
    reassignments: np.ndarray
    reopens: np.ndarray
    resolution_hours: np.ndarray
    answered: np.ndarray
    feedback_hours: np.ndarray
    cubes: dict[tuple[str, ...], tuple[list[Segment], np.ndarray]] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.periods)

    @property
    def n_periods(self) -> int:
        return self.last_period - self.first_period + 1

    def mask(self, conditions: Mapping[str, Sequence[str]]) -> np.ndarray:
        """Tickets whose every listed dimension has one of the listed values."""
        keep = np.ones(len(self), dtype=bool)
        for name, values in conditions.items():
            if name not in self.codes:
                return np.zeros(len(self), dtype=bool)
            allowed = [code for code, label in enumerate(self.labels[name]) if label in values]
            keep &= codes_in(self.codes[name], allowed)
        return keep

    def of(self, segment: Segment) -> np.ndarray:
        return self.mask({name: [value] for name, value in segment.items})

    def subset(self, keep: np.ndarray) -> TicketTable:
        arrays = {
            name: getattr(self, name)[keep]
            for name in ("periods", "sla", "reassignments", "reopens", "resolution_hours", "answered", "feedback_hours")
        }
        return dataclasses.replace(
            self, codes={n: c[keep] for n, c in self.codes.items()}, cubes={}, **arrays
        )

    def cube_of(self, keep: np.ndarray | None = None) -> np.ndarray:
        """(periods, stats) sums of the tickets in ``keep`` (all when None); the others
        are group -1, which the cube leaves out, rather than a copy of every array."""
        group = np.zeros(len(self), dtype=np.int64) if keep is None else np.where(keep, 0, -1)
        return self._cube(group, 1)[0]

    @functools.cached_property
    def _columns(self) -> TicketColumns:
        """The flags and hour bins every cube sums: derived once, read by every cube."""
        return TicketColumns.of(
            sla=self.sla,
            reassignments=self.reassignments,
            reopens=self.reopens,
            resolution_hours=self.resolution_hours,
            answered=self.answered,
            feedback_hours=self.feedback_hours,
        )

    def _cube(self, group: np.ndarray, n_groups: int) -> np.ndarray:
        return self._columns.cube(self.periods - self.first_period, group, n_groups, self.n_periods)

    def grouping(self, by: tuple[str, ...]) -> tuple[list[Segment], np.ndarray]:
        """Segments of ``by`` (zero or one dimension) that occur, and their (segments, periods, stats) sums."""
        cached = self.cubes.get(by)
        if cached is not None:
            return cached
        if not by:
            result = ([Segment()], self._cube(np.zeros(len(self), dtype=np.int64), 1))
        else:
            (name,) = by
            codes = self.codes[name]
            cube = self._cube(np.where(codes == MISSING, -1, codes), len(self.labels[name]))
            occurring = np.flatnonzero(cube[:, :, TICKET_COUNT].sum(axis=1) > 0)
            result = ([Segment.of({name: self.labels[name][i]}) for i in occurring], cube[occurring])
        self.cubes[by] = result
        return result

    @property
    def period_index(self) -> pd.DatetimeIndex:
        numbers = range(self.first_period, self.last_period + 1)
        return pd.DatetimeIndex([pd.Timestamp(period_start(n, self.period)) for n in numbers], name="period")

    def frame(self, series: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(series, index=self.period_index, columns=list(TICKET_STATS))


def load_tickets(connection: Connection, *, period: str, as_of: dt.date, history: int | None = None) -> TicketTable:
    """The tickets resolved in the complete periods up to ``as_of`` (the survey analysis's window)."""
    last_period = last_complete_period(as_of, period)
    earliest = last_period - (history_periods(period) if history is None else max(int(history), 1)) + 1
    raw = load_ticket_arrays(connection, first_day(earliest, period), last_day(last_period, period))
    dims = connection.execute(select(Dimension.id, Dimension.name, Dimension.slot).order_by(Dimension.slot)).all()
    values = connection.execute(select(DimensionValue.id, DimensionValue.dimension_id, DimensionValue.value)).all()
    by_dimension: dict[int, list[tuple[int, str]]] = {}
    for value_id, dim_id, value in values:
        by_dimension.setdefault(dim_id, []).append((value_id, value))
    size = len(raw["resolved_day"])
    codes, labels = {}, {}
    for dim_id, name, slot in dims:
        known = sorted(by_dimension.get(dim_id, []), key=lambda item: item[1])  # as load_responses codes them
        lookup = np.full(max((vid for vid, _ in known), default=0) + 2, MISSING, dtype=np.int64)
        for code, (value_id, _) in enumerate(known):
            lookup[value_id] = code
        ids = raw["slots"].get(slot, np.full(size, -1, dtype=np.int64))
        codes[name] = np.where(ids >= 0, lookup[np.clip(ids, 0, len(lookup) - 1)], MISSING)
        labels[name] = [value for _, value in known]
    periods = period_of_day(raw["resolved_day"], period)
    first = int(periods.min()) if size else last_period
    return TicketTable(
        period,
        periods,
        codes,
        labels,
        first,
        last_period,
        raw["sla"],
        raw["reassignments"],
        raw["reopens"],
        raw["resolution_hours"],
        raw["answered"],
        raw["feedback_hours"],
    )


def it_known_dates(known: Sequence[KnownDate]) -> list[KnownDate]:
    """The known dates that concern IT metrics: go-lives (every IT metric but volume), IT findings."""
    out = []
    tested = tuple(name for name in DETECTED_IT_METRICS if name not in IT_OVERALL_ONLY)
    for item in known:
        if item.kind == "event":
            out.append(dataclasses.replace(item, metrics=tested))
        elif item.metrics and any(name in DETECTED_IT_METRICS for name in item.metrics):
            out.append(item)
    return out


def find_it_changes(
    table: TicketTable, options: AnalysisOptions, known: Sequence[KnownDate] = (), *, dimensions: Sequence[str] | None = None
) -> AnalysisResult:
    """Every finding-worthy change of an IT metric, overall and per single-dimension segment."""
    result = AnalysisResult()
    if not len(table):
        return result
    names = list(DETECTED_IT_METRICS)
    dates = _known_by_series(it_known_dates(known), names, options.confidence)
    detector = _Detector(options)
    everyone: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    groupings = [(), *((name,) for name in (dimensions if dimensions is not None else table.labels))]
    for by in groupings:
        segments, cube = table.grouping(by)
        if not segments:
            continue
        totals = cube[:, :, TICKET_COUNT].sum(axis=1)
        eligible = totals >= max(2 * options.min_n, options.anonymity_min_responses)
        for name in names:
            if by and name in IT_OVERALL_ONLY:
                continue
            metric = metric_for(name)
            values, variances = _per_period(metric, cube, TICKET_STATS)
            if not by:
                everyone[name] = (values[0], variances[0])
            family = int(eligible.sum())
            result.series_screened += family
            penalty = family_penalty(values.shape[1], family)
            score_min = (math.sqrt(penalty) - 1.0) ** 2
            if by:
                contrast = _contrast(values, variances, [everyone[name]] * len(segments))
                rows = _candidates(metric, *contrast, eligible, score_min)
                reference = PeriodValues(*everyone[name], np.zeros(values.shape[1]))
            else:
                rows, reference = np.flatnonzero(eligible), None
            submit_series(
                detector, name, segments, lambda row: table.frame(cube[row]), penalty, reference, dates,
                screened=set(rows.tolist()), eligible=eligible,
            )
    collect_changes(detector, result)
    return result
