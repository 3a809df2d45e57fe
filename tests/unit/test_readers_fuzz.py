"""Fuzzing the import readers and validators: any bytes give a clean answer, never a traceback.

Each example is imported for real (into one small SQLite database) through
``ingest_files``: the readers, the validators, the writer and the second pass that
locates errors by physical line. The outcome must be either a committed import
with no errors, or a refusal whose every error names the file, a line (1 or more),
a field (or "" for the record as a whole) and a reason, with nothing written.

Three kinds of input: raw bytes; CSV with the canonical header and cells of
arbitrary text (quotes, line ends, control characters, look-alike Unicode); JSON
lines of canonical records whose values are arbitrary JSON. ``max_examples`` (150,
or ``MSPMON_FUZZ_EXAMPLES`` for a longer hunt) keeps the file under 20 s here.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from config import Settings, load_settings
from monitor.ingest.importer import IngestReport, ingest_files
from monitor.store import db
from monitor.store.models import responses

NOW = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)
FUZZ = hypothesis_settings(
    max_examples=int(os.environ.get("MSPMON_FUZZ_EXAMPLES", "150")), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, Settings]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    # Two configured dimensions: other columns are refused, so the registry never fills up.
    yield engine, load_settings(environ={}, overrides={"database_url": url, "dimensions": ["country", "service"]})
    engine.dispose()


def count(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(responses)).scalar_one()


def import_cleanly(store: tuple[Engine, Settings], name: str, content: bytes) -> IngestReport:
    """Import ``content`` as file ``name``; check the answer is clean and return it."""
    engine, settings = store
    before = count(engine)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(content)
        report = ingest_files(engine, [path], settings, now=NOW, parallel=False)
    if report.committed:
        assert not report.errors and report.error_count == 0
        assert count(engine) == before + report.inserted
        return report
    assert report.errors, "refused without a reason"
    for error in report.errors:
        assert error.file == str(path)
        assert error.line >= 1, error
        assert isinstance(error.column, str)  # the field's name as written, or "" for the whole record
        assert error.message.strip(), error
    assert count(engine) == before, "a refused import wrote rows"
    return report


@FUZZ
@given(content=st.binary(max_size=400), suffix=st.sampled_from([".csv", ".jsonl"]))
def test_any_bytes(store, content, suffix):
    import_cleanly(store, "fuzz" + suffix, content)


# Text that exercises the rules: separators, quotes, line ends, controls, invisible and
# combining characters, digits and date-like pieces.
_PIECES = st.sampled_from(
    [",", ";", '"', "\n", "\r\n", "\t", "\x00", "\x07", "\u200b", "\u202e", "\ufeff", "u\u0308", "=", " ",
     "10", "10.0", "-3", "1e400", "nan", "2025-03-04", "T09:00:00", "Z", "+01:00", "0001-01-01", "incident"]
)
CELL = st.lists(st.one_of(_PIECES, st.text(max_size=6)), max_size=5).map("".join)
GOOD = {
    "response_id": "R", "submitted_at": "2025-03-04T09:00:00Z", "ticket_id": "I", "ticket_type": "incident",
    "rating": "7", "lost_time_minutes": "3", "factors": "Slow", "comment": "ok", "country": "Finland", "service": "SAP",
}


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    """A canonical header, then rows mostly valid with some cells replaced by fuzz."""
    names = list(GOOD)
    if draw(st.booleans()):
        names[draw(st.integers(0, len(names) - 1))] = draw(CELL)
    rows = []
    for number in range(draw(st.integers(0, 6))):
        cells = {**GOOD, "response_id": f"R{number}"}
        for name in draw(st.lists(st.sampled_from(list(GOOD)), max_size=3)):
            cells[name] = draw(CELL)
        rows.append([cells.get(name, "") for name in names])
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    writer.writerow(names)
    writer.writerows(rows)
    text = buffer.getvalue()
    if draw(st.booleans()):  # now and then, damage the structure itself
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(CELL) + text[cut:]
    return text.encode("utf-8", "surrogatepass")


@FUZZ
@given(content=csv_files())
def test_csv_with_fuzzed_cells(store, content):
    import_cleanly(store, "cells.csv", content)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | CELL,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(CELL, children, max_size=3),
    max_leaves=6,
)


@st.composite
def jsonl_files(draw: st.DrawFn) -> bytes:
    lines = []
    for number in range(draw(st.integers(1, 6))):
        record: object = {**GOOD, "response_id": f"J{number}", "rating": 7}
        for name in draw(st.lists(st.sampled_from([*GOOD, "extra", "a=b", ""]), max_size=3)):
            record[name] = draw(JSON_VALUES)  # type: ignore[index]
        if draw(st.integers(0, 9)) == 0:
            record = draw(JSON_VALUES)
        line = json.dumps(record, ensure_ascii=draw(st.booleans()))
        if draw(st.integers(0, 9)) == 0:
            line = line[: draw(st.integers(0, len(line)))]
        lines.append(line)
    return "\n".join(lines).encode("utf-8", "surrogatepass")


@FUZZ
@given(content=jsonl_files())
def test_json_lines_with_fuzzed_values(store, content):
    import_cleanly(store, "values.jsonl", content)
