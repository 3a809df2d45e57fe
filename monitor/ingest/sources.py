"""Readers for source-system exports read through an import profile: any header.

The canonical readers (``monitor.ingest.readers``) insist on the canonical header; a
profile maps whatever columns a system exports, so these readers only split a file
into batches of text columns, numbered the same way (CSV records from 2, the header
being record 1; JSON-lines and spreadsheet rows by line / row number), so errors
point at the line a person can open.

Spreadsheets (``.xlsx``) are read with openpyxl in read-only mode, which streams
rows from the sheet's XML with constant memory. We chose it over python-calamine
(Rust, several times faster) because calamine materialises the whole sheet range in
memory before the first row comes out, while an xlsx export can hold Excel's
1,048,576 rows; openpyxl is pure Python (no native wheel to match), long-maintained,
and also writes xlsx, which the tests use. Dates arrive as datetimes and are turned
into ISO text, which every profile's date parsing accepts.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from monitor.ingest.readers import (
    FileFormatError,
    Problem,
    RecordBatch,
    _as_text,
    _first_bad_utf8_line,
    _read_csv_header,
    csv_batches,
)

SOURCE_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".xlsx")
TEXT_SUFFIXES = (".csv", ".jsonl", ".ndjson")


def check_source(path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix not in SOURCE_SUFFIXES:
        raise FileFormatError(path, 1, f"unsupported file type {suffix or '(none)'}: use .csv, .jsonl or .xlsx")
    if not path.is_file():
        raise FileFormatError(path, 1, "no such file")
    if path.stat().st_size == 0:
        raise FileFormatError(path, 1, "file is empty: expected a header row and records")


def _check_names(path: Path, names: list[str]) -> None:
    if any(not name for name in names):
        raise FileFormatError(path, 1, f"column {names.index('') + 1} of the header has no name")
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise FileFormatError(path, 1, f"duplicate column(s) {', '.join(duplicated)}", duplicated[0])


def read_source_csv(path: Path, batch_rows: int) -> Iterator[RecordBatch]:
    names = _read_csv_header(path)
    _check_names(path, names)
    yield from csv_batches(path, names, batch_rows)


def _rows_to_batch(path: Path, numbers: list[int], rows: list[dict[str, str]], problems: list[Problem], names: list[str]) -> RecordBatch:
    table = pa.table({name: pa.array([row.get(name, "") for row in rows], type=pa.string()) for name in names})
    return RecordBatch(path, np.asarray(numbers, dtype=np.int64), table, problems)


def read_source_jsonl(path: Path, batch_rows: int) -> Iterator[RecordBatch]:
    """JSON objects, one a line; the columns are every key seen (a missing key is empty)."""
    rows: list[dict[str, str]] = []
    numbers: list[int] = []
    problems: list[Problem] = []
    names: dict[str, None] = {}
    try:
        with path.open("r", encoding="utf-8-sig") as handle:
            for number, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                try:
                    value = json.loads(text)
                except json.JSONDecodeError as exc:
                    problems.append(Problem(number, "", f"not valid JSON: {exc.msg}"))
                    continue
                if not isinstance(value, dict):
                    problems.append(Problem(number, "", "expected a JSON object"))
                    continue
                try:
                    row = {str(k): _as_text(v) for k, v in value.items()}
                except TypeError as exc:
                    problems.append(Problem(number, "", f"expected text or numbers as values, got {exc}"))
                    continue
                names.update(dict.fromkeys(row))
                rows.append(row)
                numbers.append(number)
    except UnicodeDecodeError:
        raise FileFormatError(path, _first_bad_utf8_line(path), "not valid UTF-8 text") from None
    # Whole file at once: columns must be known before the first batch is built.
    ordered = list(names)
    for start in range(0, max(len(rows), 1), batch_rows):
        yield _rows_to_batch(path, numbers[start : start + batch_rows], rows[start : start + batch_rows], problems if start == 0 else [], ordered)


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip() if isinstance(value, str) else _as_text(value)


def read_source_xlsx(path: Path, batch_rows: int, sheet: str | None = None) -> Iterator[RecordBatch]:
    """Rows of one worksheet (the named one, else the first); the first non-empty row is the header."""
    import openpyxl  # imported here: only spreadsheet imports pay for it
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, OSError, KeyError, ValueError) as exc:
        raise FileFormatError(path, 1, f"not a readable .xlsx workbook: {exc}") from None
    try:
        if sheet is not None and sheet not in workbook.sheetnames:
            raise FileFormatError(path, 1, f"no worksheet named {sheet!r} (sheets: {', '.join(workbook.sheetnames)})")
        worksheet = workbook[sheet] if sheet is not None else workbook.worksheets[0]
        names: list[str] | None = None
        numbers: list[int] = []
        rows: list[dict[str, str]] = []
        for number, values in enumerate(worksheet.iter_rows(values_only=True), start=1):
            cells = [_cell_text(value) for value in values]
            if not any(cells):
                continue
            if names is None:
                while cells and not cells[-1]:
                    cells.pop()
                names = [cell.strip() for cell in cells]
                _check_names(path, names)
                continue
            rows.append(dict(zip(names, cells, strict=False)))
            numbers.append(number)
            if len(rows) >= batch_rows:
                yield _rows_to_batch(path, numbers, rows, [], names)
                numbers, rows = [], []
        if names is None:
            raise FileFormatError(path, 1, "worksheet is empty: expected a header row and records")
        if rows:
            yield _rows_to_batch(path, numbers, rows, [], names)
    finally:
        workbook.close()


def read_source(path: Path, batch_rows: int, sheet: str | None = None) -> Iterator[RecordBatch]:
    """Batches of text columns of any supported export, whatever its header."""
    check_source(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        yield from read_source_csv(path, batch_rows)
    elif suffix == ".xlsx":
        yield from read_source_xlsx(path, batch_rows, sheet)
    else:
        yield from read_source_jsonl(path, batch_rows)
