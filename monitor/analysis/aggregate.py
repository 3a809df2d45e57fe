"""From stored responses to additive per-period statistics, overall and per segment.

One query reads the compact columns of every response up to the analysis date
(period number, rating, lost time, factor bits, dimension codes). Every grouping the
analysis needs (everyone, each dimension, each pair of dimensions) is then one
vectorised pass: the group keys are folded into one integer per row and each
statistic is summed with ``numpy.bincount``. No query per segment, and a million
responses aggregate in about a second.

The statistics are additive (counts and sums), so a segment's value over several
periods, or a parent segment's, is a sum of rows; ratio metrics such as Happiness
are computed from the sums, never averaged.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import operator
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
from sqlalchemy import BigInteger, ColumnElement, Connection, cast, func, select

from monitor.periods import (
    first_day,
    last_complete_period,
    last_day,
    period_of_day,
    period_start,
)
from monitor.store.models import (
    Dimension,
    DimensionValue,
    Factor,
    responses,
    slot_column,
)

BASE_STATS = ("n", "promoters", "detractors", "lt_n", "lt_sum", "lt_sumsq", "lt_logsum", "lt_logsumsq")
MISSING = -1  # code of a response without a value for a dimension
# Periods of history an analysis reads by default: three years of weeks. Arrays
# are shaped by the span of periods, so an unbounded span lets one mistyped date
# (0001-01-01) size them by centuries; a bounded window sizes them by what the
# analysis actually looks at, whatever dates the store holds.
DEFAULT_HISTORY_WEEKS = 156


def factor_column(name: str) -> str:
    return f"f:{name}"


def codes_in(codes: np.ndarray, allowed: list[int]) -> np.ndarray:
    """Which of ``codes`` are ``allowed``: one value (a segment) is a plain comparison,
    ten times faster than ``numpy.isin`` over millions of rows."""
    return codes == allowed[0] if len(allowed) == 1 else np.isin(codes, allowed)


@dataclass(frozen=True)
class Segment:
    """A slice of respondents: dimension -> value; empty means everyone."""

    items: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, mapping: Mapping[str, str]) -> Segment:
        return cls(tuple(sorted(mapping.items())))

    def as_dict(self) -> dict[str, str]:
        return dict(self.items)

    def key(self) -> str:
        """A stable text form, used in finding identities and URLs."""
        return "&".join(f"{name}={value}" for name, value in self.items) or "*"


@dataclass
class ResponseTable:
    """The compact columns of the responses an analysis looks at."""

    period: str
    periods: np.ndarray  # period number of each response
    stats: np.ndarray  # (responses, statistics) float64, columns in ``stat_names``
    stat_names: tuple[str, ...]
    codes: dict[str, np.ndarray]  # dimension -> value code per response (MISSING if none)
    labels: dict[str, list[str]]  # dimension -> value label per code
    first_period: int
    last_period: int
    # Cubes already computed, by grouping: transitions reuse the detection's.
    cubes: dict[tuple[str, ...], tuple[list[Segment], np.ndarray]] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.periods)

    def within(self, scope: Mapping[str, list[str]]) -> ResponseTable:
        """The responses inside a transition's scope (each listed dimension must match)."""
        return self if not scope else self._subset(self.scope_mask(scope))

    def outside(self, scope: Mapping[str, list[str]]) -> ResponseTable:
        """The responses outside a scope: the control group of a scoped transition."""
        return self._subset(~self.scope_mask(scope))

    def of(self, segment: Segment) -> np.ndarray:
        """Which responses belong to ``segment``."""
        return self.scope_mask({name: [value] for name, value in segment.items})

    def between(self, first: int, last: int) -> ResponseTable:
        """The responses of periods ``first`` to ``last`` (inclusive)."""
        return self._subset((self.periods >= first) & (self.periods <= last))

    def scope_mask(self, scope: Mapping[str, list[str]]) -> np.ndarray:
        """Which responses are inside a scope (each listed dimension must match)."""
        keep = np.ones(len(self), dtype=bool)
        for name, values in scope.items():
            if name not in self.codes:
                keep[:] = False
                continue
            allowed = [code for code, label in enumerate(self.labels[name]) if label in values]
            keep &= codes_in(self.codes[name], allowed)
        return keep

    def _subset(self, keep: np.ndarray) -> ResponseTable:
        return ResponseTable(
            self.period,
            self.periods[keep],
            self.stats[keep],
            self.stat_names,
            {name: codes[keep] for name, codes in self.codes.items()},
            self.labels,
            self.first_period,
            self.last_period,
        )

    def period_start(self, number: int) -> dt.date:
        return period_start(number, self.period)

    @functools.cached_property
    def period_index(self) -> pd.DatetimeIndex:
        """Start dates of all periods, built once: every detector job's frame uses it."""
        numbers = range(self.first_period, self.last_period + 1)
        return pd.DatetimeIndex([pd.Timestamp(self.period_start(n)) for n in numbers], name="period")


