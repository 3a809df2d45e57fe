"""Reading and validating import files, in this process or in a child process.

Validation is CPU work that holds the GIL much of the time (hashing, building the
Python values the database driver needs), and so is writing through the driver.
Threads would take turns; a child process that reads and validates while the
parent writes uses both cores. Results cross over as plain picklable values
through a small bounded queue, so memory stays bounded by a few batches.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import queue
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from config import Settings
from monitor.readers import CANONICAL_COLUMNS, FileFormatError, Problem, read_batches
from monitor.records import NormalisedFactors, ValidatedBatch, validate_batch

_CANONICAL = frozenset(CANONICAL_COLUMNS)
_QUEUE_ITEMS = 4
_POLL_SECONDS = 1.0


@dataclass(frozen=True)
class Validated:
    """One validated batch of one file (``result`` None when only problems came)."""

    path: Path
    records: np.ndarray
    problems: list[Problem]
    result: ValidatedBatch | None
    dimensions: tuple[str, ...]


@dataclass(frozen=True)
class FileFailed:
    """A file that cannot be read as a whole (empty, binary, bad header or encoding)."""

    path: Path
    line: int
    column: str
    message: str


def validate_files(paths: list[Path], settings: Settings, now: dt.datetime) -> Iterator[Validated | FileFailed]:
    """Read and validate each file's batches, in order."""
    zone = ZoneInfo(settings.timezone)
    factor_cache: dict[str, NormalisedFactors] = {}
    for path in paths:
        try:
            for batch in read_batches(path, settings.dimensions, settings.ingest_batch_rows):
                dimensions = tuple(name for name in batch.table.column_names if name not in _CANONICAL)
                result = (
                    validate_batch(batch.table, dimensions, zone, now, factor_cache) if batch.table.num_rows else None
                )
                yield Validated(path, batch.records, batch.problems, result, dimensions)
        except FileFormatError as error:
            yield FileFailed(path, error.line, error.column, error.message)


@dataclass(frozen=True)
class _Done:
    pass


@dataclass(frozen=True)
class _Crashed:
    details: str


def _child(out: multiprocessing.Queue, paths: list[Path], settings: Settings, now: dt.datetime) -> None:
    try:
        for item in validate_files(paths, settings, now):
            out.put(item)
        out.put(_Done())
    except BaseException:  # reported to the parent, which raises it
        out.put(_Crashed(traceback.format_exc()))


class ValidationCrashed(RuntimeError):
    """The validating child process failed; the message carries its traceback."""


def validate_files_in_child(
    paths: list[Path], settings: Settings, now: dt.datetime
) -> Iterator[Validated | FileFailed]:
    """``validate_files`` run in a spawned child process, yielding the same items.

    Spawned, not forked: Arrow's thread pools are not safe across ``fork``.
    """
    context = multiprocessing.get_context("spawn")
    channel = context.Queue(maxsize=_QUEUE_ITEMS)
    child = context.Process(target=_child, args=(channel, paths, settings, now), daemon=True)
    child.start()
    try:
        while True:
            try:
                item = channel.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if not child.is_alive():
                    raise ValidationCrashed(f"validation process ended with code {child.exitcode}") from None
                continue
            if isinstance(item, _Done):
                return
            if isinstance(item, _Crashed):
                raise ValidationCrashed(item.details)
            yield item
    finally:
        if child.is_alive():
            child.terminate()
        child.join()
        channel.close()
