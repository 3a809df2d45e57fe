"""Attribution on the reference scenario: one root per planted dip, echoes under it,
the anonymity threshold in every output, and difference-in-differences for a scope."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from monitor import store
from monitor.cli.commands import main
from monitor.store import db
from tests.integration import test_analysis as reference
from tests.integration.test_analysis import AS_OF, GENERIC, LOCALIZED

# The reference scenario's fixtures, built once for this module too.
scenario_db = reference.scenario_db
analysis = reference.analysis


def _invoke(url: str, *args: str, env: dict[str, str] | None = None) -> Any:
    runner = CliRunner(env={"MSPMON_DATABASE_URL": url, "MSPMON_CONFIG": None, **(env or {})})
    return runner.invoke(main, list(args))


def _roots(analysis: dict, metric: str) -> list[dict]:
    return [f for f in analysis["findings"] if f["root"] and f["metric"] == metric]


def _near(finding: dict, day: dt.date, days: int = 21) -> bool:
    return abs((dt.date.fromisoformat(finding["change_date"]) - day).days) <= days


def test_the_localized_dip_is_one_localized_root_naming_the_pair_and_its_factor(analysis):
    roots = [f for f in _roots(analysis, "happiness") if _near(f, LOCALIZED.start)]
    assert len(roots) == 1
    (root,) = roots
    assert root["segment"] == LOCALIZED.segment
    assert root["scope"] == "localized"
    assert root["factors"][0]["factor"] == LOCALIZED.factor
    assert root["factors"][0]["p_value"] < 0.001
    assert any("SAP" in text for text in root["suggestions"])
    # Finland, SAP, locations in Finland x SAP ... are echoes of it, not roots.
    echoes = [f for f in analysis["findings"] if f["root_id"] == root["id"]]
    assert {"country": "Finland"} in [e["segment"] for e in echoes]
    assert sorted(e["id"] for e in echoes) == sorted(root["children"])


def test_the_generic_dip_is_one_generic_root_with_its_segment_dips_folded(analysis):
    roots = [f for f in _roots(analysis, "happiness") if _near(f, GENERIC.start)]
    assert [r["segment"] for r in roots] == [{}]
    assert roots[0]["scope"] == "generic"
    assert GENERIC.factor in [f["factor"] for f in roots[0]["factors"][:2]]
    mix = roots[0]["mix_rate"]
    # Every segment got worse: the change is rate, not a shift in who answered.
    assert abs(mix["rate"]) > 10 * abs(mix["mix"])
    assert mix["rate"] + mix["mix"] == pytest.approx(roots[0]["delta"], abs=3.0)


def test_every_echo_points_at_a_root_and_the_output_lists_it_under_that_root(scenario_db, analysis):
    ids = {f["id"]: f for f in analysis["findings"]}
    echoes = [f for f in analysis["findings"] if not f["root"]]
    assert echoes, "the scenario's dips show in many segments"
    for echo in echoes:
        assert ids[echo["root_id"]]["root"]
        assert echo["id"] in ids[echo["root_id"]]["children"]
    result = _invoke(scenario_db, "analyze", "--as-of", AS_OF.isoformat())
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    root_line = next(i for i, line in enumerate(lines) if line.startswith(echoes[0]["root_id"]))
    echo_line = next(i for i, line in enumerate(lines) if echoes[0]["id"] in line)
    assert echo_line > root_line and lines[echo_line].lstrip().startswith("└")


def test_explain_prints_the_drill_down_of_a_root_and_sends_echoes_to_it(scenario_db, analysis):
    root = next(f for f in _roots(analysis, "happiness") if f["segment"] == LOCALIZED.segment)
    result = _invoke(scenario_db, "explain", root["id"])
    assert result.exit_code == 0, result.output
    assert "drill-down of country Finland x service SAP" in result.output
    assert all(child in result.output for child in root["children"])
    as_json = json.loads(_invoke(scenario_db, "explain", root["id"], "--json").stdout)
    assert as_json["tree"]["segment"] == LOCALIZED.segment
    assert sorted(e["id"] for e in as_json["echoes"]) == sorted(root["children"])
    echo = _invoke(scenario_db, "explain", root["children"][0])
    assert f"echo of {root['id']}" in echo.output
    missing = _invoke(scenario_db, "explain", "Fnope")
    assert missing.exit_code != 0 and "no finding with id 'Fnope'" in missing.output


def _named(node: Any, path: str = "") -> Iterator[tuple[str, dict]]:
    """Every object in a report that names a segment, with where it sits."""
    if isinstance(node, dict):
        if isinstance(node.get("segment"), dict) and node["segment"]:
            yield path, node
        for key, value in node.items():
            yield from _named(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _named(value, f"{path}[{index}]")


def test_no_output_names_a_segment_below_the_anonymity_threshold(scenario_db, tmp_path):
    """With a threshold of 400 responses, every named segment has 400 on each side."""
    copy = tmp_path / "copy.db"
    shutil.copy(Path(scenario_db.removeprefix("sqlite:///")), copy)
    url = f"sqlite:///{copy}"
    env = {"MSPMON_ANONYMITY_MIN_RESPONSES": "400"}
    result = _invoke(url, "analyze", "--as-of", AS_OF.isoformat(), "--json", env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    outputs = [report] + [
        json.loads(_invoke(url, "explain", f["id"], "--json", env=env).stdout) for f in report["findings"] if f["root"]
    ]
    checked = 0
    for output in outputs:
        for path, item in _named(output, output.get("id", "report")):
            if "other" in item["segment"].values():
                continue
            if ".aliases[" in path:
                # Another name of the finding's own respondents: its counts are the finding's, checked there.
                continue
            counts = [item[k] for k in ("n_before", "n_after") if k in item]
            for metrics in (item.get("metrics") or {}).values():
                counts += [metrics["n_before"], metrics["n_after"]]
            assert counts and all(c >= 400 for c in counts), (path, item)
            checked += 1
    assert checked > 20
    # The threshold hides segments, it does not drop their responses: a drill-down
    # still adds up to its total.
    tree = next(f["tree"] for f in report["findings"] if f["root"] and f.get("tree"))
    by_channel = [c for c in tree["children"] if "channel" in c["segment"]]
    assert sum(c["n_after"] for c in by_channel) == tree["n_after"]


def test_a_scoped_transition_reports_difference_in_differences(scenario_db, tmp_path):
    copy = tmp_path / "scoped.db"
    shutil.copy(Path(scenario_db.removeprefix("sqlite:///")), copy)
    url = f"sqlite:///{copy}"
    added = _invoke(url, "transitions", "add", "Finland wave", "--go-live", LOCALIZED.start.isoformat(),
                    "--scope", "country=Finland")
    assert added.exit_code == 0, added.output
    report = json.loads(_invoke(url, "analyze", "--as-of", AS_OF.isoformat(), "--json").stdout)
    (wave,) = [t for t in report["transitions"] if t["name"] == "Finland wave"]
    since = wave["metrics"]["happiness"]["since_go_live"]
    did = since["did"]
    assert did["treated_delta"] == pytest.approx(since["delta"], abs=0.01)
    assert did["estimate"] == pytest.approx(did["treated_delta"] - did["control_delta"], abs=0.02)
    assert did["ci_high"] < 0  # Finland fell beyond what the rest of the company saw
    (unscoped,) = [t for t in report["transitions"] if t["name"] == "MSP"]
    assert "did" not in unscoped["metrics"]["happiness"]["since_go_live"]


def test_current_findings_are_those_the_latest_run_reported(scenario_db, tmp_path):
    """A finding an older run reported but the latest does not is stored, not current."""
    copy = tmp_path / "current.db"
    shutil.copy(Path(scenario_db.removeprefix("sqlite:///")), copy)
    url = f"sqlite:///{copy}"
    early = json.loads(_invoke(url, "analyze", "--as-of", (LOCALIZED.start + dt.timedelta(weeks=8)).isoformat(), "--json").stdout)
    before_onset = json.loads(_invoke(url, "analyze", "--as-of", (LOCALIZED.start - dt.timedelta(days=1)).isoformat(), "--json").stdout)
    engine = db.make_engine(url)
    with db.session_scope(engine) as session:
        current = [f.id for f in store.current_findings(session)]
    engine.dispose()
    assert current == [f["id"] for f in before_onset["findings"]]
    gone = {f["id"] for f in early["findings"]} - set(current)
    assert gone, "findings of the localized dip are not current before its onset"
