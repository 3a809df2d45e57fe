"""Streaming readers for the import formats: canonical CSV and JSON lines.

They only split a file into records; validation is ``monitor.records``' job. Each
record keeps the exact text it came from, so ``--skip-invalid`` can write rejected
rows to the rejects file untouched.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

CANONICAL_COLUMNS = (
    "response_id",
    "submitted_at",
    "ticket_id",
    "ticket_type",
    "rating",
    "lost_time_minutes",
    "factors",
    "comment",
)
SUPPORTED_SUFFIXES = (".csv", ".jsonl", ".ndjson")
_SNIFF_BYTES = 8192


class FileFormatError(ValueError):
    """The file as a whole cannot be read (empty, binary, wrong header, bad encoding)."""

    def __init__(self, path: Path, line: int, message: str, column: str = "") -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.column = column
        self.message = message


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One record as read: its first line number, field values and original text."""

    line: int
    values: dict[str, Any]
    text: str
    # A structural problem found while reading (wrong field count, bad JSON).
    problem: tuple[str, str] | None = None


class _LineTap:
    """Feeds lines to ``csv.reader`` while keeping the raw text of the current record."""

    def __init__(self, handle: TextIO) -> None:
        self._handle = handle
        self.buffer: list[str] = []
        self.chars_read = 0

    def __iter__(self) -> _LineTap:
        return self

    def __next__(self) -> str:
        line = self._handle.readline()
        if not line:
            raise StopIteration
        self.buffer.append(line)
        self.chars_read += len(line)
        return line

    def take(self) -> str:
        text = "".join(self.buffer)
        self.buffer.clear()
        return text


def _check_not_binary(path: Path) -> None:
    with path.open("rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    if not head.strip(b"\xef\xbb\xbf \t\r\n"):
        raise FileFormatError(path, 1, "file is empty: expected a header row and records")
    if b"\x00" in head:
        raise FileFormatError(path, 1, "file looks binary (NUL bytes): expected UTF-8 text")


def _read_header(path: Path, header: list[str], dimensions: tuple[str, ...]) -> list[str]:
    names = [name.strip() for name in header]
    missing = [name for name in CANONICAL_COLUMNS if name not in names]
    if missing:
        raise FileFormatError(
            path, 1, f"header lacks required column(s) {', '.join(missing)}", missing[0]
        )
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise FileFormatError(path, 1, f"duplicate column(s) {', '.join(duplicated)}")
    blank = [index + 1 for index, name in enumerate(names) if not name]
    if blank:
        raise FileFormatError(path, 1, f"column {blank[0]} of the header has no name")
    extra = [name for name in names if name not in CANONICAL_COLUMNS]
    if dimensions:
        unknown = [name for name in extra if name not in dimensions]
        if unknown:
            raise FileFormatError(
                path,
                1,
                f"column(s) {', '.join(unknown)} are neither canonical nor configured "
                f"dimensions ({', '.join(dimensions)})",
                unknown[0],
            )
    return names


def read_csv(
    path: Path, handle: TextIO, tap_progress: list[int], dimensions: tuple[str, ...]
) -> Iterator[RawRecord]:
    """Yield the records of a canonical CSV file; the header is validated first."""
    tap = _LineTap(handle)
    reader = csv.reader(tap, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise FileFormatError(path, 1, "file is empty: expected a header row") from None
    except csv.Error as exc:
        raise FileFormatError(path, 1, f"unreadable header: {exc}") from None
    names = _read_header(path, header, dimensions)
    tap.take()
    width = len(names)
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            tap_progress[0] = tap.chars_read
            yield RawRecord(line, {}, tap.take(), ("", f"malformed CSV: {exc}"))
            continue
        tap_progress[0] = tap.chars_read
        text = tap.take()
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank line: not a record
        if len(row) != width:
            problem = ("", f"expected {width} fields as in the header, found {len(row)}")
            yield RawRecord(line, {}, text, problem)
            continue
        yield RawRecord(line, dict(zip(names, row, strict=True)), text)


def read_jsonl(
    path: Path, handle: TextIO, tap_progress: list[int], dimensions: tuple[str, ...]
) -> Iterator[RawRecord]:
    """Yield the records of a JSON-lines file, one object per line."""
    chars = 0
    for line_number, text in enumerate(handle, start=1):
        chars += len(text)
        tap_progress[0] = chars
        if not text.strip():
            continue
        try:
            values = json.loads(text)
        except json.JSONDecodeError as exc:
            yield RawRecord(line_number, {}, text, ("", f"not valid JSON: {exc.msg}"))
            continue
        if not isinstance(values, dict):
            yield RawRecord(line_number, {}, text, ("", "expected a JSON object per line"))
            continue
        missing = [name for name in CANONICAL_COLUMNS if name not in values]
        if missing:
            yield RawRecord(line_number, {}, text, (missing[0], "required field is missing"))
            continue
        if dimensions:
            unknown = [key for key in values if key not in CANONICAL_COLUMNS + dimensions]
            if unknown:
                message = "field is neither canonical nor a configured dimension"
                yield RawRecord(line_number, {}, text, (unknown[0], message))
                continue
        yield RawRecord(line_number, values, text)


def iter_file(
    path: Path, dimensions: tuple[str, ...], progress: list[int]
) -> Iterator[RawRecord]:
    """Yield the records of one import file, choosing the reader by its suffix.

    ``progress[0]`` is kept at the number of characters consumed so far, for the
    progress bar. Encoding errors are raised as ``FileFormatError`` with the line.
    """
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise FileFormatError(
            path, 1, f"unsupported file type {suffix or '(none)'}: use .csv or .jsonl"
        )
    if not path.is_file():
        raise FileFormatError(path, 1, "no such file")
    _check_not_binary(path)
    reader = read_csv if suffix == ".csv" else read_jsonl
    last_line = 0
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        try:
            for record in reader(path, handle, progress, dimensions):
                last_line = record.line
                yield record
        except UnicodeDecodeError as exc:
            raise FileFormatError(
                path, last_line + 1, f"not valid UTF-8 text near line {last_line + 1}: {exc.reason}"
            ) from None
