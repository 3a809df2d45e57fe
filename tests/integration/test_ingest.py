"""Ingestion on SQLite and PostgreSQL: idempotence, validation, atomicity, rejects."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from config import Settings, load_settings
from monitor.ingest.importer import ingest_files
from monitor.ingest.readers import CANONICAL_COLUMNS
from monitor.store.models import (
    Dimension,
    DimensionValue,
    Factor,
    ImportRun,
    responses,
    slot_column,
)

NOW = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)
HEADER = ",".join(CANONICAL_COLUMNS) + ",country,service"
GOOD_ROWS = [
    'R1,2025-03-04T09:15:00+01:00,INC1,incident,9,10,Fast resolution,"Great, thanks",Finland,SAP',
    'R2,2025-03-04 10:00,INC2,incident,3,,Long waiting time;Lack of business knowledge,"two\nlines",Germany,Email',
    "R3,2025-03-05,REQ3,request,7,0,,,Finland,",
]


def write(tmp_path: Path, name: str, *rows: str, header: str = HEADER) -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def snapshot(engine: Engine) -> tuple:
    """Everything an import could change, to prove a failed one changed nothing."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(responses.c.response_id, responses.c.content_hash).order_by(responses.c.response_id)
        ).all()
        counts = tuple(
            connection.execute(select(func.count()).select_from(model)).scalar_one()
            for model in (Dimension, DimensionValue, Factor)
        )
    return tuple(rows), counts


def ingest(engine: Engine, settings: Settings, *paths: Path, **kwargs):
    return ingest_files(engine, list(paths), settings, now=NOW, **kwargs)


def test_first_import_then_reimport_changes_nothing(engine, settings, tmp_path):
    path = write(tmp_path, "a.csv", *GOOD_ROWS)
    first = ingest(engine, settings, path)
    assert (first.inserted, first.updated, first.unchanged, first.rejected) == (3, 0, 0, 0)
    assert first.committed
    before = snapshot(engine)
    again = ingest(engine, settings, path)
    assert (again.inserted, again.updated, again.unchanged, again.rejected) == (0, 0, 3, 0)
    assert snapshot(engine) == before


def test_changed_row_is_updated_in_place(engine, settings, tmp_path):
    ingest(engine, settings, write(tmp_path, "a.csv", *GOOD_ROWS))
    changed = [GOOD_ROWS[0].replace(",9,10,", ",4,45,"), *GOOD_ROWS[1:]]
    report = ingest(engine, settings, write(tmp_path, "b.csv", *changed))
    assert (report.inserted, report.updated, report.unchanged) == (0, 1, 2)
    with engine.connect() as connection:
        rating, minutes, total = connection.execute(
            select(responses.c.rating, responses.c.lost_time_minutes, func.count().over())
            .where(responses.c.response_id == "R1")
        ).one()
    assert (rating, minutes, total) == (4, 45.0, 1)


def test_values_are_normalised_and_dimensions_encoded(engine, settings, tmp_path):
    ingest(engine, settings, write(tmp_path, "a.csv", *GOOD_ROWS))
    with engine.connect() as connection:
        dims = dict(connection.execute(select(Dimension.name, Dimension.slot)).all())
        row = connection.execute(select(responses).where(responses.c.response_id == "R2")).one()
        finland = connection.execute(
            select(func.count()).select_from(responses).join(
                DimensionValue, DimensionValue.id == responses.c[slot_column(dims["country"])]
            ).where(DimensionValue.value == "Finland")
        ).scalar_one()
        r3_service = connection.execute(
            select(responses.c[slot_column(dims["service"])]).where(responses.c.response_id == "R3")
        ).scalar_one()
    assert set(dims) == {"country", "service"}
    assert row.factors == ["Long waiting time", "Lack of business knowledge"]
    assert row.comment == "two\nlines"
    assert row.lost_time_minutes is None
    assert row.factor_mask != 0
    assert finland == 2
    assert r3_service is None  # empty cell is a missing value, not a value ""


