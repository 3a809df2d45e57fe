"""The digest's "SLA and experience disagree" section (issue 12): Happiness findings
whose SLA held (SLA green, experience red) and SLA findings nobody felt, each with both
figures and their intervals, in the text and the HTML; agreeing ones stay out."""

from __future__ import annotations

import pytest

from monitor.store import db
from notifications.outbox import preview
from notifications.render import render_html, render_text
from notifications.subscriptions import add_subscription
from tests.notifications.conftest import NOW, add_finding

pytestmark = pytest.mark.usefixtures("survey")


def _sla_note(status: str) -> dict:
    return {"before": 94.2, "before_ci": [93.1, 95.2], "after": 93.8, "after_ci": [92.4, 95.0], "delta": -0.4,
            "ci": [-2.1, 1.3], "n_before": 2400, "n_after": 1100, "status": status, "watermelon": status == "held"}


def _happiness_note(status: str) -> dict:
    return {"before": 41.0, "before_ci": [36.5, 45.2], "after": 40.2, "after_ci": [35.0, 45.1], "delta": -0.8,
            "ci": [-7.5, 5.9], "n_before": 500, "n_after": 240, "status": status}


def test_the_disconnect_section_shows_both_figures_with_intervals(mail_engine, mail_settings):
    with db.session_scope(mail_engine) as session:
        add_finding(session, "Fmelon", "happiness", {"assignment_group": "MSP-Europe-L1"}, notes={"sla": _sla_note("held")})
        add_finding(session, "Fbroke", "happiness", {"assignment_group": "MSP-Europe-L2"}, notes={"sla": _sla_note("broke")})
        add_finding(session, "Funfelt", "sla_met", {"assignment_group": "MSP-Europe-L2"}, before=93.0, after=61.0,
                    delta=-32.0, ci_low=-35.0, ci_high=-29.0, notes={"happiness": _happiness_note("not_felt")})
        add_finding(session, "Ffelt", "sla_met", {"assignment_group": "MSP-Europe-L1"}, before=93.0, after=61.0,
                    delta=-32.0, ci_low=-35.0, ci_high=-29.0, notes={"happiness": _happiness_note("felt")})
        add_subscription(session, name="all", recipients=["a@example.com"])
    with db.session_scope(mail_engine) as session:
        ((_, content),) = preview(session, mail_settings, NOW)
    assert [(d.kind, d.id) for d in content.disconnects] == [("sla_held", "Fmelon"), ("not_felt", "Funfelt")]
    melon = content.disconnects[0]
    assert (melon.experience.metric, melon.experience.delta.value, melon.experience.delta.low) == ("happiness", -30.0, -36.0)
    assert (melon.sla.before, melon.sla.before_ci, melon.sla.after_ci) == (94.2, (93.1, 95.2), (92.4, 95.0))
    unfelt = content.disconnects[1]
    assert (unfelt.sla.delta.value, unfelt.experience.delta.low, unfelt.experience.delta.high) == (-32.0, -7.5, 5.9)

    text = render_text(content)
    section = text[text.index("SLA AND EXPERIENCE DISAGREE"):]
    assert "SLA green, experience red: assignment group MSP-Europe-L1, since 2026-10-26" in section
    assert "SLA met 94.2 [93.1, 95.2] -> 93.8 [92.4, 95.0]%" in section
    assert "Happiness +50.0 -> +20.0 pts, change \u221230.0 (95% CI \u221236.0 to \u221224.0)" in section
    assert "SLA broke, people did not mind" in section
    assert "Happiness +41.0 [+36.5, +45.2] -> +40.2 [+35.0, +45.1] pts, change \u22120.8 (95% CI \u22127.5 to +5.9)" in section
    assert "Fbroke" not in section and "Ffelt" not in section
    html = render_html(content)
    assert "SLA and experience disagree" in html and "SLA green, experience red" in html
    assert "[92.4, 95.0]" in html and "SLA broke, people did not mind" in html and "/findings/Funfelt" in html


def test_no_section_without_a_disconnect(mail_engine, mail_settings):
    with db.session_scope(mail_engine) as session:
        add_finding(session, "Fbroke", "happiness", {"assignment_group": "MSP-Europe-L2"}, notes={"sla": _sla_note("broke")})
        add_finding(session, "Fbare", "happiness", {"assignment_group": "MSP-Europe-L1"})
        add_subscription(session, name="all", recipients=["a@example.com"])
    with db.session_scope(mail_engine) as session:
        ((_, content),) = preview(session, mail_settings, NOW)
    assert content.disconnects == ()
    assert "SLA AND EXPERIENCE DISAGREE" not in render_text(content)
    assert "SLA and experience disagree" not in render_html(content)
