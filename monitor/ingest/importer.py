"""Import survey responses from files (and, through the same path, from the API).

An import streams batches of records inside one database transaction:

* all-or-nothing by default: one bad row anywhere and the transaction is rolled back,
  so the store is exactly as it was; the report lists the first errors;
* with ``skip_invalid`` the valid rows are committed and every rejected row is copied,
  untouched, to a rejects file next to its input, with the reasons beside it;
* idempotent: each stored response keeps a hash of its normalised content, so a
  re-import classifies rows as unchanged or updated without rewriting them;
* interrupted, killed or failed part-way (Ctrl-C, SIGTERM, a crashed validating
  child, any exception): the transaction is rolled back, then the attempt is
  recorded as an ``interrupted`` or ``failed`` import run with its reason, in a
  transaction of its own. Nothing is committed before the end, so even SIGKILL
  leaves the database as it was (only the attempt's record is then missing).
"""

from __future__ import annotations

import datetime as dt
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from config import Settings
from monitor import store
from monitor.ingest.readers import locate_records
from monitor.ingest.worker import (
    FileFailed,
    Validated,
    ValidationCrashed,
    validate_files,
    validate_files_in_child,
)
from monitor.ingest.writer import BatchWriter
from monitor.store.db import session_scope
from monitor.store.models import ImportRun, ImportStatus

PARALLEL_MIN_BYTES = 16 << 20  # ~100k rows: below, a child process costs more than it saves


@dataclass(frozen=True)
class RecordError:
    """One reason a record (or a whole file) was refused, where it is and why."""

    file: str
    line: int
    column: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "column": self.column, "message": self.message}

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" + (f" [{_printable(self.column)}]" if self.column else "")
        return f"{where}: {self.message}"