def test_times_are_stored_in_utc_and_naive_times_use_the_configured_zone(engine, database_url, tmp_path):
    helsinki = load_settings(environ={}, overrides={"database_url": database_url, "timezone": "Europe/Helsinki"})
    rows = ["A,2025-03-04T23:30:00+00:00,I,incident,9,,,,X", "B,2025-03-04T23:30:00,I,incident,9,,,,X"]
    ingest(engine, helsinki, write(tmp_path, "t.csv", *rows, header=",".join(CANONICAL_COLUMNS) + ",country"))
    with engine.connect() as connection:
        stored = dict(
            connection.execute(select(responses.c.response_id, responses.c.submitted_at)).all()
        )
        days = dict(connection.execute(select(responses.c.response_id, responses.c.local_day)).all())
    assert stored["A"] == dt.datetime(2025, 3, 4, 23, 30, tzinfo=dt.UTC)
    assert stored["B"] == dt.datetime(2025, 3, 4, 21, 30, tzinfo=dt.UTC)  # Helsinki is UTC+2 in March
    # 23:30 UTC is already 5 March in Helsinki: periods follow the organisation's clock.
    assert days["A"] == (dt.date(2025, 3, 5) - dt.date(1970, 1, 1)).days
    assert days["B"] == (dt.date(2025, 3, 4) - dt.date(1970, 1, 1)).days


BAD_ROWS = [
    ("rating 11", "R9,2025-03-04T09:00:00Z,I,incident,11,,,,Finland,SAP", "rating"),
    ("bad date", "R9,04/03/2025,I,incident,5,,,,Finland,SAP", "submitted_at"),
    ("negative lost time", "R9,2025-03-04T09:00:00Z,I,incident,5,-3,,,Finland,SAP", "lost_time_minutes"),
    ("ticket type", "R9,2025-03-04T09:00:00Z,I,problem,5,,,,Finland,SAP", "ticket_type"),
    ("missing column", "R9,2025-03-04T09:00:00Z,I,incident,5,,,Finland,SAP", ""),
    ("future", "R9,2027-03-04T09:00:00Z,I,incident,5,,,,Finland,SAP", "submitted_at"),
    ("duplicate id", GOOD_ROWS[0].replace("Great, thanks", "again"), "response_id"),
    ("no id", ",2025-03-04T09:00:00Z,I,incident,5,,,,Finland,SAP", "response_id"),
]


@pytest.mark.parametrize(("case", "bad_row", "column"), BAD_ROWS, ids=[case[0] for case in BAD_ROWS])
def test_a_bad_row_names_file_line_column_and_writes_nothing(engine, settings, tmp_path, case, bad_row, column):
    ingest(engine, settings, write(tmp_path, "seed.csv", GOOD_ROWS[2]))
    before = snapshot(engine)
    # The bad row comes after a multi-line record, so its line is 5, not its index.
    path = write(tmp_path, "bad.csv", GOOD_ROWS[0], GOOD_ROWS[1], bad_row)
    report = ingest(engine, settings, path)
    assert not report.committed
    assert report.rejected == 1
    assert (report.inserted, report.updated, report.unchanged) == (0, 0, 0)
    error = report.errors[0]
    assert (error.file, error.line, error.column) == (str(path), 5, column)
    assert error.message
    assert snapshot(engine) == before


