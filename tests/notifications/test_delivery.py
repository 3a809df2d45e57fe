"""Sending through a real SMTP server on loopback: once, per recipient, with retries."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select

from monitor.store import db
from monitor.store.app_models import (
    DeliveryAttempt,
    DeliveryState,
    Digest,
    DigestDelivery,
    DigestState,
)
from notifications.channels import EmailChannel
from notifications.outbox import claim, send_due
from notifications.subscriptions import add_subscription
from tests.notifications.conftest import NOW, add_finding

pytestmark = pytest.mark.usefixtures("survey")

ALICE, BOB = "alice@example.com", "bob@example.com"


@pytest.fixture
def subscribed(mail_engine):
    with db.session_scope(mail_engine) as session:
        add_finding(session, "Fsap", "happiness", {"service": "SAP"})
        subscription = add_subscription(session, name="Transition team", recipients=[ALICE, BOB])
        return subscription.id


def _deliveries(engine) -> dict[str, tuple[str, int, str]]:
    with db.session_scope(engine) as session:
        return {
            d.recipient: (d.state, d.attempts, d.last_error)
            for d in session.scalars(select(DigestDelivery))
        }


def _digest_states(engine) -> list[str]:
    with db.session_scope(engine) as session:
        return list(session.scalars(select(Digest.state)))


def test_each_recipient_gets_it_once_and_again_runs_send_nothing(mail_engine, mail_settings, smtp, subscribed):
    report = send_due(mail_engine, mail_settings, NOW)
    assert report.sent == 2 and report.failed == 0
    assert sorted(m["To"] for m in smtp.received) == [ALICE, BOB]
    again = send_due(mail_engine, mail_settings, NOW + dt.timedelta(hours=3))
    assert again.sent == 0 and again.taken == ["'Transition team' 2026-W48"]
    assert len(smtp.received) == 2
    assert _digest_states(mail_engine) == [DigestState.SENT]
    # next week's slot is a new period, but the finding is no longer news: no email
    send_due(mail_engine, mail_settings, NOW + dt.timedelta(weeks=1))
    assert len(smtp.received) == 2
    assert sorted(_digest_states(mail_engine)) == [DigestState.QUIET, DigestState.SENT]


def test_server_down_is_retried_with_backoff_and_recorded(mail_engine, mail_settings, smtp, subscribed):
    down = EmailChannel.from_settings(mail_settings)
    closed = type(down)(**{**down.__dict__, "port": 1})  # nothing listens on port 1
    first = send_due(mail_engine, mail_settings, NOW, channels={"email": closed})
    assert first.retrying == 2 and not smtp.received
    state, attempts, error = _deliveries(mail_engine)[ALICE]
    assert state == DeliveryState.RETRY and attempts == 1 and "Connection" in error
    # not yet due: the first retry waits digest_retry_seconds
    send_due(mail_engine, mail_settings, NOW + dt.timedelta(seconds=30))
    assert not smtp.received
    send_due(mail_engine, mail_settings, NOW + dt.timedelta(seconds=61))
    assert sorted(m["To"] for m in smtp.received) == [ALICE, BOB]
    assert _deliveries(mail_engine)[ALICE][:2] == (DeliveryState.SENT, 2)
    with db.session_scope(mail_engine) as session:
        outcomes = list(session.scalars(select(DeliveryAttempt.outcome).order_by(DeliveryAttempt.id)))
    assert outcomes.count("temporary") == 2 and outcomes.count("sent") == 2


def test_a_permanent_rejection_does_not_hold_back_the_others(mail_engine, mail_settings, smtp, subscribed):
    smtp.replies[ALICE] = ["550 5.1.1 mailbox unavailable"]
    report = send_due(mail_engine, mail_settings, NOW)
    assert report.sent == 1 and report.failed == 1
    assert [m["To"] for m in smtp.received] == [BOB]
    state, attempts, error = _deliveries(mail_engine)[ALICE]
    assert state == DeliveryState.FAILED and attempts == 1 and "550" in error
    assert _digest_states(mail_engine) == [DigestState.PARTIAL]
    send_due(mail_engine, mail_settings, NOW + dt.timedelta(days=1))  # never retried
    assert len(smtp.received) == 1


def test_temporary_rejections_retry_until_the_attempts_run_out(mail_engine, mail_settings, smtp, subscribed):
    smtp.replies[ALICE] = ["451 4.3.0 try again later"]  # for good
    smtp.replies[BOB] = ["452 4.2.2 over quota", "250 OK"]  # once
    send_due(mail_engine, mail_settings, NOW)
    assert not smtp.received
    send_due(mail_engine, mail_settings, NOW + dt.timedelta(seconds=61))  # second attempt
    assert [m["To"] for m in smtp.received] == [BOB]
    assert _deliveries(mail_engine)[ALICE][:2] == (DeliveryState.RETRY, 2)
    send_due(mail_engine, mail_settings, NOW + dt.timedelta(seconds=61 + 119))  # backoff doubled: not yet
    assert _deliveries(mail_engine)[ALICE][1] == 2
    send_due(mail_engine, mail_settings, NOW + dt.timedelta(seconds=61 + 121))
    state, attempts, error = _deliveries(mail_engine)[ALICE]
    assert (state, attempts) == (DeliveryState.FAILED, 3) and "451" in error
    assert _digest_states(mail_engine) == [DigestState.PARTIAL]


def test_a_crash_between_claim_and_send_is_taken_over_after_the_lease(mail_engine, mail_settings, smtp, subscribed):
    assert claim(mail_engine, subscribed, "2026-W48", NOW, mail_settings, owner="dead-process") is not None
    early = send_due(mail_engine, mail_settings, NOW + dt.timedelta(minutes=5))
    assert early.taken and not smtp.received  # the claim may still be alive
    late = send_due(mail_engine, mail_settings, NOW + dt.timedelta(minutes=11))
    assert late.sent == 2 and len(smtp.received) == 2
    send_due(mail_engine, mail_settings, NOW + dt.timedelta(minutes=30))
    assert len(smtp.received) == 2


class PowerCut(BaseException):
    """The process dies: nothing after the send runs, not even except-blocks for Exception."""


class DiesAfterSending(EmailChannel):
    def send(self, message, recipient):  # type: ignore[no-untyped-def]
        super().send(message, recipient)
        raise PowerCut


def test_a_crash_between_send_and_commit_never_sends_twice(mail_engine, mail_settings, smtp, subscribed):
    dying = DiesAfterSending(**EmailChannel.from_settings(mail_settings).__dict__)
    with pytest.raises(PowerCut):
        send_due(mail_engine, mail_settings, NOW, channels={"email": dying})
    assert len(smtp.received) == 1
    assert _deliveries(mail_engine)[smtp.received[0]["To"]][0] == DeliveryState.SENDING
    send_due(mail_engine, mail_settings, NOW + dt.timedelta(minutes=11))
    deliveries = _deliveries(mail_engine)
    assert sorted(m["To"] for m in smtp.received) == [ALICE, BOB]  # the other one went out, once
    crashed = smtp.received[0]["To"]
    assert deliveries[crashed][0] == DeliveryState.UNCERTAIN and "never arrive twice" in deliveries[crashed][2]


def test_two_schedulers_at_once_send_one_digest(mail_engine, mail_settings, smtp, subscribed):
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def scheduler() -> None:
        engine = db.make_engine(mail_settings.database_url)
        try:
            start.wait()
            send_due(engine, mail_settings, NOW)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=scheduler) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert sorted(m["To"] for m in smtp.received) == [ALICE, BOB]
    with db.session_scope(mail_engine) as session:
        assert session.scalar(select(func.count()).select_from(Digest)) == 1
        assert session.scalar(select(func.count()).select_from(DeliveryAttempt)) == 2