def _printable(text: str) -> str:
    """Control and other unprintable characters as escapes: a refused column name is
    quoted from the input, and PostgreSQL text cannot hold NUL."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


@dataclass
class IngestReport:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    errors: list[RecordError] = field(default_factory=list)
    error_count: int = 0
    rejects_files: list[Path] = field(default_factory=list)
    committed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "errors": [error.as_dict() for error in self.errors],
            "error_count": self.error_count,
            "rejects_files": [str(path) for path in self.rejects_files],
            "committed": self.committed,
        }

    def summary(self) -> str:
        lines = [
            f"{self.inserted} inserted, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.rejected} rejected"
        ]
        if not self.committed:
            lines.append("Nothing was written: fix the errors below, or use --skip-invalid.")
        lines.extend(f"  {error}" for error in self.errors)
        if self.error_count > len(self.errors):
            lines.append(f"  ... and {self.error_count - len(self.errors)} more errors")
        lines.extend(f"Rejected rows written to {path}" for path in self.rejects_files)
        return "\n".join(lines)


@dataclass(frozen=True)
class _Pending:
    """An error known by record ordinal; its physical line is looked up at the end."""

    record: int
    column: str
    message: str
    # For duplicates: the ordinal of the first occurrence, named in the message.
    first: int | None = None


ProgressCallback = Callable[[Path, int], None]


@dataclass
class _Import:
    """Validation side of one running import; the writer thread does the database."""

    writer: BatchWriter
    settings: Settings
    skip_invalid: bool
    now: dt.datetime
    report: IngestReport = field(default_factory=IngestReport)
    pending: dict[Path, list[_Pending]] = field(default_factory=dict)
    seen: dict[Path, dict[str, int]] = field(default_factory=dict)  # file -> id -> record
    file_failed: bool = False

    @property
    def writing(self) -> bool:
        """After the first error an all-or-nothing import only validates the rest."""
        return (
            not self.file_failed
            and self.writer.error is None
            and (self.skip_invalid or self.report.rejected == 0)
        )

    def reject(self, path: Path, errors: list[_Pending]) -> None:
        self.pending.setdefault(path, []).extend(errors)
        self.report.rejected += len({error.record for error in errors})
        self.report.error_count += len(errors)

    def take(self, item: Validated) -> None:
        self.reject(item.path, [_Pending(p.record, p.column, p.message) for p in item.problems])
        if item.result is None:
            return
        result = item.result
        self.reject(item.path, [_Pending(int(item.records[e.position]), e.column, e.message) for e in result.errors])
        columns = result.columns
        keep = self._first_occurrences(item.path, columns["response_id"], item.records[result.valid])
        if not keep.all():
            columns = {name: [v for v, k in zip(values, keep, strict=True) if k] for name, values in columns.items()}
        if self.writing and columns["response_id"]:
            self.writer.put(columns, item.dimensions)

    def _first_occurrences(self, path: Path, ids: list[str], records: np.ndarray) -> np.ndarray:
        """Mask of rows whose response_id was not seen earlier in this import."""
        numbers = records.tolist()
        here = self.seen.setdefault(path, {})
        batch_ids = set(ids)
        if len(batch_ids) == len(ids) and all(seen.keys().isdisjoint(batch_ids) for seen in self.seen.values()):
            here.update(zip(ids, numbers))  # the usual case, at C speed
            return np.ones(len(ids), dtype=bool)
        keep = np.ones(len(ids), dtype=bool)
        errors = []
        for index, (rid, number) in enumerate(zip(ids, numbers, strict=True)):
            earlier = next(((p, seen[rid]) for p, seen in self.seen.items() if rid in seen), None)
            if earlier is None:
                here[rid] = number
                continue
            keep[index] = False
            first_path, first_record = earlier
            if first_path == path:
                errors.append(_Pending(number, "response_id", f"duplicate response_id {rid!r}", first_record))
            else:
                message = f"duplicate response_id {rid!r} (first in {first_path})"
                errors.append(_Pending(number, "response_id", message))
        self.reject(path, errors)
        return keep

    def fail_file(self, path: Path, line: int, column: str, message: str) -> None:
        """A whole file refused; its line is known already, so it is stored negated."""
        self.pending.setdefault(path, []).append(_Pending(-line, column, message))
        self.report.error_count += 1
        self.file_failed = True


def _finish_errors(state: _Import, keep_rejects: bool) -> list[Path]:
    """Turn pending errors into located ones; write rejects files when keeping them.

    Ordinals become physical lines with a second pass over each file that had errors;
    file-level errors carry their line already (stored negated).
    """
    limit = state.settings.max_errors_listed
    kept: list[Path] = []
    for path, errors in state.pending.items():
        if not errors:
            continue
        listed_room = max(limit - len(state.report.errors), 0)
        write_rejects = keep_rejects and state.skip_invalid
        wanted_errors = errors if write_rejects else errors[:listed_room]
        wanted = {e.record for e in wanted_errors if e.record > 0} | {
            e.first for e in wanted_errors if e.first is not None
        }
        # Spreadsheets have no text lines to look up: their records are row numbers.
        textual = path.suffix.lower() in (".csv", ".jsonl", ".ndjson")
        header, located = locate_records(path, wanted) if wanted and textual and path.is_file() else ("", {})

        def line_of(record: int) -> int:
            if record <= 0:
                return -record
            return located[record].line if record in located else record

        resolved = [
            RecordError(
                str(path),
                line_of(e.record),
                e.column,
                e.message + (f": first on line {line_of(e.first)}" if e.first is not None else ""),
            )
            for e in wanted_errors
        ]
        state.report.errors.extend(resolved[:listed_room])
        if write_rejects:
            kept.append(_write_rejects(path, header, located, errors, resolved))
    return kept


def _write_rejects(
    path: Path, header: str, located: dict[int, Any], errors: list[_Pending], resolved: list[RecordError]
) -> Path:
    rows_path = path.with_name(f"{path.stem}.rejects{path.suffix}")
    errors_path = path.with_name(f"{path.stem}.rejects.errors.csv")
    records = sorted({e.record for e in errors if e.record > 0})
    with rows_path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(header)
        for record in records:
            text = located[record].text
            handle.write(text if text.endswith("\n") else text + "\n")
    frame = pd.DataFrame([(e.line, e.column, e.message) for e in resolved], columns=["line", "column", "message"])
    frame.to_csv(errors_path, index=False)
    return rows_path


def ingest_files(
    engine: Engine,
    paths: Iterable[Path],
    settings: Settings,
    *,
    source: str = "default",
    skip_invalid: bool = False,
    now: dt.datetime | None = None,
    on_progress: ProgressCallback | None = None,
    parallel: bool | None = None,
) -> IngestReport:
    """Import CSV / JSON-lines files as one transaction and report what happened.

    Large imports into SQLite (``parallel`` None, PARALLEL_MIN_BYTES or more)
    read and validate in a child process while this one writes, using both cores.

    ``on_progress`` receives each file and the number of records read from it so
    far; ``now`` is the import's clock (tests replay any day).
    """
    paths = [Path(path) for path in paths]
    now = now or dt.datetime.now(dt.UTC)
    if parallel is None:
        # On PostgreSQL the server process already keeps the second core busy
        # (COPY parsing, index upkeep); a validating child would only compete.
        large = sum(path.stat().st_size for path in paths if path.is_file()) >= PARALLEL_MIN_BYTES
        parallel = large and engine.dialect.name == "sqlite"
    validate = validate_files_in_child if parallel else validate_files
    return _run_import(
        engine,
        settings,
        source=source,
        skip_invalid=skip_invalid,
        now=now,
        labels=[str(path) for path in paths],
        validated=_reporting(validate(paths, settings, now), on_progress),
    )


def _reporting(items: Iterator[Validated | FileFailed], on_progress: ProgressCallback | None) -> Iterator[Validated | FileFailed]:
    """Pass items through, telling ``on_progress`` how many records each file has given."""
    counts: dict[Path, int] = {}
    for item in items:
        if on_progress is not None and isinstance(item, Validated):
            counts[item.path] = counts.get(item.path, 0) + len(item.records) + len(item.problems)
            on_progress(item.path, counts[item.path])
        yield item


class ImportInterrupted(KeyboardInterrupt):
    """A signal (SIGINT, SIGTERM) stopped an import; it was rolled back and recorded.

    A ``KeyboardInterrupt`` so that nothing between the signal and the importer's
    clean-up swallows it as an ordinary error, and click ends with "Aborted!".
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")