@pytest.mark.parametrize(
    ("case", "content", "message"),
    [
        ("empty", b"", "empty"),
        ("only whitespace", b"\n\n", "empty"),
        ("binary", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        ("wrong header", b"id,when,score\n1,2025-01-01,5\n", "header lacks"),
        ("latin-1", ("response_id,submitted_at,ticket_id,ticket_type,rating,lost_time_minutes,factors,comment\n"
                     "R1,2025-03-04,I,incident,5,,,Tr\xe8s lent\n").encode("latin-1"), "UTF-8"),
    ],
)
def test_unreadable_files_are_refused_whole(engine, settings, tmp_path, case, content, message):
    ingest(engine, settings, write(tmp_path, "seed.csv", GOOD_ROWS[2]))
    before = snapshot(engine)
    path = tmp_path / "broken.csv"
    path.write_bytes(content)
    report = ingest(engine, settings, write(tmp_path, "ok.csv", GOOD_ROWS[0]), path)
    assert not report.committed
    assert report.errors and message in report.errors[0].message
    assert report.errors[0].file == str(path)
    assert snapshot(engine) == before


def test_skip_invalid_keeps_good_rows_and_copies_bad_rows_untouched(engine, settings, tmp_path):
    bad_multiline = 'R8,2025-03-04T09:00:00Z,I,incident,12,,,"a ""quoted""\nmulti-line comment",Finland,SAP'
    path = write(tmp_path, "mixed.csv", GOOD_ROWS[0], bad_multiline, GOOD_ROWS[1], "R9,yesterday,I,incident,5,,,,Finland,SAP")
    report = ingest(engine, settings, path, skip_invalid=True)
    assert report.committed
    assert (report.inserted, report.rejected) == (2, 2)
    rejects = tmp_path / "mixed.rejects.csv"
    assert report.rejects_files == [rejects]
    assert rejects.read_text(encoding="utf-8") == "\n".join(
        [HEADER, bad_multiline, "R9,yesterday,I,incident,5,,,,Finland,SAP"]
    ) + "\n"
    reasons = (tmp_path / "mixed.rejects.errors.csv").read_text(encoding="utf-8")
    assert "3,rating" in reasons and "7,submitted_at" in reasons
    # The rejects file is importable once fixed: nothing is lost.
    fixed = rejects.read_text(encoding="utf-8").replace(",12,", ",2,").replace("yesterday", "2025-03-03")
    (tmp_path / "fixed.csv").write_text(fixed, encoding="utf-8")
    assert ingest(engine, settings, tmp_path / "fixed.csv").inserted == 2


def test_failed_all_or_nothing_import_leaves_no_rejects_file(engine, settings, tmp_path):
    path = write(tmp_path, "bad.csv", "R9,2025-03-04T09:00:00Z,I,incident,11,,,,Finland,SAP")
    ingest(engine, settings, path)
    assert not list(tmp_path.glob("*.rejects*"))


def test_bom_is_tolerated_and_jsonl_matches_csv(engine, settings, tmp_path):
    csv_path = tmp_path / "bom.csv"
    csv_path.write_bytes(("\ufeff" + "\n".join([HEADER, *GOOD_ROWS]) + "\n").encode("utf-8"))
    assert ingest(engine, settings, csv_path).inserted == 3
    records = [
        {"response_id": "R1", "submitted_at": "2025-03-04T09:15:00+01:00", "ticket_id": "INC1",
         "ticket_type": "incident", "rating": 9, "lost_time_minutes": 10, "factors": ["Fast resolution"],
         "comment": "Great, thanks", "country": "Finland", "service": "SAP"},
        {"response_id": "R3", "submitted_at": "2025-03-05", "ticket_id": "REQ3", "ticket_type": "request",
         "rating": 7, "lost_time_minutes": 0, "factors": "", "comment": None, "country": "Finland", "service": None},
    ]
    jsonl = tmp_path / "same.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    report = ingest(engine, settings, jsonl)
    assert (report.inserted, report.updated, report.unchanged) == (0, 0, 2)


def test_jsonl_errors_name_line_and_field(engine, settings, tmp_path):
    jsonl = tmp_path / "bad.jsonl"
    jsonl.write_text(
        '{"response_id": "A", "submitted_at": "2025-03-04", "ticket_id": "", "ticket_type": "other", '
        '"rating": 5, "lost_time_minutes": null, "factors": [], "comment": ""}\n'
        "{not json\n"
        '{"response_id": "B", "submitted_at": "2025-03-04", "ticket_type": "other", "rating": 5, '
        '"lost_time_minutes": null, "factors": [], "comment": ""}\n'
        '{"response_id": "C", "submitted_at": "2025-03-04", "ticket_id": "", "ticket_type": "other", '
        '"rating": true, "lost_time_minutes": "lots", "factors": [], "comment": ""}\n',
        encoding="utf-8",
    )
    report = ingest(engine, settings, jsonl)
    found = {(e.line, e.column) for e in report.errors}
    assert found == {(2, ""), (3, "ticket_id"), (4, "rating"), (4, "lost_time_minutes")}
    assert report.rejected == 3 and not report.committed


def test_new_dimension_needs_no_code_change_and_configured_dimensions_are_enforced(engine, database_url, settings, tmp_path):
    ingest(engine, settings, write(tmp_path, "a.csv", *GOOD_ROWS))
    header = ",".join(CANONICAL_COLUMNS) + ",country,service,cost_center"
    report = ingest(engine, settings, write(tmp_path, "b.csv", "R7,2025-03-06,I,incident,8,,,,Finland,SAP,CC-42", header=header))
    assert report.inserted == 1
    with engine.connect() as connection:
        assert "cost_center" in connection.execute(select(Dimension.name)).scalars().all()
    strict = load_settings(environ={}, overrides={"database_url": database_url, "dimensions": ["country", "service"]})
    refused = ingest(engine, strict, write(tmp_path, "c.csv", "R8,2025-03-06,I,incident,8,,,,Finland,SAP,CC-1", header=header))
    assert not refused.committed
    assert refused.errors[0].column == "cost_center"


def test_source_scopes_response_ids_and_runs_are_recorded(engine, settings, tmp_path):
    path = write(tmp_path, "a.csv", *GOOD_ROWS)
    assert ingest(engine, settings, path, source="survey-a").inserted == 3
    assert ingest(engine, settings, path, source="survey-b").inserted == 3
    ingest(engine, settings, write(tmp_path, "bad.csv", "x"))
    with engine.connect() as connection:
        statuses = connection.execute(select(ImportRun.status).order_by(ImportRun.id)).scalars().all()
    assert statuses == ["succeeded", "succeeded", "failed"]


def test_batches_smaller_than_the_file_give_the_same_result(engine, database_url, tmp_path):
    small_batches = load_settings(environ={}, overrides={"database_url": database_url, "ingest_batch_rows": 100})
    rows = [f"R{i},2025-03-04T09:00:00Z,I{i},incident,{i % 11},{i},F{i % 3},,C{i % 7},S{i % 5}" for i in range(1050)]
    path = write(tmp_path, "many.csv", *rows)
    first = ingest(engine, small_batches, path)
    assert first.inserted == 1050
    assert ingest(engine, small_batches, path).unchanged == 1050


def test_validation_in_a_child_process_gives_the_same_results(engine, settings, tmp_path):
    """Large imports validate in a child process; every outcome must be identical."""
    good = write(tmp_path, "a.csv", *GOOD_ROWS)
    first = ingest(engine, settings, good, parallel=True)
    assert (first.inserted, first.rejected, first.committed) == (3, 0, True)
    assert ingest(engine, settings, good, parallel=True).unchanged == 3
    bad = write(tmp_path, "bad.csv", GOOD_ROWS[0], "R9,2025-03-04T09:00:00Z,I,incident,11,,,,Finland,SAP")
    refused = ingest(engine, settings, bad, parallel=True)
    assert not refused.committed
    assert [(e.line, e.column) for e in refused.errors] == [(3, "rating")]
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    failed = ingest(engine, settings, good, empty, parallel=True)
    assert not failed.committed and "empty" in failed.errors[0].message


# --- dates within reason, one rating rule, clean text (issue 13) ---------------------------------

JSON_RECORD = {
    "response_id": "J1", "submitted_at": "2025-03-04T09:00:00Z", "ticket_id": "I1", "ticket_type": "incident",
    "rating": 8, "lost_time_minutes": None, "factors": [], "comment": "", "country": "Finland", "service": "SAP",
}


def jsonl(tmp_path: Path, name: str, *records: dict) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(json.dumps(record) for record in records) + "\n", encoding="utf-8")
    return path


