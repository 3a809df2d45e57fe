"""`mspmon analyze` on the synthetic scenario: planted dips found, noise quiet, ids stable."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from config import load_settings
from monitor.analysis.run import run_analysis
from monitor.cli.commands import main
from monitor.dev.synthetic import default_scenario, write_csv
from monitor.ingest.importer import ingest_files
from monitor.store import db

SCENARIO = default_scenario()
AS_OF = SCENARIO.end + dt.timedelta(days=1)
LOCALIZED = SCENARIO.effect("localized_dip")
GENERIC = SCENARIO.effect("generic_dip")
FINDING_KEYS = {
    "id", "metric", "segment", "change_date", "direction", "before", "after", "delta",
    "ci_low", "ci_high", "n_before", "n_after", "recovered_on", "transition",
}


def _load(url: str, tmp_path: Path, rows: int) -> None:
    engine = db.make_engine(url)
    db.upgrade(engine)
    settings = load_settings(environ={}, overrides={"database_url": url})
    report = ingest_files(engine, [write_csv(tmp_path / "r.csv", rows, seed=11)], settings, source="survey")
    assert report.committed
    engine.dispose()


@pytest.fixture(scope="module")
def scenario_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The reference scenario at demo size, with its transition, analysed once."""
    folder = tmp_path_factory.mktemp("scenario")
    url = f"sqlite:///{folder / 'scenario.db'}"
    _load(url, folder, 60_000)
    runner = CliRunner(env={"MSPMON_DATABASE_URL": url, "MSPMON_CONFIG": None})
    added = runner.invoke(
        main, ["transitions", "add", "MSP", "--go-live", SCENARIO.go_live.isoformat(), "--target", "happiness>=45@12w"]
    )
    assert added.exit_code == 0, added.output
    return url


