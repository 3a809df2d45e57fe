"""What a digest says: lifecycle sections, labels, silences, scope and anonymity."""

from __future__ import annotations

import datetime as dt

import pytest

from monitor.analysis.lifecycle import add_silence, label_finding
from monitor.store import db
from monitor.store.models import Finding
from notifications.outbox import preview, send_due
from notifications.subscriptions import add_subscription
from tests.notifications.conftest import AS_OF, NOW, add_finding

pytestmark = pytest.mark.usefixtures("survey")

L1 = {"assignment_group": ["MSP-Europe-L1"]}


def _sections(engine, settings, name: str, now: dt.datetime = NOW) -> dict[str, list[str]]:
    with db.session_scope(engine) as session:
        ((_, content),) = [(s, c) for s, c in preview(session, settings, now) if s.name == name]
        return {
            "new": [f.id for f in content.new + content.more_new],
            "ongoing": [f.id for f in content.ongoing],
            "recovered": [f.id for f in content.recovered],
            "health": list(content.health),
        }


def test_new_then_still_open_then_recovered_once(mail_engine, mail_settings, smtp):
    with db.session_scope(mail_engine) as session:
        add_finding(session, "Fopen", "happiness", {"service": "SAP"})
        add_subscription(session, name="all", recipients=["a@example.com"])
    send_due(mail_engine, mail_settings, NOW)
    assert "Happiness fell 30.0 points" in smtp.received[0].get_body(("plain",)).get_content()
    week = dt.timedelta(weeks=1)
    assert _sections(mail_engine, mail_settings, "all", NOW + week)["ongoing"] == ["Fopen"]
    with db.session_scope(mail_engine) as session:  # the next analysis saw it recover
        finding = session.get(Finding, "Fopen")
        finding.recovered_on, finding.state = AS_OF + week, "recovered"
    send_due(mail_engine, mail_settings, NOW + week)
    body = smtp.received[-1].get_body(("plain",)).get_content()
    assert len(smtp.received) == 2 and "RECOVERED" in body and "back to its level since" in body
    assert _sections(mail_engine, mail_settings, "all", NOW + 2 * week)["recovered"] == []


def test_echoes_false_alarms_and_new_normals_stay_out_expected_is_marked(mail_engine, mail_settings):
    with db.session_scope(mail_engine) as session:
        add_finding(session, "Froot", "happiness", {"service": "SAP"})
        add_finding(session, "Fecho", "happiness", {"service": "SAP", "country": "Finland"}, root=False, root_id="Froot")
        for finding_id, label in (("Ffalse", "false_alarm"), ("Fnormal", "new_normal"), ("Fexpected", "expected")):
            add_finding(session, finding_id, "lost_time", {"channel": finding_id}, before=50, after=80, delta=30,
                        ci_low=20, ci_high=40)
            session.flush()
            label_finding(session, finding_id, label, author="tm", now=NOW)
        add_subscription(session, name="all", recipients=["a@example.com"])
    with db.session_scope(mail_engine) as session:
        ((_, content),) = preview(session, mail_settings, NOW)
        shown = {f.id: f for f in content.new}
    assert set(shown) == {"Froot", "Fexpected"}
    assert shown["Fexpected"].expected and not shown["Froot"].expected
    assert shown["Froot"].related == 1


def test_a_silence_keeps_a_finding_out_until_it_expires(mail_engine, mail_settings):
    with db.session_scope(mail_engine) as session:
        add_finding(session, "Fmuted", "happiness", {"service": "SAP", "country": "Finland"})
        session.flush()
        add_silence(session, until=dt.date(2026, 12, 1), reason="known, fix planned", author="tm",
                    segment={"service": "SAP"}, today=AS_OF, now=NOW)
        add_subscription(session, name="all", recipients=["a@example.com"])
    assert _sections(mail_engine, mail_settings, "all")["new"] == []
    assert _sections(mail_engine, mail_settings, "all", NOW + dt.timedelta(weeks=2))["new"] == ["Fmuted"]