def row(submitted: str = "2025-03-04T09:00:00Z", rating: str = "5", country: str = "Finland", comment: str = "", rid: str = "R9") -> str:
    return f"{rid},{submitted},I,incident,{rating},,,{comment},{country},SAP"


@pytest.mark.parametrize(
    ("submitted", "accepted"),
    [("0001-01-01T00:00:00Z", False), ("1999-12-31T23:59:59Z", False), ("1970-01-01", False),
     ("2000-01-01T00:00:00Z", True), ("2026-01-16T11:00:00Z", True), ("2026-01-16T13:00:00Z", False)],
)
def test_dates_before_earliest_date_or_over_a_day_ahead_are_refused(engine, settings, tmp_path, submitted, accepted):
    for path in (write(tmp_path, "d.csv", row(submitted)), jsonl(tmp_path, "d.jsonl", {**JSON_RECORD, "submitted_at": submitted})):
        report = ingest(engine, settings, path)
        assert report.committed is accepted, report.summary()
        if not accepted:
            error = report.errors[0]
            assert (error.file, error.line, error.column) == (str(path), 2 if path.suffix == ".csv" else 1, "submitted_at")
            assert ("earliest date accepted" in error.message) or ("more than a day in the future" in error.message)


def test_earliest_date_is_a_setting(engine, database_url, tmp_path):
    later = load_settings(environ={}, overrides={"database_url": database_url, "earliest_date": "2025-03-05"})
    report = ingest(engine, later, write(tmp_path, "d.csv", row("2025-03-04T23:00:00Z", rid="A"), row("2025-03-05T09:00:00Z", rid="B")))
    assert [(e.line, e.column) for e in report.errors] == [(2, "submitted_at")]
    assert "2025-03-05" in report.errors[0].message