class _Signals:
    """While an import runs, SIGINT and SIGTERM interrupt it cleanly.

    Handlers are installed only in the main thread and only over the defaults
    (Python's Ctrl-C handler, SIGTERM's kill): a host that handles signals itself
    (gunicorn) keeps its handling. Without this, SIGTERM would end the process
    without recording the attempt. Around the commit, and while an interrupted
    import rolls back and records itself, a signal is held back and delivered again
    afterwards, so a late Ctrl-C can neither leave a committed import recorded as
    interrupted nor skip the record; a second one while holding stops at once.
    """

    def __init__(self) -> None:
        self.holding = False
        self.held: int | None = None

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.holding and self.held is None:
            self.held = signum
            return
        raise ImportInterrupted(signum)

    @contextmanager
    def installed(self) -> Iterator[_Signals]:
        previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                if signal.getsignal(signum) in (signal.SIG_DFL, signal.default_int_handler):
                    previous[signum] = signal.signal(signum, self._handle)
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            if self.held is not None and self.held in previous:
                signal.raise_signal(self.held)  # as if it came now, to the usual handler

    @contextmanager
    def held_back(self) -> Iterator[None]:
        self.holding = True
        try:
            yield
        finally:
            self.holding = False


def _run_import(
    engine: Engine,
    settings: Settings,
    *,
    source: str,
    skip_invalid: bool,
    now: dt.datetime,
    labels: list[str],
    validated: Iterator[Validated | FileFailed],
) -> IngestReport:
    with _Signals().installed() as signals:
        state = _Import(BatchWriter(engine, source, now), settings, skip_invalid, now)
        try:
            for item in validated:
                if isinstance(item, FileFailed):
                    state.fail_file(item.path, item.line, item.column, item.message)
                else:
                    state.take(item)
            with signals.held_back():
                # The one commit point: rows become visible here, all at once, or never.
                committed = state.writer.finish(commit=state.writing)
                return _after_writing(engine, state, source, labels, committed)
        except BaseException as exc:
            with signals.held_back():
                if hasattr(validated, "close"):
                    validated.close()  # ends a validating child process now, not at garbage collection
                state.writer.abandon()
                _record_stopped(engine, state, source, labels, exc)
            raise


