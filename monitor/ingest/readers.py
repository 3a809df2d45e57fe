"""Streaming readers for the import formats: canonical CSV and JSON lines.

They only split a file into batches of records whose fields are all text; validation
is ``monitor.ingest.rules``' job, so a CSV cell, a JSON value and an API payload meet the
same rules.

CSV is parsed by Apache Arrow's streaming reader: a 1M-row file parses in well under
a second, where Python's ``csv`` module alone needs several. Arrow numbers records,
not physical lines (a quoted comment may span lines, blank lines are skipped), so
records carry their ordinal, and ``locate_records`` maps ordinals to physical lines
and original text with a second, exact pass that runs only when something was
rejected.
"""

from __future__ import annotations

import csv
import json
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from monitor.ingest.rules import name_problem

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
_BLOCK_BYTES = 4 << 20


class FileFormatError(ValueError):
    """The file as a whole cannot be read (empty, binary, wrong header, bad encoding)."""

    def __init__(self, path: Path, line: int, message: str, column: str = "") -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.column = column
        self.message = message


@dataclass(frozen=True)
class Problem:
    """A record refused before validation (wrong number of fields, bad JSON)."""

    record: int
    column: str
    message: str


@dataclass
class RecordBatch:
    """Records of one file as text columns, with each record's ordinal in the file.

    For CSV the ordinal counts non-blank records with the header as 1; for JSON lines
    it is the line number. ``locate_records`` turns ordinals into physical lines.
    """

    path: Path
    records: np.ndarray
    table: pa.Table
    problems: list[Problem] = field(default_factory=list)