@pytest.mark.parametrize(("text", "accepted"), [("10", True), ("10.0", True), (" 7.00 ", True), ("7.5", False), ("1e1", False), ("+7", False), ("11.0", False)])
def test_one_rating_rule_for_csv_and_json(engine, settings, tmp_path, text, accepted):
    csv_report = ingest(engine, settings, write(tmp_path, "r.csv", row(rating=text)))
    number = json.loads(text) if text.strip().replace(".", "").isdigit() else text
    json_report = ingest(engine, settings, jsonl(tmp_path, "r.jsonl", {**JSON_RECORD, "rating": number}))
    assert (csv_report.committed, json_report.committed) == (accepted, accepted)
    if not accepted:
        assert csv_report.errors[0].column == json_report.errors[0].column == "rating"
        assert "whole number from 0 to 10" in csv_report.errors[0].message


def test_a_rating_written_7_0_is_the_same_response_as_7(engine, settings, tmp_path):
    ingest(engine, settings, write(tmp_path, "a.csv", row(rating="7")))
    assert ingest(engine, settings, write(tmp_path, "b.csv", row(rating="7.0"))).unchanged == 1
    assert ingest(engine, settings, jsonl(tmp_path, "c.jsonl", {**JSON_RECORD, "response_id": "R9", "ticket_id": "I", "rating": 7.0, "factors": "", "comment": "", "lost_time_minutes": ""})).unchanged == 1


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("country", "Fin\u0000land", "control character U+0000"),
        ("comment", "nul \u0000 here", "control character U+0000"),
        ("response_id", "R\u00009", "control character U+0000"),
        ("country", "Fin\u001bland", "control character U+001B"),
        ("country", "Fin\u200bland", "invisible character U+200B"),
        ("country", "\u202eFinland", "invisible character U+202E"),
        ("service", "SAP\u2066", "invisible character U+2066"),
        ("factors", ["Slow\u200d"], "invisible character U+200D"),
    ],
)
def test_control_and_invisible_characters_are_refused_by_line_and_field(engine, settings, tmp_path, field, value, reason):
    before = snapshot(engine)
    path = jsonl(tmp_path, "odd.jsonl", JSON_RECORD, {**JSON_RECORD, "response_id": "J2", field: value})
    report = ingest(engine, settings, path)
    assert not report.committed
    assert [(e.file, e.line, e.column) for e in report.errors] == [(str(path), 2, field)]
    assert reason in report.errors[0].message
    assert snapshot(engine) == before


def test_comments_keep_tabs_and_line_ends_and_csv_cells_are_checked_too(engine, settings, tmp_path):
    assert ingest(engine, settings, jsonl(tmp_path, "ok.jsonl", {**JSON_RECORD, "comment": "a\tb\r\nc"})).committed
    path = write(tmp_path, "bell.csv", row(country="Fin\x07land"))
    report = ingest(engine, settings, path)
    assert [(e.line, e.column) for e in report.errors] == [(2, "country")]
    assert "U+0007" in report.errors[0].message


