"""The weekly analysis on small hand-built worlds: short histories, segments that end,
empty weeks, missing lost time, wild dates, replays (issue 11, the pipeline side)."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, select

from config import Settings, load_settings
from monitor import store
from monitor.analysis.aggregate import load_responses
from monitor.analysis.run import run_analysis
from monitor.ingest.importer import ingest_files
from monitor.store import db
from monitor.store.models import Finding, Transition

HEADER = ["response_id", "submitted_at", "ticket_id", "ticket_type", "rating", "lost_time_minutes", "factors", "comment"]
MONDAY = dt.date(2025, 1, 6)


def _ratings(rng: np.random.Generator, n: int, happiness: float) -> np.ndarray:
    """Ratings whose Happiness is ``happiness`` in expectation (the synthetic model's shares)."""
    h = happiness / 100.0
    passive = 0.22 * (1.0 - h * h)
    promoter = (1.0 - passive + h) / 2.0
    kind = rng.choice(3, size=n, p=[promoter, passive, 1.0 - promoter - passive])
    return np.where(kind == 0, rng.integers(9, 11, n), np.where(kind == 1, rng.integers(7, 9, n), rng.integers(0, 7, n)))


def week(
    rng: np.random.Generator, monday: dt.date, n: int, happiness: float, dims: dict[str, str], *, lost: bool = True
) -> Iterator[dict[str, str]]:
    """``n`` responses spread over one week, in one segment."""
    for rating in _ratings(rng, n, happiness):
        when = dt.datetime.combine(monday, dt.time(8)) + dt.timedelta(minutes=int(rng.integers(0, 5 * 24 * 60)))
        yield {
            "submitted_at": when.isoformat(),
            "ticket_type": "incident",
            "rating": str(int(rating)),
            "lost_time_minutes": str(int(rng.integers(0, 60))) if lost else "",
            **dims,
        }


def build(tmp_path: Path, rows: Iterable[dict[str, str]], go_lives: dict[str, dt.date] | None = None) -> tuple[Engine, Settings]:
    rows = list(rows)
    dims = sorted({key for row in rows for key in row} - set(HEADER))
    path = tmp_path / "responses.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, [*HEADER, *dims])
        writer.writeheader()
        for number, row in enumerate(rows):
            writer.writerow({"response_id": f"R{number}", "ticket_id": "", "factors": "", "comment": "", **row})
    url = f"sqlite:///{tmp_path / 'world.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    # The earliest the import accepts, so a stored wild date can be tested (older ones are refused).
    settings = load_settings(environ={}, overrides={"database_url": url, "earliest_date": "1900-01-01"})
    report = ingest_files(engine, [path], settings, source="survey")
    assert report.committed, report.summary()
    with db.session_scope(engine) as session:
        for name, go_live in (go_lives or {}).items():
            store.add_transition(
                session, Transition(name=name, go_live=go_live, scope={}, created_at=dt.datetime.now(dt.UTC))
            )
    return engine, settings


def sunday_after(monday: dt.date, weeks: int) -> dt.date:
    """The last day of the ``weeks``-th week starting at ``monday`` (as_of covering it)."""
    return monday + dt.timedelta(weeks=weeks, days=-1)


LOCATIONS = ("Helsinki", "Tampere", "Oulu")


def collapse_world(rng: np.random.Generator, weeks_before: int, weeks_after: int, go_live: dt.date) -> list[dict[str, str]]:
    """Surveys start ``weeks_before`` weeks before the go-live; Happiness +70 -> -85 on every location."""
    rows = []
    for k in range(-weeks_before, weeks_after):
        monday = go_live + dt.timedelta(weeks=k)
        level = 70.0 if k < 0 else -85.0
        group = "Inhouse-L1" if k < 0 else "MSP-L1"
        for location in LOCATIONS:
            rows += week(rng, monday, 100, level, {"location": location, "assignment_group": group})
    return rows


def test_a_collapse_with_one_week_of_history_is_a_finding_at_the_go_live(tmp_path):
    go_live = MONDAY + dt.timedelta(weeks=1)
    engine, settings = build(tmp_path, collapse_world(np.random.default_rng(1), 1, 6, go_live), {"MSP": go_live})
    for weeks_after in (1, 2, 3, 6):
        report = run_analysis(engine, settings, sunday_after(go_live, weeks_after), pairs=False)
        overall = [f for f in report.findings if f.metric == "happiness" and f.segment == {}]
        assert len(overall) == 1, (weeks_after, report.findings)
        assert overall[0].change_date == go_live
        assert overall[0].delta < -100
        assert overall[0].transition == "MSP"
        (transition,) = report.transitions
        assert transition["history"]["enough_to_test"]
        assert not transition["history"]["full_baseline"]
        assert "1 of" in transition["history"]["missing"]
        assert transition["metrics"]["happiness"]["go_live_test"]["status"] == "tested"
    ids = {f.id for f in report.findings if f.metric == "happiness" and f.segment == {}}
    with db.session_scope(engine) as session:
        assert {f.id for f in session.scalars(select(Finding).where(Finding.segment_key == "*", Finding.metric == "happiness"))} == ids
    engine.dispose()


def test_too_short_a_history_is_said_not_silent(tmp_path):
    go_live = MONDAY
    engine, settings = build(tmp_path, collapse_world(np.random.default_rng(2), 0, 3, go_live), {"MSP": go_live})
    report = run_analysis(engine, settings, sunday_after(go_live, 3), pairs=False)
    (transition,) = report.transitions
    assert not transition["history"]["enough_to_test"]
    assert "0 responses before go-live" in transition["history"]["missing"]
    assert transition["metrics"]["happiness"]["go_live_test"]["status"] == "no_history"
    engine.dispose()


def test_no_crash_on_first_weeks_empty_weeks_and_missing_lost_time(tmp_path):
    rng = np.random.default_rng(3)
    go_live = MONDAY + dt.timedelta(weeks=3)
    rows = []
    for k in range(12):
        if k in (5, 6, 7):  # three weeks without a single response
            continue
        for location in LOCATIONS:
            rows += week(rng, MONDAY + dt.timedelta(weeks=k), 40, 50.0 if k < 3 else 10.0, {"location": location}, lost=False)
    engine, settings = build(tmp_path, rows, {"MSP": go_live})
    for days in (-1, 0, 6, 7, 13, 20, 27, 34, 41, 48, 55, 62, 69, 76, 83):
        report = run_analysis(engine, settings, MONDAY + dt.timedelta(days=days))
        assert report.as_of == MONDAY + dt.timedelta(days=days)
    assert not [f for f in report.findings if f.metric == "lost_time"]
    engine.dispose()


def test_a_finding_whose_segment_stops_receiving_responses_ends(tmp_path):
    rng = np.random.default_rng(4)
    rows = []
    for k in range(70):
        monday = MONDAY + dt.timedelta(weeks=k)
        rows += week(rng, monday, 60, 40.0, {"assignment_group": "MSP-L1"})
        if k < 30:  # the in-house group dips at week 20 and is dissolved after week 29
            rows += week(rng, monday, 120, 60.0 if k < 20 else 0.0, {"assignment_group": "Inhouse-L1"})
    engine, settings = build(tmp_path, rows)
    open_report = run_analysis(engine, settings, sunday_after(MONDAY, 28), pairs=False)
    (dip,) = [f for f in open_report.findings if f.metric == "happiness" and f.segment == {"assignment_group": "Inhouse-L1"}]
    assert dip.state in ("new", "ongoing")
    later = run_analysis(engine, settings, sunday_after(MONDAY, 36), pairs=False)
    with db.session_scope(engine) as session:
        stored = session.get(Finding, dip.id)
        assert stored.state == "ended"
        assert stored.ended_on == MONDAY + dt.timedelta(weeks=30)
        assert "no response after" in stored.ended_reason
    still = [f for f in later.findings if f.id == dip.id]
    assert all(f.state == "ended" for f in still)
    # Fifteen months on, it is still ended, never open again.
    run_analysis(engine, settings, sunday_after(MONDAY, 70), pairs=False)
    with db.session_scope(engine) as session:
        assert session.get(Finding, dip.id).state == "ended"
    engine.dispose()


@pytest.mark.parametrize("wild", ["2000-01-01T10:00:00", "1900-01-01T10:00:00"])
def test_a_wild_date_neither_blows_up_nor_changes_the_findings(tmp_path, wild):
    rng = np.random.default_rng(5)
    rows = []
    for k in range(30):
        rows += week(rng, MONDAY + dt.timedelta(weeks=k), 150, 60.0 if k < 20 else 20.0, {"location": "Helsinki"})
    as_of = sunday_after(MONDAY, 30)
    clean_dir, wild_dir = tmp_path / "clean", tmp_path / "wild"
    clean_dir.mkdir(), wild_dir.mkdir()
    clean_engine, clean_settings = build(clean_dir, rows)
    clean = run_analysis(clean_engine, clean_settings, as_of, pairs=False)
    odd = dict(rows[0], submitted_at=wild)
    wild_engine, wild_settings = build(wild_dir, [odd, *rows])
    with wild_engine.connect() as connection:
        table = load_responses(connection, period="week", as_of=as_of)
    assert table.last_period - table.first_period < 200  # bounded by the history window, not the date
    found = run_analysis(wild_engine, wild_settings, as_of, pairs=False)
    assert [(f.metric, f.segment, f.change_date, f.delta) for f in found.findings] == [
        (f.metric, f.segment, f.change_date, f.delta) for f in clean.findings
    ]
    clean_engine.dispose(), wild_engine.dispose()


def _volume_world(rng: np.random.Generator, weeks: int, low_from: int) -> list[dict[str, str]]:
    """A steady feed whose last weeks (from ``low_from``) carry a fifth of the responses."""
    rows = []
    for k in range(weeks):
        n = 40 if k >= low_from else 200
        rows += week(rng, MONDAY + dt.timedelta(weeks=k), n, 40.0, {"location": LOCATIONS[k % 3]})
    return rows


@pytest.mark.parametrize(("low_weeks", "finding"), [(2, False), (6, True)])
def test_a_holiday_dip_at_the_end_of_the_data_is_no_volume_change_yet(tmp_path, low_weeks, finding):
    weeks = 40
    engine, settings = build(tmp_path, _volume_world(np.random.default_rng(11), weeks, weeks - low_weeks))
    report = run_analysis(engine, settings, sunday_after(MONDAY, weeks), pairs=False)
    volume = [f for f in report.findings if f.metric == "volume"]
    assert bool(volume) is finding, volume
    engine.dispose()