def _after_writing(engine: Engine, state: _Import, source: str, labels: list[str], committed: bool) -> IngestReport:
    if isinstance(state.writer.error, store.RegistryFull):
        state.fail_file(Path(labels[-1]), 0, "", str(state.writer.error))
    elif state.writer.error is not None:
        raise state.writer.error
    report = state.report
    report.committed = committed
    if committed:
        counts = state.writer.counts
        report.inserted, report.updated, report.unchanged = counts.inserted, counts.updated, counts.unchanged
    report.rejects_files = _finish_errors(state, keep_rejects=committed)
    _record_run(engine, source, labels, report, state.now)
    return report


def _stop_reason(exc: BaseException) -> tuple[ImportStatus, str]:
    """The state and the one-line reason recorded for an import that stopped early."""
    if isinstance(exc, ImportInterrupted):
        return ImportStatus.INTERRUPTED, f"interrupted by {signal.Signals(exc.signum).name}"
    if isinstance(exc, KeyboardInterrupt):
        return ImportStatus.INTERRUPTED, "interrupted (KeyboardInterrupt)"
    if isinstance(exc, ValidationCrashed):
        return ImportStatus.FAILED, f"the validating process failed: {str(exc).strip()[-1000:]}"
    return ImportStatus.FAILED, f"{type(exc).__name__}: {str(exc).strip()[:1000]}"


def _record_stopped(engine: Engine, state: _Import, source: str, labels: list[str], exc: BaseException) -> None:
    """Record an import that stopped early, after its transaction was rolled back.

    Recording is best effort: if the database itself is what failed, the original
    error is what the caller must see, so a failure here is attached to it as a note.
    """
    status, reason = _stop_reason(exc)
    report = IngestReport(rejected=state.report.rejected)
    if state.writer.committed:  # stopped after the commit: the data is in, say so
        counts = state.writer.counts
        report.inserted, report.updated, report.unchanged = counts.inserted, counts.updated, counts.unchanged
        report.committed = True
        reason = f"committed, then {reason}"
        status = ImportStatus.PARTIAL if report.rejected else ImportStatus.SUCCEEDED
    try:
        _record_run(engine, source, labels, report, state.now, status=status, message=reason)
    except Exception as failure:  # noqa: BLE001 - the original error matters more
        exc.add_note(f"the import attempt could not be recorded: {type(failure).__name__}: {failure}")


def _record_run(
    engine: Engine,
    source: str,
    labels: list[str],
    report: IngestReport,
    started: dt.datetime,
    *,
    status: ImportStatus | None = None,
    message: str | None = None,
) -> None:
    """Keep a row per import, failed and interrupted ones included: data health reads them later."""
    if status is not None:
        pass
    elif not report.committed:
        status = ImportStatus.FAILED
    elif report.rejected:
        status = ImportStatus.PARTIAL
    else:
        status = ImportStatus.SUCCEEDED
    run = ImportRun(
        source=source,
        paths=labels,
        status=status,
        inserted=report.inserted,
        updated=report.updated,
        unchanged=report.unchanged,
        rejected=report.rejected,
        message=_printable(message) if message is not None else "\n".join(str(error) for error in report.errors),
        started_at=started,
        finished_at=dt.datetime.now(dt.UTC),
    )
    with session_scope(engine) as session:
        store.record_import_run(session, run)