def test_dimension_values_and_names_are_nfc_so_look_alikes_are_one_segment(engine, settings, tmp_path):
    composed, decomposed = "Z\u00fcrich", "Zu\u0308rich"
    path = write(tmp_path, "nfc.csv", row(country=composed, rid="A"), row(country=decomposed, rid="B"))
    assert ingest(engine, settings, path).inserted == 2
    records = [{**JSON_RECORD, "response_id": "C", "country": decomposed}]
    records.append({**{k: v for k, v in JSON_RECORD.items() if k != "country"}, "response_id": "D", "pai\u0301s": "x"})
    assert ingest(engine, settings, jsonl(tmp_path, "nfc.jsonl", *records)).inserted == 2
    with engine.connect() as connection:
        values = connection.execute(select(DimensionValue.value)).scalars().all()
        names = connection.execute(select(Dimension.name)).scalars().all()
    assert values.count(composed) == 1 and decomposed not in values
    assert "pa\u00eds" in names


@pytest.mark.parametrize("name", ["team=a", "a,b", "site[1]", "zero\u200bwidth"])
def test_dimension_names_that_filters_cannot_express_are_refused(engine, settings, tmp_path, name):
    path = write(tmp_path, "names.csv", "R1,2025-03-04,I,incident,5,,,,Finland,x", header=",".join(CANONICAL_COLUMNS) + f',country,"{name}"')
    report = ingest(engine, settings, path)
    assert not report.committed
    assert (report.errors[0].file, report.errors[0].line, report.errors[0].column) == (str(path), 1, name)
    assert "dimension name" in report.errors[0].message
    records = [JSON_RECORD, {**JSON_RECORD, "response_id": "J2", name: "x"}]
    refused = ingest(engine, settings, jsonl(tmp_path, "names.jsonl", *records))
    assert [(e.line, e.column) for e in refused.errors] == [(2, name)]


def test_the_api_applies_the_same_rules(database_url, tmp_path):
    from monitor.store import db as monitor_db
    from web import create_app
    from web.accounts import add_user, create_token

    app = create_app(load_settings(environ={}, overrides={"database_url": database_url, "secret_key": "s" * 40}), {"TESTING": True})
    engine = app.extensions["mspmon"].engine
    with monitor_db.session_scope(engine) as session:
        add_user(session, "admin@example.com", "a-long-password-1", role="admin")
        token = create_token(session, "admin@example.com", "tests")[1]
    client = app.test_client()

    def post(*records: dict):
        return client.post("/api/responses", json=list(records), headers={"Authorization": f"Bearer {token}"})

    cases = [
        ({"submitted_at": "0001-01-01T00:00:00Z"}, "submitted_at", "earliest date"),
        ({"country": "Fin\u0000land"}, "country", "U+0000"),
        ({"rating": 7.5}, "rating", "whole number"),
        ({"country": "Fin\u200bland"}, "country", "U+200B"),
        ({"a=b": "x"}, "a=b", "dimension name"),
        # A control character in a dimension *name*: the refusal quotes it, and the
        # import run that records it must still be storable (PostgreSQL text holds no NUL).
        ({"cou\u0000ntry": "x"}, "cou\u0000ntry", "U+0000"),
    ]
    for change, column, reason in cases:
        answer = post(JSON_RECORD, {**JSON_RECORD, "response_id": "J2", **change})
        assert answer.status_code == 422, answer.json
        assert [(e["record"], e["column"]) for e in answer.json["errors"]] == [(2, column)]
        assert reason in answer.json["errors"][0]["message"]
    accepted = post({**JSON_RECORD, "rating": 10.0})
    assert accepted.status_code == 200 and accepted.json["inserted"] == 1
    with monitor_db.session_scope(engine) as session:
        messages = session.scalars(select(ImportRun.message).where(ImportRun.status == "failed")).all()
    assert any("cou\\x00ntry" in message for message in messages)
    engine.dispose()
