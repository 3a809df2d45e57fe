"""Worlds of the scenario family whose misses a rule was written for, end to end
(CSV -> import -> transition -> analysis). Examples only: the family benchmark
(`benchmarks/scenarios.py`) measures the rules over hundreds of random worlds."""

from __future__ import annotations

import datetime as dt

from config import load_settings
from monitor import store
from monitor.analysis.run import run_analysis
from monitor.dev.scenarios import draw_scenario
from monitor.ingest.importer import ingest_files
from monitor.store import db
from monitor.store.models import Transition


def _analysed(seed: int, tmp_path) -> tuple[object, list[dict]]:
    scenario = draw_scenario(seed)
    url = f"sqlite:///{tmp_path / 'world.db'}"
    settings = load_settings(environ={}, overrides={"database_url": url})
    engine = db.make_engine(url)
    try:
        db.upgrade(engine)
        now = dt.datetime.combine(scenario.end + dt.timedelta(days=2), dt.time(12), tzinfo=dt.UTC)
        report = ingest_files(engine, [scenario.write_csv(tmp_path / "responses.csv")], settings,
                              source="scenario", now=now, parallel=False)
        assert report.committed and not report.error_count
        with db.session_scope(engine) as session:
            store.add_transition(session, Transition(name="MSP", go_live=scenario.go_live, scope={}, created_at=now))
        findings = run_analysis(engine, settings, scenario.end + dt.timedelta(days=1)).findings
        return scenario, [f.as_dict() for f in findings]
    finally:
        engine.dispose()


def test_a_lasting_local_dip_under_a_fortnight_of_everyone_is_a_root_of_its_own(tmp_path) -> None:
    """World 142: everyone 14 points down for two weeks and, from the same week, P1 30
    points down for twelve. Everyone's segments were searched only up to everyone's
    own recovery, two weeks, where P1 did not stand out: it was an echo of everyone's
    root. Searched up to the next other change, it is a localized root of its own."""
    scenario, findings = _analysed(142, tmp_path)
    generic, local = (e for e in scenario.effects if e.cls == "co_starting")
    roots = {tuple(sorted(f["segment"].items())): f for f in findings if f["root"] and f["metric"] == "happiness"}
    assert set(roots) == {(), tuple(sorted(local.segment.items()))}
    everyone, part = roots[()], roots[tuple(sorted(local.segment.items()))]
    assert everyone["scope"] == "mixed" and part["scope"] == "localized"
    assert everyone["change_date"][:10] == part["change_date"][:10] == generic.onset.isoformat()
    assert everyone["recovered_on"] is not None and everyone["recovered_on"] < part["recovered_on"]
