"""The column-wise ticket import (issue 12) stores exactly what the row-wise one did.

Random event logs with the awkward cases (empty SLA and counts, unresolved tickets,
unpadded day-first dates, missing tokens, empty dimensions, interim rows with bad
cells, sub-second ISO times), imported by the fast path and by the reference
(``ticket_reference``: the previous row-wise importer) into two databases on the same
backend, then a newer and an older export on top: every stored column is the same,
dimension values compared by name (their codes depend on registration order).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from monitor.ingest.mapping import pseudonym
from monitor.ingest.profiles import resolve_profile
from monitor.ingest.tickets import ingest_tickets, pseudonyms
from monitor.store import db
from tests.integration.ticket_reference import reference_ingest_tickets

NOW = dt.datetime(2016, 6, 1, tzinfo=dt.UTC)
HEADER = "number,sys_mod_count,sys_updated_at,opened_at,resolved_at,closed_at,priority,made_sla,reassignment_count,reopen_count,contact_type,assignment_group,location,category,subcategory,caller_id,opened_by"


def event_log(seed: int, tickets: int = 300, shift_days: int = 0) -> str:
    rng = np.random.default_rng(seed)
    lines = [HEADER]
    for t in range(tickets):
        opened = dt.datetime(2016, 1, 1) + dt.timedelta(days=int(rng.integers(0, 120)) + shift_days, minutes=int(rng.integers(0, 1440)))
        events = int(rng.integers(1, 6))
        for k in range(events):
            updated = opened + dt.timedelta(hours=k * (0.1 + float(rng.random() * 10)))
            resolved = f"{updated.day}/{updated.month}/{updated.year} {updated:%H:%M}" if rng.random() < 0.7 else "?"
            cells = [
                f"INC{t}", str(k if rng.random() < 0.9 else 0),
                f"{updated.day}/{updated.month}/{updated.year} {updated:%H:%M}",
                f"{opened:%d/%m/%Y %H:%M}", resolved, "?",
                rng.choice(["1 - Critical", "3 - Moderate", ""]),
                rng.choice(["true", "false", "", "TRUE", "0"]),
                rng.choice(["0", "1", "2", ""]), rng.choice(["0", "1", "?"]),
                rng.choice(["Phone", "Self service", "IVR", ""]),
                rng.choice(["Group 1", "Group 2", "", "Group 3"]),
                rng.choice(["Loc A", "Loc B", "?"]), "Cat 1", rng.choice(["Sub 1", ""]),
                rng.choice(["Caller 1", "caller 1 ", "Caller 2", ""]), "Opener",
            ]
            if k == 0 and events > 1 and rng.random() < 0.2:
                cells[8] = "x"  # a bad cell in an interim row is not checked
            lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def stored(url: str) -> list[tuple]:
    engine = db.make_engine(url)
    with engine.connect() as connection:
        dims = connection.execute(text("SELECT name, slot FROM dimensions ORDER BY name")).all()
        values = dict(connection.execute(text("SELECT id, value FROM dimension_values")).all())
        columns = "ticket_id, source, ticket_type, opened_at, resolved_at, closed_at, updated_at, opened_day, resolved_day, priority, sla_met, reassignment_count, reopen_count, caller, content_hash"
        slots = ", ".join(f"d{slot:02d}" for _, slot in dims)
        got = connection.execute(text(f"SELECT {columns}{', ' + slots if slots else ''} FROM tickets ORDER BY ticket_id")).all()
    engine.dispose()
    width = 15
    return [
        tuple(row[:width]) + tuple((name, values.get(code)) for (name, _), code in zip(dims, row[width:], strict=True))
        for row in got
    ]


@pytest.fixture
def reference_url(database_url, tmp_path):
    """A second fresh, migrated database on the same backend as ``database_url``."""
    if database_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'reference.db'}"
        engine = db.make_engine(url)
        db.upgrade(engine)
        engine.dispose()
        yield url
        return
    base = make_url(database_url)
    schema = "r" + base.query["options"].split("=")[-1]
    admin = create_engine(base.difference_update_query(["options"]), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    engine = db.make_engine(url)
    db.upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def keyed(settings):
    return dataclasses.replace(settings, pseudonym_key="k" * 24)


@pytest.mark.parametrize("seed", [1, 2])
def test_fast_path_stores_what_the_row_wise_reference_stored(database_url, reference_url, tmp_path, keyed, seed):
    profile = resolve_profile("servicenow_incident", {})
    first, newer, older = (tmp_path / n for n in ("first.csv", "newer.csv", "older.csv"))
    first.write_text(event_log(seed), encoding="utf-8")
    newer.write_text(event_log(seed + 100, tickets=200, shift_days=1), encoding="utf-8")
    older.write_text(event_log(seed + 200, tickets=250, shift_days=-40), encoding="utf-8")
    fast_engine, reference_engine = db.make_engine(database_url), db.make_engine(reference_url)
    reports = []
    for path in (first, newer, older, first):
        fast = ingest_tickets(fast_engine, [path], keyed, profile, now=NOW)
        slow = reference_ingest_tickets(reference_engine, [path], keyed, profile, now=NOW)
        reports.append(((fast.committed, fast.inserted, fast.updated, fast.unchanged), (slow.committed, slow.inserted, slow.updated, slow.unchanged)))
        assert stored(database_url) == stored(reference_url), path.name
    fast_engine.dispose()
    reference_engine.dispose()
    assert all(a == b for a, b in reports), reports
    counts = [r[0][1:] for r in reports]
    assert counts[0][0] == 300 and counts[1][1] > 0 and counts[3] == (0, 0, 300), counts  # new, updated, then unchanged


def test_canonical_file_with_sub_second_times_matches_the_reference(database_url, reference_url, tmp_path, keyed):
    path = tmp_path / "tickets.csv"
    path.write_text(
        "ticket_id,ticket_type,opened_at,resolved_at,updated_at,sla_met,reassignment_count,reopen_count,caller,priority,country\n"
        "T1,Request,2024-03-01T10:00:00.250000Z,2024-03-01T12:00:00Z,2024-03-02T00:00:00.000001+01:00,yes,0,,Ann,P1,FI\n"
        "T2,,2024-03-31T01:30:00,,,,3,1,,,\n"
        "T3,incident,2024-10-27T02:30:00,2024-10-28T02:30:00Z,,n,,,bob ,P2,DE\n",
        encoding="utf-8",
    )
    fast_engine, reference_engine = db.make_engine(database_url), db.make_engine(reference_url)
    assert ingest_tickets(fast_engine, [path], keyed, now=NOW).inserted == 3
    assert reference_ingest_tickets(reference_engine, [path], keyed, now=NOW).inserted == 3
    assert stored(database_url) == stored(reference_url)
    assert ingest_tickets(fast_engine, [path], keyed, now=NOW).unchanged == 3
    fast_engine.dispose()
    reference_engine.dispose()


def test_a_bad_row_in_a_later_batch_writes_nothing(database_url, tmp_path, keyed):
    lines = ["ticket_id,opened_at,sla_met"] + [f"T{i},2024-03-01T10:00:00Z,true" for i in range(250)]
    lines[201] = "T200,2024-03-01T10:00:00Z,maybe"
    lines.append("T5,2024-03-01T10:00:00Z,true")  # a duplicate id, first in record 6
    path = tmp_path / "tickets.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    engine = db.make_engine(database_url)
    report = ingest_tickets(engine, [path], dataclasses.replace(keyed, ingest_batch_rows=100), now=NOW)
    assert not report.committed
    assert sorted((e.line, e.column) for e in report.errors) == [(202, "sla_met"), (252, "ticket_id")]
    with engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM tickets")).scalar_one() == 0
    engine.dispose()


def test_pseudonyms_hash_each_value_as_pseudonym_does():
    values = pa.array(["Caller 1", "", "caller 1", "Ånne", "Caller 1"])
    assert pseudonyms(values, "key").to_pylist() == [None if not v else pseudonym(v, "key") for v in values.to_pylist()]


def test_reducing_the_event_log_in_steps_changes_nothing(database_url, tmp_path, keyed, monkeypatch):
    """The first pass keeps only the winners every LATEST_REDUCE_ROWS records: the same
    tickets and the same errors (an empty key, an ordering value that is no date) as one pass."""
    from monitor.ingest import mapping

    log = event_log(7, tickets=400).splitlines()
    log[10] = "," + log[10].split(",", 1)[1]  # an empty key
    cells = log[20].split(",")
    cells[2] = "soon"
    log[20] = ",".join(cells)  # an ordering value that is neither number nor date
    path = tmp_path / "log.csv"
    path.write_text("\n".join(log) + "\n", encoding="utf-8")
    profile = resolve_profile("servicenow_incident", {})
    settings = dataclasses.replace(keyed, ingest_batch_rows=100)
    engine = db.make_engine(database_url)
    found = []
    for size in (10**9, 150):
        monkeypatch.setattr(mapping, "LATEST_REDUCE_ROWS", size)
        report = ingest_tickets(engine, [path], settings, profile, now=NOW)
        found.append((report.committed, sorted((e.line, e.column, e.message) for e in report.errors)))
    assert found[0] == found[1] and not found[0][0]
    assert [(line, column) for line, column, _ in found[0][1]] == [(11, "number"), (21, "sys_updated_at")]
    engine.dispose()
    good = tmp_path / "good.csv"
    good.write_text(event_log(7, tickets=400), encoding="utf-8")
    results = []
    for size, url in ((10**9, database_url), (150, f"sqlite:///{tmp_path / 'stepwise.db'}")):
        monkeypatch.setattr(mapping, "LATEST_REDUCE_ROWS", size)
        target = db.make_engine(url)
        db.upgrade(target)
        assert ingest_tickets(target, [good], settings, profile, now=NOW).committed
        target.dispose()
        results.append([row[:14] for row in stored(url)])  # decoded values, not backend types
    assert len(results[0]) == 400
    assert [r[0] for r in results[0]] == [r[0] for r in results[1]]
    if database_url.startswith("sqlite"):  # same backend: every stored value alike
        assert results[0] == results[1]
