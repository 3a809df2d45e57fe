"""Scheduling: local time across daylight saving, one digest per period, missed weeks once."""

from __future__ import annotations

import datetime as dt
import threading
from zoneinfo import ZoneInfo

import pytest
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select

from config import load_settings
from monitor.store import db
from monitor.store.app_models import Digest
from notifications.outbox import send_due
from notifications.scheduler import Runtime, build_scheduler, digest_trigger, sync_jobs
from notifications.subscriptions import add_subscription, latest_slot, period_of
from tests.notifications.conftest import add_finding, add_run

HELSINKI = ZoneInfo("Europe/Helsinki")


def _subscription(engine, **fields):
    with db.session_scope(engine) as session:
        add_finding(session, "Fopen", "happiness", {"service": "SAP"})
        add_run(session)
        return add_subscription(session, name="Helsinki team", recipients=["tm@example.com"], **fields)


def _utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def test_seven_in_the_morning_stays_seven_across_daylight_saving(mail_engine):
    subscription = _subscription(mail_engine, weekday="mon", hour=7, timezone="Europe/Helsinki")
    winter = latest_slot(subscription, _utc(2026, 3, 24))
    summer = latest_slot(subscription, _utc(2026, 3, 31))
    assert (winter.astimezone(dt.UTC).hour, summer.astimezone(dt.UTC).hour) == (5, 4)
    assert winter.astimezone(HELSINKI).hour == summer.astimezone(HELSINKI).hour == 7
    trigger = digest_trigger(subscription)
    fired = trigger.get_next_fire_time(None, _utc(2026, 3, 25))
    assert fired == summer and period_of(summer) == "2026-W14"


def test_an_autumn_hour_that_fires_twice_sends_one_digest(mail_engine, mail_settings, smtp):
    subscription = _subscription(mail_engine, weekday="sun", hour=3, timezone="Europe/Helsinki")
    trigger = digest_trigger(subscription)
    first = trigger.get_next_fire_time(None, _utc(2026, 10, 24)).astimezone(dt.UTC)
    second = trigger.get_next_fire_time(first, first + dt.timedelta(seconds=1)).astimezone(dt.UTC)
    assert second - first == dt.timedelta(hours=1)  # 03:00 EEST, then 03:00 EET
    for fired in (first, second):
        send_due(mail_engine, mail_settings, fired + dt.timedelta(minutes=1))
    assert len(smtp.received) == 1
    with db.session_scope(mail_engine) as session:
        assert list(session.scalars(select(Digest.period))) == ["2026-W43"]


def test_a_skipped_spring_hour_sends_when_the_clocks_jump(mail_engine, mail_settings, smtp):
    subscription = _subscription(mail_engine, weekday="sun", hour=3, timezone="Europe/Helsinki")
    fired = digest_trigger(subscription).get_next_fire_time(None, _utc(2026, 3, 28)).astimezone(dt.UTC)
    # 03:00 does not exist that night (clocks go 03:00 EET -> 04:00 EEST at 01:00 UTC)
    assert fired == latest_slot(subscription, _utc(2026, 3, 29, 1, 30)).astimezone(dt.UTC) == _utc(2026, 3, 29, 1)
    send_due(mail_engine, mail_settings, _utc(2026, 3, 29, 0, 59))
    assert period_of(latest_slot(subscription, _utc(2026, 3, 29, 0, 59))) == "2026-W12"  # the week before
    send_due(mail_engine, mail_settings, fired + dt.timedelta(minutes=1))
    with db.session_scope(mail_engine) as session:
        assert sorted(session.scalars(select(Digest.period))) == ["2026-W12", "2026-W13"]


@pytest.mark.parametrize(("grace_hours", "sent"), [(24, 1), (0.0005, 0)])
def test_weeks_missed_while_down_are_sent_once_within_the_grace(database_url, smtp, grace_hours, sent):
    """A real scheduler on the project's job store, down for three weeks, comes back."""
    settings = load_settings(environ={}, overrides={
        "database_url": database_url, "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "digest_grace_hours": grace_hours,
    })
    engine = db.make_engine(database_url)
    now = dt.datetime.now(dt.UTC)
    with db.session_scope(engine) as session:
        add_finding(session, "Fopen", "happiness", {"service": "SAP"})
        add_run(session, as_of=now.date())  # this week's analysis is done
        subscription = add_subscription(session, name="team", recipients=["tm@example.com"], timezone="UTC",
                                        weekday=("mon", "tue", "wed", "thu", "fri", "sat", "sun")[now.weekday()],
                                        hour=now.hour)
        slot = latest_slot(subscription, now)
    runtime = Runtime(engine, settings, clock=lambda: dt.datetime.now(dt.UTC))
    scheduler = build_scheduler(runtime, BackgroundScheduler)
    events: list[int] = []
    settled, synced = threading.Event(), threading.Event()

    def listen(event) -> None:  # type: ignore[no-untyped-def]
        if event.job_id == "digest:1":
            events.append(event.code)
            settled.set()
        elif event.job_id == "sync-subscriptions":
            synced.set()  # shutdown(wait=True) must not meet a job that uses the scheduler

    scheduler.add_listener(listen, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    scheduler.start(paused=True)
    try:
        sync_jobs(scheduler, runtime)
        scheduler.modify_job("digest:1", next_run_time=slot - dt.timedelta(weeks=3))  # last ran 4 weeks ago
        scheduler.resume()
        assert settled.wait(60) and synced.wait(60)
    finally:
        scheduler.shutdown(wait=True)
        engine.dispose()
    assert events == ([EVENT_JOB_EXECUTED] if sent else [EVENT_JOB_MISSED])
    assert len(smtp.received) == sent
