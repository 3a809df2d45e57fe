"""Reading and validating import files, in this process or in a child process.

Validation is CPU work that holds the GIL much of the time (hashing, building the
Python values the database driver needs), and so is writing through the driver.
Threads would take turns; a child process that reads and validates while the
parent writes uses both cores. Results cross over as pickled values through a
pipe, whose small buffer keeps memory bounded to a few batches.
"""

from __future__ import annotations

import datetime as dt
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from config import Settings
from monitor.ingest.readers import (
    CANONICAL_COLUMNS,
    FileFormatError,
    Problem,
    read_batches,
)
from monitor.ingest.rules import NormalisedFactors, ValidatedBatch, validate_batch

_CANONICAL = frozenset(CANONICAL_COLUMNS)


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
                    validate_batch(batch.table, dimensions, zone, now, factor_cache, earliest=settings.earliest_date)
                    if batch.table.num_rows
                    else None
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


class ValidationCrashed(RuntimeError):
    """The validating child process failed; the message carries its traceback."""


def _serve() -> None:
    """Child side: read the job from stdin, stream pickled results to stdout."""
    # Ctrl-C in a terminal reaches the whole process group: the parent handles it
    # (rolls back, records the attempt) and ends this child; the child must not
    # report it as a crash of its own first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    paths, settings, now = pickle.load(sys.stdin.buffer)
    out = sys.stdout.buffer
    try:
        for item in validate_files(paths, settings, now):
            pickle.dump(item, out, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.dump(_Done(), out)
    except BaseException:  # reported to the parent, which raises it
        pickle.dump(_Crashed(traceback.format_exc()), out)
    out.flush()


def validate_files_in_child(
    paths: list[Path], settings: Settings, now: dt.datetime
) -> Iterator[Validated | FileFailed]:
    """``validate_files`` run in a child Python process, yielding the same items.

    A plain ``python -m monitor.ingest.worker`` subprocess rather than
    ``multiprocessing``: no re-import of the caller's main module (which fails from
    a notebook or stdin) and no ``fork`` (Arrow's thread pools are not fork-safe).
    The pipe's small buffer is the back-pressure: the child waits while the
    parent writes, so at most a batch or two is in flight.
    """
    package_root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryFile() as errors:
        child = subprocess.Popen(
            [sys.executable, "-m", "monitor.ingest.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            env=env,
        )
        try:
            assert child.stdin is not None and child.stdout is not None
            pickle.dump((paths, settings, now), child.stdin)
            child.stdin.close()
            while True:
                try:
                    item = pickle.load(child.stdout)
                except (EOFError, pickle.UnpicklingError):
                    # The pipe closed, at a message's end or in the middle of one (a
                    # child killed while writing leaves a truncated pickle).
                    child.wait()
                    errors.seek(0)
                    tail = errors.read()[-2000:].decode("utf-8", "replace")
                    raise ValidationCrashed(f"validation process ended with code {child.returncode}: {tail}") from None
                if isinstance(item, _Done):
                    return
                if isinstance(item, _Crashed):
                    raise ValidationCrashed(item.details)
                yield item
        finally:
            if child.poll() is None:
                child.kill()
            child.wait()
            if child.stdout is not None:
                child.stdout.close()


if __name__ == "__main__":
    # Run from the package module, not ``__main__``, so pickled classes resolve
    # to ``monitor.ingest.worker`` in the parent.
    from monitor.ingest.worker import _serve as serve

    serve()
