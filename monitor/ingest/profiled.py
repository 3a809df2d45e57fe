"""Survey responses imported through a profile: the canonical import with a mapping in front.

The profile turns each source batch into canonical text columns (``mapping``); the
canonical rules validate them and the canonical writer stores them, in one
transaction, all-or-nothing and idempotent exactly as ``ingest_files``. Every error
is reported against the source column (``Rating`` rather than ``rating``), and the
rejects of ``--skip-invalid`` are the source lines, untouched.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from config import Settings
from monitor.ingest.importer import (
    IngestReport,
    ProgressCallback,
    RecordError,
    _reporting,
    _run_import,
)
from monitor.ingest.mapping import read_profiled, to_responses
from monitor.ingest.profiles import Kind, Profile, ProfileError
from monitor.ingest.readers import FileFormatError, Problem
from monitor.ingest.rules import FieldError, NormalisedFactors, validate_batch
from monitor.ingest.worker import FileFailed, Validated


def _validated(paths: list[Path], settings: Settings, profile: Profile, now: dt.datetime) -> Iterator[Validated | FileFailed]:
    zone = ZoneInfo(settings.timezone)
    source_zone = ZoneInfo(profile.timezone or settings.timezone)
    cache: dict[str, NormalisedFactors] = {}
    source_of = profile.source_of
    for path in paths:
        try:
            for batch in read_profiled(path, profile, settings.ingest_batch_rows):
                table, refused, problems, dimensions = to_responses(batch, profile, source_zone)
                records = batch.records
                result = validate_batch(table, dimensions, zone, now, cache) if table.num_rows else None
                if result is not None:
                    # Rows the profile refused passed here only on stand-ins: keep them out.
                    keep = ~refused[result.valid]
                    columns = result.columns
                    if not keep.all():
                        columns = {name: [v for v, k in zip(values, keep, strict=True) if k] for name, values in columns.items()}
                    result = dataclasses.replace(
                        result,
                        valid=result.valid & ~refused,
                        columns=columns,
                        errors=[FieldError(e.position, source_of.get(e.column, e.column), e.message) for e in result.errors],
                    )
                all_problems = [Problem(p.record, source_of.get(p.column, p.column), p.message) for p in batch.problems] + problems
                yield Validated(path, records, all_problems, result, dimensions)
        except FileFormatError as error:
            yield FileFailed(path, error.line, error.column, error.message)


def ingest_with_profile(
    engine: Engine,
    paths: Iterable[Path],
    settings: Settings,
    profile: Profile,
    *,
    source: str = "default",
    skip_invalid: bool = False,
    now: dt.datetime | None = None,
    on_progress: ProgressCallback | None = None,
) -> IngestReport:
    """Import response exports read through ``profile`` as one transaction."""
    if profile.kind is not Kind.RESPONSES:
        raise ProfileError(f"profiles.{profile.name}.kind: {profile.kind} profiles are imported with --kind tickets")
    paths = [Path(path) for path in paths]
    if skip_invalid and any(path.suffix.lower() == ".xlsx" for path in paths):
        raise ProfileError("--skip-invalid copies rejected lines of text files: export the sheet as CSV to use it")
    now = now or dt.datetime.now(dt.UTC)
    report = _run_import(
        engine,
        settings,
        source=source,
        skip_invalid=skip_invalid,
        now=now,
        labels=[str(path) for path in paths],
        validated=_reporting(_validated(paths, settings, profile, now), on_progress),
    )
    # Duplicates are found by the importer, which only knows the canonical name.
    source_of = profile.source_of
    report.errors = [
        RecordError(e.file, e.line, source_of.get(e.column, e.column), e.message) for e in report.errors
    ]
    return report