def test_a_slice_gets_exactly_the_findings_a_viewer_with_that_scope_gets(mail_engine, mail_settings):
    """One rule (``monitor.scope.finding_in_scope``): the finding's own segment inside the slice.

    A generic dip on everyone and a finding on service SAP whose named segment is the
    slice used to reach the L1 digest, which a viewer scoped to L1 got 404 for; now
    neither does. An echo inside the slice whose root lies outside stands on its own.
    """
    inside = {"segments": [{"segment": {"assignment_group": "MSP-Europe-L1"}, "share": 0.8, "n_before": 300, "n_after": 300}]}
    with db.session_scope(mail_engine) as session:
        add_finding(session, "Finside", "happiness", {"assignment_group": "MSP-Europe-L1", "country": "Sweden"})
        add_finding(session, "Fgeneric", "happiness", {}, scope="generic")
        add_finding(session, "Fnamed", "lost_time", {"service": "SAP"}, scope="localized", attribution=inside,
                    before=50, after=80, delta=30, ci_low=20, ci_high=40)
        add_finding(session, "Fecho", "lost_time", {"service": "SAP", "assignment_group": "MSP-Europe-L1"},
                    root=False, root_id="Fnamed", before=50, after=80, delta=30, ci_low=20, ci_high=40)
        add_finding(session, "Fother", "happiness", {"assignment_group": "MSP-SAP-L2"})
        add_subscription(session, name="L1", recipients=["am@example.com"], segments=L1)
        add_subscription(session, name="L1 happiness, high", recipients=["am@example.com"], segments=L1,
                         metrics=["happiness"], min_severity="high")
        add_subscription(session, name="all", recipients=["tm@example.com"])
    assert sorted(_sections(mail_engine, mail_settings, "L1")["new"]) == ["Fecho", "Finside"]
    assert sorted(_sections(mail_engine, mail_settings, "L1 happiness, high")["new"]) == ["Finside"]
    # Everyone: the echo folds into its root, as on the web view.
    assert sorted(_sections(mail_engine, mail_settings, "all")["new"]) == ["Fgeneric", "Finside", "Fnamed", "Fother"]
    from monitor.scope import (  # the web view's ``params.visible`` calls it too
        Scope,
        finding_in_scope,
    )

    shown = set(_sections(mail_engine, mail_settings, "L1")["new"])
    with db.session_scope(mail_engine) as session:
        for finding in session.query(Finding):
            assert finding_in_scope(Scope.of(L1), finding.segment) == (finding.id in shown), finding.id


def test_an_ended_finding_is_said_once_and_never_still_open(mail_engine, mail_settings, smtp):
    with db.session_scope(mail_engine) as session:
        add_finding(session, "Fends", "happiness", {"service": "SAP"})
        add_finding(session, "Fquiet", "happiness", {"service": "Printing"}, state="ended",
                    ended_on=AS_OF, ended_reason="no responses for 4 weeks")
        add_subscription(session, name="all", recipients=["a@example.com"])
    send_due(mail_engine, mail_settings, NOW)
    first = smtp.received[0].get_body(("plain",)).get_content()
    assert "Printing" not in first  # ended before anyone was told: nothing to close
    week = dt.timedelta(weeks=1)
    with db.session_scope(mail_engine) as session:  # the next analysis saw its segment stop answering
        finding = session.get(Finding, "Fends")
        finding.state, finding.ended_on, finding.ended_reason = "ended", AS_OF + week, "no responses for 4 weeks"
    send_due(mail_engine, mail_settings, NOW + week)
    body = smtp.received[-1].get_body(("plain",)).get_content()
    html = smtp.received[-1].get_body(("html",)).get_content()
    assert "ENDED" in body and f"ended {(AS_OF + week).isoformat()}" in body and "still open" not in body
    assert "Ended" in html
    sections = _sections(mail_engine, mail_settings, "all", NOW + 2 * week)
    assert sections["ongoing"] == [] and sections["new"] == []
    with db.session_scope(mail_engine) as session:
        ((_, content),) = [(s, c) for s, c in preview(session, mail_settings, NOW + 2 * week)]
        assert content.ended == ()  # said once


def test_anonymity_holds_for_findings_named_segments_and_new_values(mail_engine, mail_settings, tmp_path):
    few = mail_settings.anonymity_min_responses - 1
    segments = {"segments": [
        {"segment": {"location": "Tiny office"}, "share": 0.5, "n_before": 40, "n_after": few},
        {"segment": {"location": "Big office"}, "share": 0.5, "n_before": 400, "n_after": 300},
    ]}
    with db.session_scope(mail_engine) as session:
        add_finding(session, "Fsmall", "happiness", {"location": "Tiny office"}, n_after=few)
        add_finding(session, "Fbig", "happiness", {"service": "SAP"}, attribution=segments)
        add_subscription(session, name="all", recipients=["a@example.com"])
    _ingest_new_values(mail_engine, mail_settings, tmp_path, {"Brand-new desk": few, "Busy new desk": 12})
    with db.session_scope(mail_engine) as session:
        ((_, content),) = preview(session, mail_settings, NOW)
    assert [f.id for f in content.new] == ["Fbig"]
    assert [s.label for s in content.new[0].segments] == ["location Big office"]
    (new_values,) = [h for h in content.health if h.startswith("New")]
    assert "Busy new desk" in new_values and "Brand-new desk" not in new_values and "1 more" in new_values


def _ingest_new_values(engine, settings, tmp_path, counts: dict[str, int]) -> None:
    """Responses in the last complete week from assignment groups never seen before."""
    from monitor.ingest.importer import ingest_files
    from monitor.ingest.readers import CANONICAL_COLUMNS

    rows = [",".join(CANONICAL_COLUMNS) + ",assignment_group"]
    for group, n in counts.items():
        rows += [f"N{group[:4]}{i},2026-11-18T10:00:00Z,T,incident,8,10,,,{group}" for i in range(n)]
    path = tmp_path / "new.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert ingest_files(engine, [path], settings, source="new").committed