# Dimension value ids travel packed, three per 64-bit integer (id + 1, 0 for none):
# half the Python objects to build when reading a million rows.
CODE_BITS = 20
CODE_MASK = (1 << CODE_BITS) - 1
DIMS_PER_COLUMN = 3


def _packed_codes(slots: list[int]) -> ColumnElement[int]:
    parts = [
        cast(func.coalesce(responses.c[slot_column(slot)], -1) + 1, BigInteger) * (1 << (CODE_BITS * k))
        for k, slot in enumerate(slots)
    ]
    return functools.reduce(operator.add, parts)


def history_periods(period: str, weeks: int = DEFAULT_HISTORY_WEEKS) -> int:
    """How many periods ``weeks`` of history are in ``period`` units."""
    return weeks * 7 if period == "day" else weeks


def load_responses(
    connection: Connection, *, period: str, as_of: date, history: int | None = None
) -> ResponseTable:
    """Read every response of the complete periods up to ``as_of``.

    ``history``: how many periods back from the last complete one to read
    (default ``DEFAULT_HISTORY_WEEKS`` weeks); older responses are left out, so
    memory and time follow the window, never the oldest date in the store.
    """
    dims = connection.execute(select(Dimension.id, Dimension.name, Dimension.slot).order_by(Dimension.slot)).all()
    value_rows = connection.execute(select(DimensionValue.id, DimensionValue.dimension_id, DimensionValue.value)).all()
    factors = dict(connection.execute(select(Factor.name, Factor.bit).order_by(Factor.bit)).all())
    last_period = last_complete_period(as_of, period)
    earliest = last_period - (history_periods(period) if history is None else max(int(history), 1)) + 1
    groups = [dims[i : i + DIMS_PER_COLUMN] for i in range(0, len(dims), DIMS_PER_COLUMN)]
    columns = [
        responses.c.local_day * 16 + responses.c.rating,
        # Thousandths of a minute as an integer, -1000 when not answered: every
        # column is then an exact int64 (factor masks must not pass through floats).
        cast(func.round(func.coalesce(responses.c.lost_time_minutes, -1.0) * 1000), BigInteger),
        responses.c.factor_mask,
        *(_packed_codes([slot for _, _, slot in group]) for group in groups),
    ]
    # "+ 0" keeps the planner off the local_day index: the analysis reads nearly
    # the whole table, and a sequential scan beats an index walk by 2-3x here.
    day = responses.c.local_day + 0
    result = connection.execute(
        select(*columns).where(day <= last_day(last_period, period), day >= first_day(earliest, period))
    )
    # Plain tuples from the driver: SQLAlchemy rows would cost more than the query.
    rows = result.cursor.fetchall()
    result.close()
    flat = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=len(rows) * len(columns))
    raw = flat.reshape(len(rows), len(columns))
    days = raw[:, 0] // 16
    periods = period_of_day(days, period)
    by_dimension: dict[int, list[tuple[int, str]]] = {}
    for value_id, dim_id, value in value_rows:
        by_dimension.setdefault(dim_id, []).append((value_id, value))
    codes, labels = {}, {}
    for position, (dim_id, name, _) in enumerate(dims):
        known = sorted(by_dimension.get(dim_id, []), key=lambda item: item[1])
        lookup = np.full(max((vid for vid, _ in known), default=0) + 2, MISSING, dtype=np.int64)
        for code, (value_id, _) in enumerate(known):
            lookup[value_id] = code
        packed = raw[:, 3 + position // DIMS_PER_COLUMN]
        ids = ((packed >> (CODE_BITS * (position % DIMS_PER_COLUMN))) & CODE_MASK) - 1
        codes[name] = np.where(ids >= 0, lookup[np.clip(ids, 0, None)], MISSING)
        labels[name] = [value for _, value in known]
    lost = np.where(raw[:, 1] < 0, np.nan, raw[:, 1] / 1000.0)
    stats, names = _row_statistics((raw[:, 0] % 16).astype(float), lost, raw[:, 2], factors)
    first = int(periods.min()) if len(periods) else last_period
    return ResponseTable(period, periods, stats, names, codes, labels, first, last_period)


def _row_statistics(
    rating: np.ndarray, lost: np.ndarray, mask: np.ndarray, factors: Mapping[str, int]
) -> tuple[np.ndarray, tuple[str, ...]]:
    answered = ~np.isnan(lost)
    minutes = np.where(answered, lost, 0.0)
    logs = np.log1p(minutes)
    columns = [
        np.ones_like(rating),
        (rating >= 9).astype(float),
        (rating <= 6).astype(float),
        answered.astype(float),
        minutes,
        minutes**2,
        logs,
        logs**2,
        *(((mask >> bit) & 1).astype(float) for bit in factors.values()),
    ]
    names = (*BASE_STATS, *(factor_column(name) for name in factors))
    # Column-major: each statistic is contiguous, which makes bincount ~4x faster.
    stats = np.empty((len(rating), len(names)), order="F")
    for position, column in enumerate(columns):
        stats[:, position] = column
    return stats, names


@dataclass(frozen=True)
class SegmentSeries:
    """Per-period additive statistics of one segment, periods as a full range."""

    segment: Segment
    stats: pd.DataFrame  # index: period start dates; columns: statistics


def grouping_cube(table: ResponseTable, by: tuple[str, ...]) -> tuple[list[Segment], np.ndarray]:
    """Sum the statistics per (segment of ``by``, period) in one vectorised pass.

    Returns the segments (value combinations that occur) and an array shaped
    (segments, periods, statistics). Responses missing a value for one of ``by``
    are left out of that grouping's segments (they still count in "everyone").
    """
    cached = table.cubes.get(by)
    if cached is not None:
        return cached
    n_periods = table.last_period - table.first_period + 1
    sizes = [len(table.labels[name]) for name in by]
    present = np.ones(len(table), dtype=bool)
    key = np.zeros(len(table), dtype=np.int64)
    for name, size in zip(by, sizes, strict=True):
        codes = table.codes[name]
        present &= codes != MISSING
        key = key * size + np.where(codes == MISSING, 0, codes)
    n_keys = int(np.prod(sizes)) if by else 1
    bins = n_keys * n_periods
    # Responses without a value for one of ``by`` go to one extra bin, dropped
    # after: no copy of the statistics per grouping.
    cell = np.where(present, key * n_periods + (table.periods - table.first_period), bins)
    cube = np.column_stack(
        [np.bincount(cell, weights=table.stats[:, j], minlength=bins + 1)[:bins] for j in range(table.stats.shape[1])]
    ).reshape(n_keys, n_periods, table.stats.shape[1])
    occurring = np.flatnonzero(cube[:, :, 0].sum(axis=1) > 0)
    segments = []
    for flat in occurring:
        parts, rest = [], int(flat)
        for name, size in reversed(list(zip(by, sizes, strict=True))):
            parts.append((name, table.labels[name][rest % size]))
            rest //= size
        segments.append(Segment.of(dict(parts)))
    table.cubes[by] = (segments, cube[occurring])
    return table.cubes[by]


def groupings(dimensions: tuple[str, ...], *, pairs: bool = True) -> Iterator[tuple[str, ...]]:
    """Everyone, each dimension, and (optionally) each pair of dimensions."""
    yield ()
    yield from ((name,) for name in dimensions)
    if pairs:
        yield from itertools.combinations(dimensions, 2)


def as_frame(table: ResponseTable, cube_row: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(cube_row, index=table.period_index, columns=list(table.stat_names))