def check_readable(path: Path) -> None:
    """Refuse missing, empty, binary and unsupported files before parsing them."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise FileFormatError(path, 1, f"unsupported file type {suffix or '(none)'}: use .csv or .jsonl")
    if not path.is_file():
        raise FileFormatError(path, 1, "no such file")
    with path.open("rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    if not head.strip(b"\xef\xbb\xbf \t\r\n"):
        raise FileFormatError(path, 1, "file is empty: expected a header row and records")
    if b"\x00" in head:
        raise FileFormatError(path, 1, "file looks binary (NUL bytes): expected UTF-8 text")


def check_header(path: Path, names: list[str], dimensions: tuple[str, ...]) -> None:
    """The header must hold every canonical column, once, and only known dimensions."""
    missing = [name for name in CANONICAL_COLUMNS if name not in names]
    if missing:
        raise FileFormatError(path, 1, f"header lacks required column(s) {', '.join(missing)}", missing[0])
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise FileFormatError(path, 1, f"duplicate column(s) {', '.join(duplicated)}")
    if any(not name for name in names):
        raise FileFormatError(path, 1, f"column {names.index('') + 1} of the header has no name")
    unknown = [n for n in names if n not in CANONICAL_COLUMNS and dimensions and n not in dimensions]
    if unknown:
        raise FileFormatError(
            path,
            1,
            f"column(s) {', '.join(unknown)} are neither canonical nor configured dimensions "
            f"({', '.join(dimensions)})",
            unknown[0],
        )
    for name in names:
        problem = None if name in CANONICAL_COLUMNS else name_problem(name)
        if problem is not None:
            raise FileFormatError(path, 1, problem, name)


def _first_bad_utf8_line(path: Path) -> int:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 1


def _read_csv_header(path: Path) -> list[str]:
    with path.open("rb") as handle:
        first_line = handle.readline()
    try:
        text = first_line.decode("utf-8-sig")
        header = next(csv.reader([text], strict=True), None)
    except UnicodeDecodeError:
        raise FileFormatError(path, 1, "header is not valid UTF-8 text") from None
    except csv.Error as exc:
        raise FileFormatError(path, 1, f"unreadable header: {exc}") from None
    if not header:
        raise FileFormatError(path, 1, "file is empty: expected a header row")
    # NFC: a name typed with combining accents is the same dimension as its composed form.
    return [unicodedata.normalize("NFC", name.strip()) for name in header]


def _number_records(first: int, count: int, invalid: list[Problem]) -> tuple[np.ndarray, list[Problem]]:
    """Ordinals of ``count`` valid rows from ``first`` on, skipping those invalid rows took.

    Arrow reports invalid rows (with their ordinals) through a callback while it
    parses, and yields only the valid ones. The invalid ordinals that fall inside
    this run are removed from ``invalid`` and returned, to travel with the batch.
    """
    records = first + np.arange(count)
    consumed = []
    for problem in sorted(invalid, key=lambda p: p.record):
        if count == 0 or problem.record > records[-1]:
            break
        records[records >= problem.record] += 1
        consumed.append(problem)
        invalid.remove(problem)
    return records, consumed


def read_csv(path: Path, dimensions: tuple[str, ...], batch_rows: int) -> Iterator[RecordBatch]:
    """Yield the records of a canonical CSV file in batches of text columns."""
    names = _read_csv_header(path)
    check_header(path, names, dimensions)
    yield from csv_batches(path, names, batch_rows)


def csv_batches(path: Path, names: list[str], batch_rows: int) -> Iterator[RecordBatch]:
    """The records after a checked header, as text columns, numbered as a person counts them."""
    invalid: list[Problem] = []

    def on_invalid_row(row: Any) -> str:
        message = f"expected {row.expected_columns} fields as in the header, found {row.actual_columns}"
        invalid.append(Problem(row.number, "", message))
        return "skip"

    next_record = 2  # the header is record 1
    try:
        reader = pa_csv.open_csv(
            path,
            read_options=pa_csv.ReadOptions(
                column_names=names, skip_rows=1, use_threads=False, block_size=_BLOCK_BYTES
            ),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid_row),
            convert_options=pa_csv.ConvertOptions(
                column_types={name: pa.string() for name in names}, strings_can_be_null=False
            ),
        )
        for arrow_batch in reader:
            count = arrow_batch.num_rows
            records, consumed = _number_records(next_record, count, invalid)
            next_record = int(records[-1]) + 1 if count else next_record
            problems = consumed
            for start in range(0, count, batch_rows):
                part = arrow_batch.slice(start, batch_rows)
                table = pa.Table.from_batches([part])
                yield RecordBatch(path, records[start : start + batch_rows], table, problems)
                problems = []
        if invalid:
            empty = pa.table({name: pa.array([], type=pa.string()) for name in names})
            yield RecordBatch(path, np.array([], dtype=np.int64), empty, sorted(invalid, key=lambda p: p.record))
    except pa.ArrowInvalid as exc:
        if "UTF8" in str(exc):
            line = _first_bad_utf8_line(path)
            raise FileFormatError(path, line, "not valid UTF-8 text") from None
        raise FileFormatError(path, next_record, f"unreadable CSV: {exc}") from None


def _as_text(value: Any) -> str:
    """A JSON value as the text a CSV cell would hold, so one validator serves both."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float)):
        return repr(value)
    raise TypeError(type(value).__name__)


def records_to_table(
    records: Iterable[tuple[int, dict[str, Any]]], dimensions: tuple[str, ...]
) -> tuple[np.ndarray, pa.Table, list[Problem]]:
    """Turn JSON objects into text columns; shared by JSON-lines files and the API."""
    numbers: list[int] = []
    rows: list[dict[str, str]] = []
    problems: list[Problem] = []
    names: dict[str, tuple[str, str | None]] = {}  # key -> (NFC name, why refused); keys repeat
    for number, values in records:
        if not isinstance(values, dict):
            problems.append(Problem(number, "", "expected a JSON object"))
            continue
        if any(key not in CANONICAL_COLUMNS for key in values):
            for key in values:
                if key not in names:
                    normal = key if key in CANONICAL_COLUMNS else unicodedata.normalize("NFC", key.strip())
                    names[key] = (normal, None if key in CANONICAL_COLUMNS else name_problem(normal))
            refused = next(((key, names[key][1]) for key in values if names[key][1] is not None), None)
            if refused is not None:
                problems.append(Problem(number, refused[0], refused[1] or ""))
                continue
            normalised = {names[key][0]: value for key, value in values.items()}
            if len(normalised) < len(values):
                problems.append(Problem(number, "", "two fields have the same name once trimmed and normalised"))
                continue
            values = normalised
        missing = [name for name in CANONICAL_COLUMNS if name not in values]
        if missing:
            problems.append(Problem(number, missing[0], "required field is missing"))
            continue
        unknown = [k for k in values if k not in CANONICAL_COLUMNS and dimensions and k not in dimensions]
        if unknown:
            problems.append(Problem(number, unknown[0], "field is neither canonical nor a configured dimension"))
            continue
        row: dict[str, str] = {}
        for key, value in values.items():
            if key == "factors" and isinstance(value, list) and all(isinstance(v, str) for v in value):
                value = ";".join(value)
            try:
                row[key] = _as_text(value)
            except TypeError as exc:
                problems.append(Problem(number, key, f"expected text or a number, got {exc}"))
                break
        else:
            numbers.append(number)
            rows.append(row)
    names = list(dict.fromkeys(name for row in rows for name in row)) or list(CANONICAL_COLUMNS)
    table = pa.table({name: pa.array([row.get(name, "") for row in rows], type=pa.string()) for name in names})
    return np.asarray(numbers, dtype=np.int64), table, problems


