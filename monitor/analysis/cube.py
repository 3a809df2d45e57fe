"""Per-segment weekly statistics kept from the latest analysis, for the web view.

The analysis already sums every response into additive statistics per period for
everyone, each dimension and each pair of dimensions (``grouping_cube``). Keeping
those arrays lets a page answer "Happiness per service within Finland, before and
after go-live" by adding a few hundred rows, instead of scanning a million
responses per request. One row per grouping holds a zlib-compressed float64 array
shaped (segments, periods, statistics); only the latest analysis's rows are kept.

Readers go through a ``CubeStore``: a per-process cache keyed by the build time of
the stored cubes, so each worker decompresses a grouping once per analysis.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
import zlib
from collections.abc import Callable, Collection, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, delete, select
from sqlalchemy.orm import Session

from monitor.analysis.aggregate import ResponseTable
from monitor.store.models import SegmentCube

SEPARATOR = "|"


class CubeUnavailable(LookupError):
    """The analysis kept no cube for this combination of dimensions; the message says why."""


def write_cubes(session: Session, table: ResponseTable, as_of: dt.date, *, now: dt.datetime | None = None) -> None:
    """Replace the stored cubes with the groupings this analysis computed."""
    session.execute(delete(SegmentCube))
    built_at = now or dt.datetime.now(dt.UTC)
    for by, (segments, cube) in table.cubes.items():
        session.add(
            SegmentCube(
                grouping=SEPARATOR.join(by),
                as_of=as_of,
                built_at=built_at,
                period=table.period,
                first_period=table.first_period,
                last_period=table.last_period,
                stat_names=list(table.stat_names),
                segments=[[value for _, value in sorted(s.items, key=lambda item: by.index(item[0]))] for s in segments],
                # Level 1: the fastest zlib level already shrinks these sums about 5x.
                payload=zlib.compress(np.ascontiguousarray(cube, dtype=np.float64).tobytes(), 1),
            )
        )


@dataclass(frozen=True)
class Cube:
    """One grouping's statistics, decompressed."""

    dims: tuple[str, ...]
    segments: list[tuple[str, ...]]
    stats: np.ndarray  # (segments, periods, statistics)

    def select(
        self, conditions: Mapping[str, Collection[str]], by: tuple[str, ...]
    ) -> tuple[list[tuple[str, ...]], np.ndarray]:
        """Sum the segments matching ``conditions`` per value combination of ``by``.

        ``conditions`` maps dimensions to allowed values; ``by`` is a subset of the
        cube's dimensions (empty: one total). Returns the combinations found, in
        order of first appearance, and their summed statistics.
        """
        positions = [self.dims.index(name) for name in conditions]
        allowed = [set(values) for values in conditions.values()]
        picks = [self.dims.index(name) for name in by]
        keys: dict[tuple[str, ...], int] = {}
        rows, targets = [], []
        for row, values in enumerate(self.segments):
            if all(values[p] in ok for p, ok in zip(positions, allowed, strict=True)):
                key = tuple(values[p] for p in picks)
                rows.append(row)
                targets.append(keys.setdefault(key, len(keys)))
        out = np.zeros((len(keys), *self.stats.shape[1:]))
        np.add.at(out, np.asarray(targets, dtype=np.intp), self.stats[rows])
        return list(keys), out


@dataclass
class CubeSet:
    """The cubes of one analysis: what groupings exist, loaded on first use."""

    as_of: dt.date
    built_at: dt.datetime
    period: str
    first_period: int
    last_period: int
    stat_names: tuple[str, ...]
    groupings: dict[frozenset[str], str]  # dimension set -> grouping key
    _load: Callable[[str], Cube] = field(repr=False)  # bound to the store's cache
    # Figures computed from these cubes (``web.figures``), dropped with them.
    memo: dict[Hashable, Any] = field(default_factory=dict, repr=False)

    @property
    def dimensions(self) -> list[str]:
        """Every dimension with a cube of its own, in slot order."""
        return [key for dims, key in self.groupings.items() if len(dims) == 1]

    def cube(self, dims: Collection[str]) -> Cube:
        """The cube grouped by exactly ``dims`` (any order)."""
        wanted = frozenset(dims)
        key = self.groupings.get(wanted)
        if key is None:
            unknown = sorted(name for name in wanted if frozenset([name]) not in self.groupings)
            if unknown:
                raise CubeUnavailable(f"unknown dimension {unknown[0]!r}")
            raise CubeUnavailable(
                f"the analysis keeps segments of one or two dimensions; {' x '.join(sorted(wanted))} is deeper"
            )
        return self._load(key)

    def series(
        self, conditions: Mapping[str, Collection[str]], by: tuple[str, ...] = ()
    ) -> tuple[list[tuple[str, ...]], np.ndarray]:
        """Per-period statistics of the responses matching ``conditions``, per value of ``by``."""
        return self.cube(set(conditions) | set(by)).select(conditions, by)

    @functools.cached_property
    def table(self) -> ResponseTable:
        """An empty ``ResponseTable`` with this analysis's periods and statistics.

        ``monitor.analysis.detect`` compares windows given a table (for its periods) and a
        series; this lets pages reuse those functions on cube series unchanged.
        """
        return ResponseTable(
            self.period,
            np.empty(0, dtype=np.int64),
            np.empty((0, len(self.stat_names))),
            self.stat_names,
            {},
            {},
            self.first_period,
            self.last_period,
        )


class CubeStore:
    """Per-process cache of the latest cubes; one per web application."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: CubeSet | None = None
        self._cubes: dict[str, Cube] = {}

    def current(self, session: Session) -> CubeSet | None:
        """The cubes of the latest analysis, or None before the first one.

        One small query per call notices a newer analysis; the arrays themselves
        are read once per process per analysis.
        """
        rows = session.execute(
            select(
                SegmentCube.grouping,
                SegmentCube.built_at,
                SegmentCube.as_of,
                SegmentCube.period,
                SegmentCube.first_period,
                SegmentCube.last_period,
                SegmentCube.stat_names,
            ).order_by(SegmentCube.grouping)
        ).all()
        if not rows:
            return None
        head = rows[0]
        with self._lock:
            if self._current is not None and self._current.built_at == head.built_at:
                return self._current
            self._cubes = {}
            self._current = CubeSet(
                as_of=head.as_of,
                built_at=head.built_at,
                period=head.period,
                first_period=head.first_period,
                last_period=head.last_period,
                stat_names=tuple(head.stat_names),
                groupings={
                    frozenset(row.grouping.split(SEPARATOR)) if row.grouping else frozenset(): row.grouping
                    for row in rows
                },
                _load=functools.partial(self._load, session.get_bind(), head.built_at),
            )
            return self._current

    def _load(self, bind: Engine | Connection, built_at: dt.datetime, key: str) -> Cube:
        with self._lock:
            cached = self._cubes.get(key)
        if cached is not None:
            return cached
        with Session(bind) as session:
            row = session.get(SegmentCube, key)
        if row is None or row.built_at != built_at:
            raise CubeUnavailable("a newer analysis replaced these figures: reload the page")
        stats = np.frombuffer(zlib.decompress(row.payload), dtype=np.float64)
        cube = Cube(
            tuple(key.split(SEPARATOR)) if key else (),
            [tuple(values) for values in row.segments],
            stats.reshape(len(row.segments), row.last_period - row.first_period + 1, len(row.stat_names)),
        )
        with self._lock:
            self._cubes[key] = cube
        return cube
