"""IT metrics beside the experience on the transition page and the drill-down (issue 12):
one chart with Happiness and SLA met per week, the response rate under it, the report's
before/after table; nothing under the anonymity threshold, no report rows for a scoped viewer."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import insert, select

from config import load_settings
from monitor.analysis.run import run_analysis
from monitor.dev.synthetic import write_csv
from monitor.ingest.importer import ingest_files
from monitor.ingest.tickets import ingest_tickets
from monitor.store import db
from monitor.store.models import Transition, responses
from monitor.store.tickets import tickets
from tests.web.conftest import ANALYSIS_TABLES, TODAY
from web import create_app
from web.demo import DEMO_TRANSITION, demo_scenario


@pytest.fixture(scope="session")
def analysed_with_tickets(tmp_path_factory):
    """The demo survey plus tickets (each answered one, and three times as many unanswered),
    whose SLA falls from 93% to 70% at go-live; analysed once."""
    folder = tmp_path_factory.mktemp("it_analysed")
    url = f"sqlite:///{folder / 'demo.db'}"
    settings = load_settings(environ={}, overrides={"database_url": url})
    engine = db.make_engine(url)
    db.upgrade(engine)
    scenario = demo_scenario(TODAY)
    csv_path = write_csv(folder / "responses.csv", 15_000, seed=11, scenario=scenario)
    assert ingest_files(engine, [csv_path], settings, source="demo").committed
    answers = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    answers = answers[answers["ticket_id"] != ""].drop_duplicates("ticket_id")
    rng = np.random.default_rng(3)
    submitted = pd.to_datetime(answers["submitted_at"], utc=True)
    extra = 3 * len(answers)
    resolved = pd.concat([submitted - pd.Timedelta(hours=2), submitted.sample(extra, replace=True, random_state=1) - pd.Timedelta(hours=5)], ignore_index=True)
    go_live = pd.Timestamp(scenario.go_live, tz="UTC")
    frame = pd.DataFrame({
        "ticket_id": list(answers["ticket_id"]) + [f"X{i}" for i in range(extra)],
        "opened_at": (resolved - pd.Timedelta(hours=30)).dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "resolved_at": resolved.dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sla_met": np.where(rng.random(len(resolved)) < np.where(resolved >= go_live, 0.70, 0.93), "true", "false"),
        "country": list(answers["country"]) + list(rng.choice(answers["country"].unique(), extra)),
    })
    ticket_path = folder / "tickets.csv"
    frame.to_csv(ticket_path, index=False)
    assert ingest_tickets(engine, [ticket_path], settings, source="demo").committed
    with db.session_scope(engine) as session:
        session.add(Transition(name=DEMO_TRANSITION, go_live=scenario.go_live, scope={}, created_at=dt.datetime.now(dt.UTC)))
    run_analysis(engine, settings, TODAY)
    return engine


def _seed(app, source):
    target = app.extensions["mspmon"].engine
    with source.connect() as reader, target.begin() as writer:
        for table in [model.__table__ for model in ANALYSIS_TABLES] + [responses, tickets]:
            rows = [dict(row._mapping) for row in reader.execute(select(table))]
            if rows:
                writer.execute(insert(table), rows)


@pytest.fixture
def it_app(web_settings, analysed_with_tickets):
    made = []

    def make(k: int | None = None):
        settings = web_settings if k is None else dataclasses.replace(web_settings, anonymity_min_responses=k)
        application = create_app(settings, {"TESTING": True})
        if not made:
            _seed(application, analysed_with_tickets)
        made.append(application)
        return application

    yield make
    for application in made:
        application.extensions["mspmon"].engine.dispose()


@pytest.fixture
def app(it_app):  # the ``people`` and ``login`` fixtures use this app
    return it_app()


def test_the_transition_page_shows_sla_beside_happiness_and_the_it_table(app, people, login):
    page = login(people.viewer).get("/transitions/1").text
    section = page[page.index('id="it-trend"'):]
    assert "Happiness and SLA met per week" in section
    assert section.count('class="sla-line"') >= 1 and section.count('class="value-line"') >= 2  # Happiness; response rate
    titles = re.findall(r"SLA met ([\d.]+)% \(95% CI", section)
    assert len(titles) > 20
    assert "Survey response rate per week" in section
    table = page[page.index('id="it-windows"'):]
    row = table[table.index(">SLA met<"):table.index("</tr>", table.index(">SLA met<"))]
    before = float(re.search(r"([\d.]+)%<span", row).group(1))
    assert 90 <= before <= 96 and "Survey response rate" in table


def test_the_drill_down_shows_the_segment_s_it_chart(app, people, login):
    page = login(people.viewer).get("/transitions/1/segments?f=country%3DFinland").text
    assert "Happiness and SLA met per week" in page
    assert 'id="it-windows"' not in page  # the report's table covers the whole transition only
    assert re.search(r"SLA met [\d.]+% \(95% CI [\d.]+ to [\d.]+\), \d+ tickets", page)


def test_nothing_under_the_threshold_and_no_report_rows_for_a_scoped_viewer(it_app, people, login):
    strict = it_app(100_000)
    page = login(people.viewer, on=strict).get("/transitions/1").text
    assert "Happiness and SLA met per week" not in page and 'id="it-windows"' not in page
    scoped = login(people.scoped).get("/transitions/1").text
    assert "Happiness and SLA met per week" in scoped and 'id="it-windows"' not in scoped


def test_a_small_country_s_week_cannot_be_read_off_everyone_minus_the_others(engine, settings, tmp_path):
    """Week 2: Alpha 50 tickets, Beta 40, Gamma 3 (k = 5). Hiding Gamma's week alone
    would leave it as everyone's 93 minus 50 and 40; the pattern hides Beta's too, the
    same for every view, and what the shown weeks leave over is none or k or more."""
    from web import it_figures

    k = 5
    rows = ["ticket_id,opened_at,resolved_at,sla_met,country"]
    number = 0
    for week, sizes in enumerate([{"Alpha": 50, "Beta": 40, "Gamma": 12}, {"Alpha": 50, "Beta": 40, "Gamma": 3},
                                  {"Alpha": 50, "Beta": 40, "Gamma": 12}]):
        day = dt.date(2024, 3, 4) + dt.timedelta(weeks=week)
        for country, size in sizes.items():
            for _ in range(size):
                number += 1
                rows.append(f"T{number},{day}T09:00:00Z,{day}T15:00:00Z,{'true' if number % 3 else 'false'},{country}")
    path = tmp_path / "tickets.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert ingest_tickets(engine, [path], settings).committed
    first, last = dt.date(2024, 3, 4), dt.date(2024, 3, 18)
    with engine.connect() as connection:
        window = it_figures.TicketWindow.read(connection, first, last)
        patterns = it_figures.it_pattern(connection, window, k)

        def shown(conditions):
            points = it_figures.it_weekly(connection, window, conditions, k, patterns)["sla_met"]
            return {p["week"]: p["n"] for p in points}

        views = {country: shown({"country": (country,)}) for country in ("Alpha", "Beta", "Gamma")}
        everyone = shown({})
    week = "2024-03-11"
    assert week not in views["Gamma"] and week not in views["Beta"] and everyone.get(week) == 93
    for day, total in everyone.items():
        left_over = total - sum(view.get(day, 0) for view in views.values())
        assert left_over == 0 or left_over >= k
    assert views["Gamma"]["2024-03-04"] == 12 and views["Beta"]["2024-03-04"] == 40