def read_jsonl(path: Path, dimensions: tuple[str, ...], batch_rows: int) -> Iterator[RecordBatch]:
    """Yield the records of a JSON-lines file (one object per line) in batches."""

    def parsed(lines: list[tuple[int, str]], bad: list[Problem]) -> Iterator[tuple[int, Any]]:
        for number, text in lines:
            try:
                yield number, json.loads(text)
            except json.JSONDecodeError as exc:
                bad.append(Problem(number, "", f"not valid JSON: {exc.msg}"))

    def flush(lines: list[tuple[int, str]]) -> RecordBatch:
        bad: list[Problem] = []
        numbers, table, problems = records_to_table(parsed(lines, bad), dimensions)
        return RecordBatch(path, numbers, table, bad + problems)

    pending: list[tuple[int, str]] = []
    number = 0
    try:
        with path.open("r", encoding="utf-8-sig") as handle:
            for number, text in enumerate(handle, start=1):
                if text.strip():
                    pending.append((number, text))
                if len(pending) >= batch_rows:
                    yield flush(pending)
                    pending = []
    except UnicodeDecodeError:
        raise FileFormatError(path, _first_bad_utf8_line(path), "not valid UTF-8 text") from None
    if pending:
        yield flush(pending)


def read_batches(path: Path, dimensions: tuple[str, ...], batch_rows: int) -> Iterator[RecordBatch]:
    """Yield the records of one import file, choosing the reader by its suffix."""
    check_readable(path)
    reader = read_csv if path.suffix.lower() == ".csv" else read_jsonl
    yield from reader(path, dimensions, batch_rows)


class _LineTap:
    """Feeds lines to ``csv.reader`` while keeping the raw text of the current record."""

    def __init__(self, handle: TextIO) -> None:
        self._handle = handle
        self.buffer: list[str] = []

    def __iter__(self) -> _LineTap:
        return self

    def __next__(self) -> str:
        line = self._handle.readline()
        if not line:
            raise StopIteration
        self.buffer.append(line)
        return line

    def take(self) -> str:
        text = "".join(self.buffer)
        self.buffer.clear()
        return text


@dataclass(frozen=True)
class LocatedRecord:
    line: int
    text: str


def locate_records(path: Path, wanted: set[int]) -> tuple[str, dict[int, LocatedRecord]]:
    """Physical first line and exact original text of the wanted record ordinals.

    Returns the file's header text too (for the top of a CSV rejects file).
    """
    found: dict[int, LocatedRecord] = {}
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        if path.suffix.lower() != ".csv":
            for number, text in enumerate(handle, start=1):
                if number in wanted:
                    found[number] = LocatedRecord(number, text)
            return "", found
        tap = _LineTap(handle)
        reader = csv.reader(tap)
        header_text = ""
        ordinal = 0
        line = 1
        while len(found) < len(wanted) or not header_text:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error:
                row = ["?"]  # malformed record: still one record, as Arrow counts it
            text = tap.take()
            if row:
                ordinal += 1
                if ordinal == 1:
                    header_text = text
                elif ordinal in wanted:
                    found[ordinal] = LocatedRecord(line, text)
            line = reader.line_num + 1
        if tap.buffer and ordinal + 1 in wanted:
            found[ordinal + 1] = LocatedRecord(line, tap.take())
    return header_text, found
