"""The command line as a user runs it, on both backends."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from monitor.cli.commands import main
from monitor.ingest.readers import CANONICAL_COLUMNS

HEADER = ",".join(CANONICAL_COLUMNS) + ",country"


def _csv(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "in.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def test_help_lists_every_command():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("db", "ingest", "transitions", "demo", "init-db"):
        assert command in result.output
    for path in (["db", "--help"], ["ingest", "--help"], ["transitions", "add", "--help"], ["demo", "--help"]):
        assert CliRunner().invoke(main, path).exit_code == 0


def test_ingest_json_prints_exactly_one_object(cli, tmp_path):
    path = _csv(tmp_path, "R1,2025-03-04T09:00:00Z,I,incident,9,5,,,Finland")
    result = cli.invoke(main, ["ingest", str(path), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert {k: payload[k] for k in ("inserted", "updated", "unchanged", "rejected", "errors")} == {
        "inserted": 1, "updated": 0, "unchanged": 0, "rejected": 0, "errors": []
    }
    again = json.loads(cli.invoke(main, ["ingest", str(path), "--json"]).stdout)
    assert again["unchanged"] == 1 and again["inserted"] == 0


def test_failed_ingest_exits_non_zero_and_says_where(cli, tmp_path):
    path = _csv(tmp_path, "R1,2025-03-04T09:00:00Z,I,incident,11,5,,,Finland")
    result = cli.invoke(main, ["ingest", str(path)])
    assert result.exit_code == 1
    assert f"{path}:2 [rating]" in result.output
    assert "Nothing was written" in result.output
    payload = json.loads(cli.invoke(main, ["ingest", str(path), "--json"]).stdout)
    assert payload["errors"][0] == {"file": str(path), "line": 2, "column": "rating", "message": "must be a whole number from 0 to 10, got 11"}


def test_skip_invalid_prints_the_rejects_path(cli, tmp_path):
    path = _csv(tmp_path, "R1,2025-03-04T09:00:00Z,I,incident,11,5,,,Finland", "R2,2025-03-04T09:00:00Z,I,incident,10,5,,,Finland")
    result = cli.invoke(main, ["ingest", str(path), "--skip-invalid"])
    assert result.exit_code == 0
    assert str(tmp_path / "in.rejects.csv") in result.output
    assert "1 inserted" in result.output and "1 rejected" in result.output


def test_transitions_add_and_list(cli, tmp_path):
    cli.invoke(main, ["ingest", str(_csv(tmp_path, "R1,2025-03-04T09:00:00Z,I,incident,9,5,,,Finland"))])
    added = cli.invoke(main, ["transitions", "add", "MSP go-live", "--go-live", "2025-09-01", "--scope", "country=Finland", "--scope", "country = Sweden", "--description", "Desk to MSP", "--target", "happiness>=70@12w", "--target", "lost_time<=60@8w[country=Finland]"])
    assert added.exit_code == 0, added.output
    assert "no response has country=Sweden" in added.stderr
    listed = json.loads(cli.invoke(main, ["transitions", "list", "--json"]).stdout)
    assert listed == [{
        "name": "MSP go-live", "go_live": "2025-09-01", "scope": {"country": ["Finland", "Sweden"]},
        "description": "Desk to MSP", "baseline_weeks": 12, "observation_weeks": 12,
        "targets": ["happiness>=70@12w", "lost_time<=60@8w[country=Finland]"],
    }]
    duplicate = cli.invoke(main, ["transitions", "add", "MSP go-live", "--go-live", "2025-09-01"])
    assert duplicate.exit_code != 0 and "already exists" in duplicate.output
    bad_date = cli.invoke(main, ["transitions", "add", "X", "--go-live", "01/09/2025"])
    assert bad_date.exit_code == 2 and "--go-live" in bad_date.output
    bad_scope = cli.invoke(main, ["transitions", "add", "Y", "--go-live", "2025-09-01", "--scope", "Finland"])
    assert bad_scope.exit_code == 2 and "dimension=value" in bad_scope.output
    bad_target = cli.invoke(main, ["transitions", "add", "Z", "--go-live", "2025-09-01", "--target", "happiness=70"])
    assert bad_target.exit_code == 2 and "happiness>=70@12w" in bad_target.output


def test_commands_refuse_an_unmigrated_database(tmp_path):
    runner = CliRunner(env={"MSPMON_DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}", "MSPMON_CONFIG": None})
    result = runner.invoke(main, ["transitions", "list"])
    assert result.exit_code == 1 and "mspmon db upgrade" in result.output
    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
    assert runner.invoke(main, ["transitions", "list"]).exit_code == 0


def test_bad_configuration_is_a_usage_error(tmp_path):
    runner = CliRunner(env={"MSPMON_ANONYMITY_MIN_RESPONSES": "many", "MSPMON_CONFIG": None})
    result = runner.invoke(main, ["transitions", "list"])
    assert result.exit_code == 2 and "MSPMON_ANONYMITY_MIN_RESPONSES" in result.output


def test_transitions_import_from_a_file_is_all_or_nothing(cli, tmp_path):
    good = tmp_path / "transitions.toml"
    good.write_text(
        '[[transition]]\nname = "Wave 1"\ngo_live = 2025-09-01\nscope = { country = ["Finland", "Sweden"] }\n'
        'targets = ["happiness>=70@12w", "lost_time<=60@12w"]\n\n'
        '[[transition]]\nname = "Wave 2"\ngo_live = 2025-11-03\nbaseline_weeks = 8\n',
        encoding="utf-8",
    )
    result = cli.invoke(main, ["transitions", "import", str(good)])
    assert result.exit_code == 0, result.output
    listed = {t["name"]: t for t in json.loads(cli.invoke(main, ["transitions", "list", "--json"]).stdout)}
    assert listed["Wave 1"]["targets"] == ["happiness>=70@12w", "lost_time<=60@12w"]
    assert listed["Wave 1"]["scope"] == {"country": ["Finland", "Sweden"]}
    assert listed["Wave 2"]["baseline_weeks"] == 8
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[transition]]\nname = "Wave 3"\ngo_live = 2026-01-05\n\n'
        '[[transition]]\nname = "Wave 4"\ngo_live = "soon"\n',
        encoding="utf-8",
    )
    refused = cli.invoke(main, ["transitions", "import", str(bad)])
    assert refused.exit_code == 1
    assert "transition 2 (Wave 4): go_live must be a date" in refused.output
    names = [t["name"] for t in json.loads(cli.invoke(main, ["transitions", "list", "--json"]).stdout)]
    assert names == ["Wave 1", "Wave 2"]  # Wave 3 was valid but the file was refused whole


def test_analyze_on_an_empty_database_still_reports_transitions_and_targets(cli):
    assert cli.invoke(main, ["transitions", "add", "X", "--go-live", "2025-01-06", "--target", "happiness>=70@12w"]).exit_code == 0
    result = cli.invoke(main, ["analyze", "--as-of", "2026-01-05", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["findings"] == []
    (transition,) = payload["transitions"]
    (target,) = transition["targets"]
    assert (target["status"], target["evidence"]) == ("not_met", "no responses in scope")
    bad = cli.invoke(main, ["analyze", "--as-of", "2025-13-01"])
    assert bad.exit_code == 2 and "--as-of" in bad.output
