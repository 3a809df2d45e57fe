"""Import survey responses from files (and, through the same path, from the API).

An import streams records in batches inside one database transaction:

* all-or-nothing by default: one bad row anywhere and the transaction is rolled back,
  so the store is exactly as it was; the report lists the first errors;
* with ``skip_invalid`` the valid rows are committed and every rejected row is copied,
  untouched, to a rejects file next to its input, with the reasons beside it;
* idempotent: each stored response keeps a hash of its normalised content, so a
  re-import classifies rows as unchanged or updated without rewriting them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine

from config import Settings
from monitor import store
from monitor.db import session_scope
from monitor.models import DIMENSION_SLOTS, ImportRun, ImportStatus, slot_column
from monitor.readers import CANONICAL_COLUMNS, FileFormatError, RawRecord, iter_file
from monitor.records import CleanRecord, FieldError, validate_record

_CANONICAL = frozenset(CANONICAL_COLUMNS)
_EMPTY_SLOTS = {slot_column(slot): None for slot in range(1, DIMENSION_SLOTS + 1)}


@dataclass(frozen=True)
class RecordError:
    """One reason a record (or a whole file) was refused."""

    file: str
    line: int
    column: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "column": self.column, "message": self.message}

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" + (f" [{self.column}]" if self.column else "")
        return f"{where}: {self.message}"


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


class _Rollback(Exception):
    """Unwinds the import transaction when the import must leave no trace."""


class _RejectsWriter:
    """Copies rejected records verbatim next to the input, with their reasons beside.

    Files are written under a temporary name and only renamed into place when the
    import commits, so a failed import leaves no misleading rejects file.
    """

    def __init__(self) -> None:
        self._open: dict[Path, tuple[TextIO, TextIO, Path, Path]] = {}

    @staticmethod
    def target(path: Path) -> tuple[Path, Path]:
        rows = path.with_name(f"{path.stem}.rejects{path.suffix}")
        return rows, path.with_name(f"{path.stem}.rejects.errors.csv")

    def write(self, path: Path, header: str, record: RawRecord, errors: list[RecordError]) -> None:
        if path not in self._open:
            rows_path, errors_path = self.target(path)
            rows_tmp, errors_tmp = (p.with_name(p.name + ".partial") for p in (rows_path, errors_path))
            rows_file = rows_tmp.open("w", encoding="utf-8", newline="")
            errors_file = errors_tmp.open("w", encoding="utf-8", newline="")
            rows_file.write(header)
            errors_file.write("line,column,message\n")
            self._open[path] = (rows_file, errors_file, rows_tmp, errors_tmp)
        rows_file, errors_file = self._open[path][:2]
        rows_file.write(record.text if record.text.endswith("\n") else record.text + "\n")
        for error in errors:
            message = error.message.replace('"', '""')
            errors_file.write(f'{error.line},{error.column},"{message}"\n')

    def finish(self, keep: bool) -> list[Path]:
        kept = []
        for path, (rows_file, errors_file, rows_tmp, errors_tmp) in self._open.items():
            rows_file.close()
            errors_file.close()
            rows_path, errors_path = self.target(path)
            if keep:
                rows_tmp.replace(rows_path)
                errors_tmp.replace(errors_path)
                kept.append(rows_path)
            else:
                rows_tmp.unlink()
                errors_tmp.unlink()
        return kept


def _file_header(path: Path) -> str:
    """The header line to repeat at the top of a CSV rejects file (none for JSON lines)."""
    if path.suffix.lower() != ".csv":
        return ""
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        return handle.readline()


@dataclass
class _Import:
    """State of one running import; see ``ingest_files``."""

    connection: Connection
    settings: Settings
    source: str
    skip_invalid: bool
    now: dt.datetime
    report: IngestReport = field(default_factory=IngestReport)
    registry: store.Registry = field(init=False)
    seen: dict[str, tuple[str, int]] = field(default_factory=dict)
    batch: list[CleanRecord] = field(default_factory=list)
    rejects: _RejectsWriter = field(default_factory=_RejectsWriter)
    fatal: bool = False

    def __post_init__(self) -> None:
        self.registry = store.Registry.load(self.connection)
        self.zone = ZoneInfo(self.settings.timezone)

    @property
    def writing(self) -> bool:
        """After the first error an all-or-nothing import only validates the rest."""
        return not self.fatal and (self.skip_invalid or self.report.rejected == 0)

    def add_error(self, error: RecordError) -> None:
        self.report.error_count += 1
        if len(self.report.errors) < self.settings.max_errors_listed:
            self.report.errors.append(error)

    def reject(self, path: Path, header: str, record: RawRecord, problems: list[FieldError]) -> None:
        errors = [RecordError(str(path), record.line, p.column, p.message) for p in problems]
        for error in errors:
            self.add_error(error)
        self.report.rejected += 1
        if self.skip_invalid:
            self.rejects.write(path, header, record, errors)

    def take(self, path: Path, header: str, record: RawRecord) -> None:
        if record.problem is not None:
            self.reject(path, header, record, [FieldError(*record.problem)])
            return
        dimensions = tuple(name for name in record.values if name not in _CANONICAL)
        result = validate_record(record.values, dimensions, self.zone, self.now)
        if isinstance(result, list):
            self.reject(path, header, record, result)
            return
        first = self.seen.get(result.response_id)
        if first is not None:
            message = f"duplicate response_id {result.response_id!r}: first on {first[0]}:{first[1]}"
            self.reject(path, header, record, [FieldError("response_id", message)])
            return
        self.seen[result.response_id] = (str(path), record.line)
        if self.writing:
            self.batch.append(result)
            if len(self.batch) >= self.settings.ingest_batch_rows:
                self.flush()

    def row(self, record: CleanRecord, mask: int) -> dict[str, Any]:
        row: dict[str, Any] = {
            "source": self.source,
            "response_id": record.response_id,
            "submitted_at": record.submitted_at,
            "local_day": record.local_day,
            "ticket_id": record.ticket_id,
            "ticket_type": record.ticket_type,
            "rating": record.rating,
            "lost_time_minutes": record.lost_time_minutes,
            "factors": list(record.factors),
            "factor_mask": mask,
            "comment": record.comment,
            **_EMPTY_SLOTS,
            "content_hash": record.content_hash,
            "ingested_at": self.now,
        }
        for name, value in record.dimensions.items():
            dim_id, slot = self.registry.dimension(self.connection, name, self.now)
            if value is not None:
                row[slot_column(slot)] = self.registry.value_code(self.connection, dim_id, value, self.now)
        return row

    def flush(self) -> None:
        batch, self.batch = self.batch, []
        if not batch or not self.writing:
            return
        known = store.existing_responses(self.connection, self.source, [r.response_id for r in batch])
        new_rows, changed_rows = [], []
        for record in batch:
            previous = known.get(record.response_id)
            if previous is not None and previous[1] == record.content_hash:
                self.report.unchanged += 1
                continue
            row = self.row(record, self.registry.factor_mask(self.connection, record.factors))
            if previous is None:
                new_rows.append(row)
            else:
                changed_rows.append({**row, "pk": previous[0]})
        store.insert_responses(self.connection, new_rows)
        store.update_responses(self.connection, changed_rows)
        self.report.inserted += len(new_rows)
        self.report.updated += len(changed_rows)

    def file_failed(self, error: FileFormatError | store.RegistryFull, path: Path) -> None:
        if isinstance(error, FileFormatError):
            self.add_error(RecordError(str(error.path), error.line, error.column, error.message))
        else:
            self.add_error(RecordError(str(path), 0, "", str(error)))
        self.fatal = True


ProgressCallback = Callable[[Path, int], None]


def ingest_files(
    engine: Engine,
    paths: Iterable[Path],
    settings: Settings,
    *,
    source: str = "default",
    skip_invalid: bool = False,
    now: dt.datetime | None = None,
    on_progress: ProgressCallback | None = None,
) -> IngestReport:
    """Import CSV / JSON-lines files as one transaction and report what happened.

    ``on_progress`` receives each file and the number of characters consumed in it
    so far (for a progress bar); ``now`` is the import's clock (tests replay any day).
    """
    paths = [Path(path) for path in paths]
    now = now or dt.datetime.now(dt.UTC)
    state: _Import | None = None
    try:
        with engine.begin() as connection:
            state = _Import(connection, settings, source, skip_invalid, now)
            for path in paths:
                _import_file(state, path, on_progress)
            try:
                state.flush()
            except store.RegistryFull as error:
                state.file_failed(error, paths[-1])
            if state.fatal or (state.report.rejected and not skip_invalid):
                raise _Rollback
    except _Rollback:
        pass
    assert state is not None
    report = state.report
    report.committed = not state.fatal and (skip_invalid or report.rejected == 0)
    if not report.committed:
        report.inserted = report.updated = report.unchanged = 0
    report.rejects_files = state.rejects.finish(keep=report.committed)
    _record_run(engine, source, paths, report, now)
    return report


def _import_file(state: _Import, path: Path, on_progress: ProgressCallback | None) -> None:
    progress = [0]
    try:
        header = _file_header(path) if path.is_file() and state.skip_invalid else ""
        records: Iterator[RawRecord] = iter_file(path, state.settings.dimensions, progress)
        for count, record in enumerate(records):
            state.take(path, header, record)
            if on_progress is not None and count % 1000 == 0:
                on_progress(path, progress[0])
    except (FileFormatError, store.RegistryFull) as error:
        state.file_failed(error, path)
    except UnicodeDecodeError as error:
        state.file_failed(FileFormatError(path, 1, f"not valid UTF-8 text: {error.reason}"), path)


def _record_run(
    engine: Engine, source: str, paths: list[Path], report: IngestReport, started: dt.datetime
) -> None:
    """Keep a row per import, failed ones included: data health reads them later."""
    if not report.committed:
        status = ImportStatus.FAILED
    elif report.rejected:
        status = ImportStatus.PARTIAL
    else:
        status = ImportStatus.SUCCEEDED
    run = ImportRun(
        source=source,
        paths=[str(path) for path in paths],
        status=status,
        inserted=report.inserted,
        updated=report.updated,
        unchanged=report.unchanged,
        rejected=report.rejected,
        message="\n".join(str(error) for error in report.errors),
        started_at=started,
        finished_at=dt.datetime.now(dt.UTC),
    )
    with session_scope(engine) as session:
        store.record_import_run(session, run)
