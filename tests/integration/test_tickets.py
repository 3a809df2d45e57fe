"""Tickets and profiled imports end to end, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest
from sqlalchemy import text

from monitor.analysis.it_metrics import it_metrics_table
from monitor.cli.commands import main
from monitor.ingest.profiled import ingest_with_profile
from monitor.ingest.profiles import parse_profile, resolve_profile
from monitor.ingest.tickets import ingest_tickets, link_responses_to_tickets

NOW = dt.datetime(2016, 6, 1, tzinfo=dt.UTC)
HEADER = "number,sys_mod_count,sys_updated_at,opened_at,resolved_at,closed_at,priority,made_sla,reassignment_count,reopen_count,contact_type,assignment_group,location,category,subcategory,caller_id,opened_by\n"
EVENTS = [
    "INC1,0,29/2/2016 01:23,29/2/2016 01:16,?,?,3 - Moderate,true,0,0,Phone,Group 56,Loc 1,Cat 1,Sub 1,Caller 1,Opener 1",
    "INC1,2,29/2/2016 11:29,29/2/2016 01:16,29/2/2016 11:29,?,3 - Moderate,true,1,0,Phone,Group 70,Loc 1,Cat 1,Sub 1,Caller 1,Opener 1",
    "INC1,1,29/2/2016 11:29,29/2/2016 01:16,?,?,3 - Moderate,true,1,0,Phone,Group 60,Loc 1,Cat 1,Sub 1,Caller 1,Opener 1",
    "INC2,0,1/3/2016 09:00,1/3/2016 08:00,1/3/2016 20:00,?,2 - High,false,0,1,Self service,Group 24,Loc 2,Cat 2,Sub 2,Caller 2,Opener 2",
]


@pytest.fixture
def keyed(settings):
    return dataclasses.replace(settings, pseudonym_key="k" * 24)


def write(path, lines, header=HEADER):
    path.write_text(header + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def rows(engine, sql):
    with engine.connect() as connection:
        return [tuple(r) for r in connection.execute(text(sql))]


def test_event_log_keeps_the_latest_version_idempotently(engine, keyed, tmp_path):
    log = write(tmp_path / "incidents.csv", EVENTS)
    profile = resolve_profile("servicenow_incident", {})
    report = ingest_tickets(engine, [log], keyed, profile, now=NOW)
    assert report.committed and (report.inserted, report.updated, report.unchanged) == (2, 0, 0)
    stored = rows(engine, "SELECT ticket_id, reassignment_count, reopen_count, sla_met, priority, caller FROM tickets ORDER BY ticket_id")
    assert [r[:5] for r in stored] == [("INC1", 1, 0, True, "3 - Moderate"), ("INC2", 0, 1, False, "2 - High")]
    assert all(r[5] and "Caller" not in r[5] and len(r[5]) == 16 for r in stored)  # hashed, never in clear
    groups = rows(engine, "SELECT v.value FROM tickets t JOIN dimensions d ON d.name = 'assignment_group' JOIN dimension_values v ON v.id = (CASE d.slot WHEN 1 THEN t.d01 END) ORDER BY t.ticket_id")
    assert groups == [("Group 70",), ("Group 24",)]  # mod count 2 beats 1 at the same update time
    assert rows(engine, "SELECT value FROM dimension_values WHERE value LIKE 'Opener%' OR value LIKE 'Caller%'") == []
    again = ingest_tickets(engine, [log], keyed, profile, now=NOW)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)
    # A newer export updates; an older one never rolls a ticket back.
    newer = write(tmp_path / "newer.csv", ["INC2,1,2/3/2016 09:00,1/3/2016 08:00,1/3/2016 20:00,2/3/2016 09:00,2 - High,false,0,2,Email,Group 24,Loc 2,Cat 2,Sub 2,Caller 2,Opener 2"])
    assert ingest_tickets(engine, [newer], keyed, profile, now=NOW).updated == 1
    assert ingest_tickets(engine, [log], keyed, profile, now=NOW).updated == 0
    assert rows(engine, "SELECT reopen_count FROM tickets WHERE ticket_id = 'INC2'") == [(2,)]


def test_bad_ticket_rows_write_nothing_and_name_line_and_source_column(engine, keyed, tmp_path):
    bad = EVENTS[:3] + [
        "INC2,0,1/3/2016 09:00,1/3/2016 08:00,29/2/2016 20:00,?,2 - High,maybe,x,1,Phone,G,L,C,S,Caller 2,O",
    ]
    path = write(tmp_path / "bad.csv", bad)
    report = ingest_tickets(engine, [path], keyed, resolve_profile("servicenow_incident", {}), now=NOW)
    assert not report.committed
    found = {(e.line, e.column) for e in report.errors}
    assert found == {(5, "resolved_at"), (5, "made_sla"), (5, "reassignment_count")}
    assert all(e.file == str(path) for e in report.errors)
    assert rows(engine, "SELECT COUNT(*) FROM tickets") == [(0,)]
    assert rows(engine, "SELECT COUNT(*) FROM dimensions") == [(0,)]


def test_hashing_people_needs_a_key(engine, settings, tmp_path):
    path = write(tmp_path / "incidents.csv", EVENTS)
    with pytest.raises(Exception, match="MSPMON_PSEUDONYM_KEY"):
        ingest_tickets(engine, [path], settings, resolve_profile("servicenow_incident", {}), now=NOW)


def test_responses_join_their_ticket_and_inherit_dimensions(engine, keyed, tmp_path):
    ingest_tickets(engine, [write(tmp_path / "i.csv", EVENTS)], keyed, resolve_profile("servicenow_incident", {}), now=NOW)
    survey = tmp_path / "survey.csv"
    survey.write_text(
        "instance,metric,actual_value,string_value,user,sys_created_on,trigger_id\n"
        "AI1,Overall satisfaction,4,,Abel,1/3/2016 10:00:00,INC1\n"
        "AI1,Comments,-1,Slow answer,Abel,1/3/2016 10:00:00,INC1\n"
        "AI1,What could be improved,-1,Speed,Abel,1/3/2016 10:00:00,INC1\n"
        "AI1,What could be improved,-1,Knowledge,Abel,1/3/2016 10:00:00,INC1\n"
        "AI2,Overall satisfaction,1,,Bea,2/3/2016 10:00:00,INC2\n",
        encoding="utf-8",
    )
    report = ingest_with_profile(engine, [survey], keyed, resolve_profile("servicenow_survey", {}), now=NOW)
    assert report.committed and report.inserted == 2
    assert link_responses_to_tickets(engine) > 0
    got = rows(engine, "SELECT r.response_id, r.rating, r.comment, r.factors, v.value FROM responses r JOIN dimensions d ON d.name = 'assignment_group' JOIN dimension_values v ON v.id = r.d01 ORDER BY r.response_id")
    assert [(a, b, c, f if isinstance(f, list) else json.loads(f), g) for a, b, c, f, g in got] == [
        ("AI1", 8, "Slow answer", ["Speed", "Knowledge"], "Group 70"),
        ("AI2", 0, "", [], "Group 24"),
    ]
    table = it_metrics_table(engine, period="week", as_of=dt.date(2016, 3, 20))
    by_metric = {r.metric: r for r in table.itertuples()}
    assert by_metric["resolved_volume"].value == 2 and by_metric["survey_response_rate"].value == 100.0
    assert by_metric["median_resolution_hours"].value == pytest.approx((10 + 13 / 60 + 12) / 2)
    assert by_metric["feedback_delay_hours"].value == pytest.approx(((22 + 31 / 60) + 14) / 2)


def test_profiled_responses_errors_name_source_columns_and_nothing_is_written(engine, settings, tmp_path):
    profile = parse_profile("p", {
        "columns": {"Id": "response_id", "When": "submitted_at", "Stars": "rating", "Minutes": "lost_time_minutes", "Why": "factors"},
        "dimensions": {"Channel": "channel"},
        "date_formats": ["%d/%m/%Y %H:%M"], "missing": ["?", "N/A"], "rating": {"scale": "1-5"}, "factor_separator": "|",
        "value_maps": {"Channel": {"Teams": "Chat", "IM": "Chat"}}, "people": {"user": "drop"},
    })
    path = tmp_path / "s.csv"
    path.write_text("Id,When,Stars,Minutes,Why,Channel,user\nA1,29/2/2016 01:16,5,N/A,slow|rude,Teams,bob\nA2,1/3/2016 13:00,9,-5,,IM,al\nA2,1/13/2016 13:00,3,,,IM,al\n", encoding="utf-8")
    report = ingest_with_profile(engine, [path], settings, profile, now=NOW)
    assert not report.committed
    assert {(e.line, e.column) for e in report.errors} == {(3, "Stars"), (3, "Minutes"), (4, "When")}
    assert rows(engine, "SELECT COUNT(*) FROM responses") == [(0,)]
    path.write_text("Id,When,Stars,Minutes,Why,Channel,user\nA1,29/2/2016 01:16,5,N/A,slow|rude,Teams,bob\nA2,1/3/2016 13:00,4,?,,IM,al\nA2,1/3/2016 13:00,4,?,,IM,al\n", encoding="utf-8")
    report = ingest_with_profile(engine, [path], settings, profile, now=NOW)
    assert [(e.line, e.column) for e in report.errors] == [(4, "Id")]  # duplicate, named by the source column
    path.write_text("Id,When,Stars,Minutes,Why,Channel,user\nA1,29/2/2016 01:16,5,N/A,slow|rude,Teams,bob\nA2,1/3/2016 13:00,4,?,,IM,al\n", encoding="utf-8")
    report = ingest_with_profile(engine, [path], settings, profile, now=NOW)
    assert report.committed and report.inserted == 2
    assert rows(engine, "SELECT response_id, rating, lost_time_minutes FROM responses ORDER BY response_id") == [("A1", 10, None), ("A2", 8, None)]
    assert rows(engine, "SELECT DISTINCT v.value FROM dimension_values v") == [("Chat",)]
    assert ingest_with_profile(engine, [path], settings, profile, now=NOW).unchanged == 2


def test_xlsx_through_a_profile(engine, settings, tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Answers"
    sheet.append(["Id", "When", "Score"])
    sheet.append(["X1", dt.datetime(2016, 3, 1, 10, 0), 95])
    sheet.append(["X2", "1/3/2016 11:00", 101])
    path = tmp_path / "answers.xlsx"
    workbook.save(path)
    profile = parse_profile("x", {"columns": {"Id": "response_id", "When": "submitted_at", "Score": "rating"}, "rating": {"scale": "0-100"}, "date_formats": ["%d/%m/%Y %H:%M"], "sheet": "Answers"})
    report = ingest_with_profile(engine, [path], settings, profile, now=NOW)
    assert not report.committed and [(e.line, e.column) for e in report.errors] == [(3, "Score")]
    sheet.cell(row=3, column=3, value=64)
    workbook.save(path)
    report = ingest_with_profile(engine, [path], settings, profile, now=NOW)
    assert report.committed and rows(engine, "SELECT response_id, rating FROM responses ORDER BY response_id") == [("X1", 10), ("X2", 6)]


def test_cli_suggest_then_import_tickets(cli, tmp_path):
    path = write(tmp_path / "incidents.csv", EVENTS)
    suggested = cli.invoke(main, ["ingest", "--suggest-profile", str(path)])
    assert suggested.exit_code == 0, suggested.output
    assert 'kind = "tickets"' in suggested.output and '"%d/%m/%Y %H:%M"' in suggested.output
    assert 'latest = { key = ["number"]' in suggested.output and '"opened_by" = "drop"' in suggested.output
    profile_path = tmp_path / "p.toml"
    profile_path.write_text(suggested.output, encoding="utf-8")
    env = {"MSPMON_PSEUDONYM_KEY": "k" * 24}
    result = cli.invoke(main, ["ingest", "--profile", str(profile_path), str(path), "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["inserted"] == 2
    bad = cli.invoke(main, ["ingest", "--profile", "servicenow_incident", "--kind", "responses", str(path)], env=env)
    assert bad.exit_code == 2 and "does not match profile" in bad.output
    metrics = cli.invoke(main, ["it-metrics", "--as-of", "2016-03-20", "--json"])
    assert metrics.exit_code == 0 and {r["metric"] for r in json.loads(metrics.output)["rows"]} >= {"sla_met_rate", "reopen_rate"}