@pytest.fixture(scope="module")
def analysis(scenario_db: str) -> dict:
    runner = CliRunner(env={"MSPMON_DATABASE_URL": scenario_db, "MSPMON_CONFIG": None})
    result = runner.invoke(main, ["analyze", "--as-of", AS_OF.isoformat(), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _findings(analysis: dict, metric: str, segment: dict) -> list[dict]:
    return [f for f in analysis["findings"] if f["metric"] == metric and f["segment"] == segment]


def _days(a: str, b: dt.date) -> int:
    return abs((dt.date.fromisoformat(a) - b).days)


def test_json_has_the_documented_shape(analysis):
    assert analysis["as_of"] == AS_OF.isoformat()
    assert analysis["findings"], "the scenario has planted dips"
    for finding in analysis["findings"]:
        assert FINDING_KEYS <= set(finding)
        assert finding["direction"] == "worse"
        assert finding["ci_low"] <= finding["delta"] <= finding["ci_high"]
        assert min(finding["n_before"], finding["n_after"]) >= 30
        assert finding["metric"] in {"happiness", "lost_time", "volume"} or finding["metric"].startswith("factor:")
    (transition,) = analysis["transitions"]
    assert transition["name"] == "MSP"
    early = transition["metrics"]["happiness"]["early"]
    assert {"before", "after", "delta", "ci_low", "ci_high", "n_before", "n_after"} <= set(early)


def test_generic_go_live_dip_is_found_overall_at_the_go_live(analysis):
    (dip,) = _findings(analysis, "happiness", {})
    assert _days(dip["change_date"], GENERIC.start) <= 7
    assert dip["delta"] <= -10 and dip["ci_high"] < 0
    assert dip["transition"] == "MSP"
    assert dip["recovered_on"] is not None  # the generic dip recovers in the scenario


def test_localized_dip_and_its_factor_are_found_in_the_planted_cell(analysis):
    cell = LOCALIZED.segment
    (dip,) = _findings(analysis, "happiness", cell)
    assert _days(dip["change_date"], LOCALIZED.start) <= 14
    assert dip["delta"] <= -25
    (factor,) = _findings(analysis, f"factor:{LOCALIZED.factor}", cell)
    assert factor["delta"] >= 20
    assert factor["recovered_on"] is None


def test_noise_tiny_segments_and_improvements_are_not_findings(analysis):
    tiny = SCENARIO.effect("tiny_segment").segment
    improved = SCENARIO.effect("improvement").segment
    for finding in analysis["findings"]:
        assert not set(tiny.items()) <= set(finding["segment"].items())
        assert not (finding["metric"] == "happiness" and finding["segment"] == improved)
    # Nothing before any planted effect began: two quiet quarters of data produce no finding.
    first_effect = min(e.start for e in SCENARIO.effects if e.kind != "tiny_segment")
    assert all(dt.date.fromisoformat(f["change_date"]) >= first_effect - dt.timedelta(weeks=2) for f in analysis["findings"])


def test_transition_comparison_and_target(analysis):
    (transition,) = analysis["transitions"]
    happiness = transition["metrics"]["happiness"]
    assert happiness["early"]["delta"] < -10 and happiness["early"]["ci_high"] < 0
    lost = transition["lost_time_distribution"]
    for window in ("baseline", "early"):
        for kind in ("mean", "median"):
            estimate = lost[window][kind]
            assert estimate["ci"][0] <= estimate["value"] <= estimate["ci"][1] and estimate["n"] > 0
    assert lost["early"]["median"]["value"] > lost["baseline"]["median"]["value"]  # the go-live cost time
    (target,) = transition["targets"]
    assert target["target"] == "happiness>=45@12w"
    assert target["status"] in {"met", "not_met"}  # the deadline has passed
    assert (target["status"] == "met") == (target["value"] >= 45)


def test_ids_are_stable_across_weekly_runs_and_replays_see_the_past(scenario_db, analysis):
    settings = load_settings(environ={}, overrides={"database_url": scenario_db})
    engine = db.make_engine(scenario_db)
    cell = LOCALIZED.segment
    (original,) = _findings(analysis, "happiness", cell)
    later = run_analysis(engine, settings, AS_OF + dt.timedelta(weeks=1))
    assert [f.id for f in later.findings if f.metric == "happiness" and f.segment == cell] == [original["id"]]
    # Replaying the week before the localized onset: it had not happened yet.
    before = run_analysis(engine, settings, LOCALIZED.start - dt.timedelta(days=1))
    assert not [f for f in before.findings if f.segment == cell]
    # Six weeks after the onset it has, with the same identity as today.
    soon = run_analysis(engine, settings, LOCALIZED.start + dt.timedelta(weeks=6))
    assert [f.id for f in soon.findings if f.metric == "happiness" and f.segment == cell] == [original["id"]]
    engine.dispose()


def test_plain_output_is_a_readable_table(scenario_db):
    runner = CliRunner(env={"MSPMON_DATABASE_URL": scenario_db, "MSPMON_CONFIG": None})
    result = runner.invoke(main, ["analyze", "--as-of", AS_OF.isoformat(), "--no-pairs"])
    assert result.exit_code == 0, result.output
    assert "Transition MSP" in result.output
    assert "happiness" in result.output and "everyone" in result.output


def test_analysis_runs_on_postgresql_too(database_url, tmp_path):
    _load(database_url, tmp_path, 20_000)
    settings = load_settings(environ={}, overrides={"database_url": database_url})
    engine = db.make_engine(database_url)
    report = run_analysis(engine, settings, AS_OF, pairs=False)
    engine.dispose()
    (dip,) = [f for f in report.findings if f.metric == "happiness" and f.segment == {}]
    assert abs((dip.change_date - GENERIC.start).days) <= 7


def test_weekly_replays_keep_one_id_and_one_date(scenario_db):
    """Runs at onset+2..+8 weeks: the go-live dip is one finding with one id, dated within a week."""
    settings = load_settings(environ={}, overrides={"database_url": scenario_db})
    engine = db.make_engine(scenario_db)
    seen = []
    for weeks in range(2, 9):
        report = run_analysis(engine, settings, GENERIC.start + dt.timedelta(weeks=weeks, days=-1), pairs=False)
        overall = [f for f in report.findings if f.metric == "happiness" and f.segment == {}]
        assert len(overall) == 1, (weeks, overall)
        seen.append((overall[0].id, overall[0].change_date))
    engine.dispose()
    assert len({fid for fid, _ in seen}) == 1, seen
    dates = [date for _, date in seen]
    assert max(dates) - min(dates) <= dt.timedelta(days=7), seen
    assert all(abs((date - GENERIC.start).days) <= 7 for _, date in seen)
