"""``mspmon subscriptions``, ``mspmon digest`` as a user runs them."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from monitor.cli.commands import main

pytestmark = pytest.mark.usefixtures("survey")


@pytest.fixture
def runner(mail_settings) -> CliRunner:
    env = {"MSPMON_DATABASE_URL": mail_settings.database_url, "MSPMON_CONFIG": None,
           "MSPMON_SMTP_HOST": "127.0.0.1", "MSPMON_SMTP_PORT": str(mail_settings.smtp_port)}
    return CliRunner(env=env)


def test_subscriptions_add_list_remove(runner):
    added = runner.invoke(main, ["subscriptions", "add", "L1 account", "--to", "am@example.com", "--segment",
                                 "assignment_group=MSP-Europe-L1", "--weekday", "tue", "--hour", "8",
                                 "--timezone", "Europe/Helsinki", "--metric", "happiness"])
    assert added.exit_code == 0, added.output
    assert "tue 08:00 Europe/Helsinki" in added.output
    (listed,) = json.loads(runner.invoke(main, ["subscriptions", "list", "--json"]).stdout)
    assert listed["segments"] == {"assignment_group": ["MSP-Europe-L1"]} and listed["metrics"] == ["happiness"]
    for args, message in (
        (["--to", "not-an-address"], "not an email address"),
        (["--to", "a@example.com", "--segment", "planet=Mars"], "unknown dimension 'planet'"),
        (["--to", "a@example.com", "--transition", "Nope"], "no transition named 'Nope'"),
        (["--to", "a@example.com", "--timezone", "Mars/Base"], "unknown IANA time zone"),
        (["--to", "a@example.com", "--metric", "mood"], "unknown metric 'mood'"),
    ):
        refused = runner.invoke(main, ["subscriptions", "add", "other", *args])
        assert refused.exit_code == 1 and message in refused.output, refused.output
    assert "already exists" in runner.invoke(main, ["subscriptions", "add", "L1 account", "--to", "a@example.com"]).output
    assert runner.invoke(main, ["subscriptions", "remove", str(listed["id"])]).exit_code == 0
    missing = runner.invoke(main, ["subscriptions", "remove", str(listed["id"])])
    assert missing.exit_code == 1 and "no subscription with id" in missing.output


def test_preview_dry_run_then_send_once(runner, smtp, tmp_path, mail_engine):
    from monitor.store import db
    from tests.notifications.conftest import add_finding

    with db.session_scope(mail_engine) as session:
        add_finding(session, "Fopen", "happiness", {"service": "SAP"})
    assert runner.invoke(main, ["subscriptions", "add", "team", "--to", "tm@example.com"]).exit_code == 0
    previewed = runner.invoke(main, ["digest", "preview", "--out", str(tmp_path / "out")])
    assert previewed.exit_code == 0, previewed.output
    assert sorted(p.suffix for p in (tmp_path / "out").iterdir()) == [".eml", ".html"]
    dry = runner.invoke(main, ["digest", "send", "--dry-run"])
    assert dry.exit_code == 0 and "would send 'team'" in dry.output and not smtp.received
    sent = runner.invoke(main, ["digest", "send"])
    assert sent.exit_code == 0 and "1 sent" in sent.output, sent.output
    again = runner.invoke(main, ["digest", "send"])
    assert "0 sent" in again.output and len(smtp.received) == 1
    assert "already sent" in runner.invoke(main, ["digest", "send", "--dry-run"]).output
    assert runner.invoke(main, ["digest", "preview", "--subscription", "99", "--out", str(tmp_path)]).exit_code == 1


def test_preview_html_for_the_web_view(mail_engine, mail_settings):
    from monitor.store import db
    from notifications.preview import preview_html
    from notifications.subscriptions import add_subscription

    with db.session_scope(mail_engine) as session:
        subscription = add_subscription(session, name="team", recipients=["tm@example.com"])
        html = preview_html(session, mail_settings, subscription.id)
        assert html.startswith("<!DOCTYPE html>") and "team" in html and "cid:" not in html
        with pytest.raises(LookupError, match="no subscription with id 404"):
            preview_html(session, mail_settings, 404)
