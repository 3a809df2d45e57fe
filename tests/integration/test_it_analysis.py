"""IT metrics through the weekly run, on SQLite and PostgreSQL (issue 12)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from monitor import store
from monitor.analysis.health import HealthKind, data_health
from monitor.analysis.run import run_analysis
from monitor.dev.it_world import FIRST_PERIOD, ITEffect, it_world, write_world
from monitor.ingest.importer import ingest_files
from monitor.ingest.tickets import ingest_tickets, link_responses_to_tickets
from monitor.periods import period_start
from monitor.store.models import Transition

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def test_weekly_run_reports_it_findings_notes_targets_and_blind_spots(engine, settings, tmp_path):
    effects = [ITEffect("sla_collapse", "G01", 22), ITEffect("watermelon", "G02", 12), ITEffect("response_fall", "G03", 24)]
    world = it_world(4, effects, periods=36, groups=6, weekly=250.0)
    ticket_file, response_file = write_world(world, tmp_path)
    assert ingest_tickets(engine, [ticket_file], settings, now=NOW).committed
    assert ingest_files(engine, [response_file], settings, now=NOW).committed
    assert link_responses_to_tickets(engine) > 0  # as the CLI does after a response import
    go_live = period_start(FIRST_PERIOD + 22, "week")
    with Session(engine) as session:
        store.add_transition(session, Transition(
            name="MSP", go_live=go_live, scope={}, targets=[{"metric": "sla_met", "op": ">=", "value": 90.0, "weeks": 8,
                                                             "segment": {"assignment_group": "G01"}}],
            created_at=NOW,
        ))
        session.commit()
    as_of = period_start(FIRST_PERIOD + 36, "week")
    report = run_analysis(engine, settings, as_of, pairs=False)
    found = {(f.metric, tuple(f.segment.items())): f for f in report.findings}
    sla = found[("sla_met", (("assignment_group", "G01"),))]
    assert sla.direction == "worse" and abs((sla.change_date - go_live).days) <= 14
    assert sla.notes["happiness"]["status"] == "felt"
    watermelon = found[("happiness", (("assignment_group", "G02"),))]
    assert watermelon.notes["sla"]["status"] == "held" and watermelon.as_dict()["notes"]["sla"]["watermelon"]
    assert ("sla_met", (("assignment_group", "G02"),)) not in found
    assert ("response_rate", (("assignment_group", "G03"),)) in found
    target = report.transitions[0]["targets"][0]
    assert target["status"] == "not_met" and target["value"] < 80
    assert report.transitions[0]["it_metrics"]["sla_met"]["since_go_live"]["n_after"] > 1000
    assert any(flag.kind == "response_rate_low" and flag.segment == {"assignment_group": "G03"} for flag in report.voice)
    with Session(engine) as session:
        health = data_health(session, as_of, min_responses=5)
    assert any(item.kind is HealthKind.RESPONSE_RATE_LOW and "G03" in item.message for item in health)
    # The next week's run keeps the IT findings' identities.
    again = run_analysis(engine, settings, as_of + dt.timedelta(weeks=1), pairs=False)
    assert sla.id in {f.id for f in again.findings}
