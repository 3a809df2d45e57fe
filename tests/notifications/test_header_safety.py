"""A CR/LF in a subscription's name: refused when it is made, harmless in headers if already stored."""

from __future__ import annotations

import email
from email.policy import default as default_policy

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from monitor.cli.commands import main
from monitor.store import db
from monitor.store.app_models import Subscription
from notifications.subscriptions import add_subscription
from tests.notifications.conftest import add_finding

pytestmark = pytest.mark.usefixtures("survey")


@pytest.fixture
def runner(mail_settings) -> CliRunner:
    return CliRunner(env={"MSPMON_DATABASE_URL": mail_settings.database_url, "MSPMON_CONFIG": None})


def test_the_command_line_refuses_a_name_with_control_characters(runner):
    refused = runner.invoke(main, ["subscriptions", "add", "Weekly\r\nBcc: victim@example.com", "--to", "a@example.com"])
    assert refused.exit_code == 2 and "without control characters" in refused.output
    assert "a@example.com" not in runner.invoke(main, ["subscriptions", "list"]).output


def test_digest_preview_of_a_stored_name_with_cr_lf_writes_one_line_headers(runner, mail_engine, tmp_path):
    """Names stored before the check (or by other code) must not crash the preview or inject a header."""
    with db.session_scope(mail_engine) as session:
        add_finding(session, "Fsap", "happiness", {"service": "SAP"})
        subscription = add_subscription(session, name="Weekly", recipients=["a@example.com"])
        session.execute(
            update(Subscription).where(Subscription.id == subscription.id).values(name="Weekly\r\nBcc: victim@example.com")
        )
    result = runner.invoke(main, ["digest", "preview", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (eml,) = tmp_path.glob("*.eml")
    message = email.message_from_bytes(eml.read_bytes(), policy=default_policy)
    assert message["Bcc"] is None and "\n" not in str(message["Subject"])
