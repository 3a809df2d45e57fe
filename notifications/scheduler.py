"""``mspmon scheduler``: the weekly analysis, then each subscription's digest on its own cron.

It runs as its own process and never inside web workers: every gunicorn worker
(and Flask's reloader) that started a scheduler would run every job again. Even
so, two schedulers at once (a second host, a restart overlapping the old process)
send nothing twice: each digest job claims its ``(subscription, period)`` in the
database first (``notifications.outbox.claim``).

Jobs live in the project's database (APScheduler's ``SQLAlchemyJobStore`` on the
``apscheduler_jobs`` table that migration 0004 creates), so a restart knows when
each job last ran. Each subscription has a job ``digest:<id>`` with a cron trigger
in its own time zone (07:00 stays 07:00 across daylight saving). Missed runs are
coalesced: a scheduler that was down for three weeks sends the latest digest
once, if it is back within ``digest_grace_hours`` of the scheduled time; a run
in a repeated autumn hour that fires twice is caught by the claim.

APScheduler pickles jobs into the store, so jobs are module-level functions
named by reference; they find the engine, settings and clock in the runtime that
``build_scheduler`` installs (secrets never go into the job table).
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine

from config import Settings
from monitor import store
from monitor.analysis.run import run_analysis
from monitor.periods import last_complete_period
from monitor.store.app_models import SCHEDULER_JOBS_TABLE, Subscription
from monitor.store.db import session_scope
from notifications.outbox import deliver_pending, send_due
from notifications.subscriptions import list_subscriptions

log = logging.getLogger(__name__)

DIGEST_JOB_PREFIX = "digest:"
HOUSEKEEPING_SECONDS = 60  # retries of deliveries, and picking up subscription changes


@dataclass
class Runtime:
    """What the jobs need, set up once by the process that runs the scheduler."""

    engine: Engine
    settings: Settings
    clock: Callable[[], dt.datetime]
    channels: Mapping[str, Any] | None = None  # injected channels (tests); None: from settings
    scheduler: BaseScheduler | None = None


_runtime: Runtime | None = None
_analysis_lock = threading.Lock()


def _current() -> Runtime:
    if _runtime is None:
        raise RuntimeError("the scheduler runtime is not installed; start it with `mspmon scheduler`")
    return _runtime


def ensure_analysis(runtime: Runtime) -> None:
    """Run the analysis unless the latest run already covers the last complete week.

    Digests then always report this week's analysis, whichever job fires first.
    """
    settings = runtime.settings
    today = runtime.clock().astimezone(settings.zone).date()
    with _analysis_lock:
        with session_scope(runtime.engine) as session:
            run = store.latest_run(session)
            covered = run is not None and last_complete_period(run.as_of, settings.period) >= last_complete_period(
                today, settings.period
            )
        if not covered:
            report = run_analysis(runtime.engine, settings, today)
            log.info("analysis as of %s: %d findings", today, len(report.findings))


def analysis_job() -> None:
    ensure_analysis(_current())


def digest_job(subscription_id: int) -> None:
    runtime = _current()
    ensure_analysis(runtime)
    report = send_due(
        runtime.engine, runtime.settings, runtime.clock(), subscription_ids=[subscription_id], channels=runtime.channels
    )
    for line in report.lines():
        log.info("subscription %d: %s", subscription_id, line)


def deliveries_job() -> None:
    runtime = _current()
    deliver_pending(runtime.engine, runtime.settings, runtime.clock(), channels=runtime.channels)


def sync_job() -> None:
    runtime = _current()
    assert runtime.scheduler is not None
    sync_jobs(runtime.scheduler, runtime)


def digest_trigger(subscription: Subscription) -> CronTrigger:
    return CronTrigger(
        day_of_week=subscription.weekday, hour=subscription.hour, minute=0, timezone=subscription.zone
    )


def sync_jobs(scheduler: BaseScheduler, runtime: Runtime) -> None:
    """One ``digest:<id>`` job per subscription; unchanged jobs are left alone.

    Re-adding an unchanged job would reset its next run time and lose a run that
    was missed while the scheduler was down.
    """
    with session_scope(runtime.engine) as session:
        wanted = {f"{DIGEST_JOB_PREFIX}{s.id}": (s.id, digest_trigger(s)) for s in list_subscriptions(session)}
    for job in scheduler.get_jobs():
        if job.id.startswith(DIGEST_JOB_PREFIX) and job.id not in wanted:
            job.remove()
    for job_id, (subscription_id, trigger) in wanted.items():
        existing = scheduler.get_job(job_id)
        if existing is not None and repr(existing.trigger) == repr(trigger):
            continue
        scheduler.add_job(
            "notifications.scheduler:digest_job", trigger, id=job_id, args=[subscription_id], replace_existing=True
        )


def build_scheduler(runtime: Runtime, scheduler_class: type[BaseScheduler] = BlockingScheduler) -> BaseScheduler:
    """A scheduler on the project's database with the analysis, housekeeping and digest jobs."""
    global _runtime
    settings = runtime.settings
    scheduler = scheduler_class(
        jobstores={"default": SQLAlchemyJobStore(engine=runtime.engine, tablename=SCHEDULER_JOBS_TABLE)},
        executors={"default": ThreadPoolExecutor(4)},
        job_defaults={
            "coalesce": True,  # a missed week is sent once, not once per missed week
            "misfire_grace_time": int(settings.digest_grace_hours * 3600) or 1,
            "max_instances": 1,
        },
        timezone=dt.UTC,
    )
    runtime.scheduler = scheduler
    _runtime = runtime
    scheduler.add_job(
        "notifications.scheduler:analysis_job",
        CronTrigger(day_of_week=settings.digest_weekday, hour=settings.digest_hour, timezone=settings.zone),
        id="analysis",
        replace_existing=True,
    )
    every_minute = IntervalTrigger(seconds=HOUSEKEEPING_SECONDS, timezone=dt.UTC)
    scheduler.add_job("notifications.scheduler:deliveries_job", every_minute, id="deliveries", replace_existing=True)
    scheduler.add_job(
        "notifications.scheduler:sync_job", every_minute, id="sync-subscriptions", replace_existing=True,
        next_run_time=runtime.clock(),
    )
    return scheduler


def run_scheduler(engine: Engine, settings: Settings, *, echo: Callable[[str], None]) -> None:
    """Block running the scheduler until Ctrl-C or SIGTERM."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    scheduler = build_scheduler(Runtime(engine, settings, clock=lambda: dt.datetime.now(dt.UTC)))
    signal.signal(signal.SIGTERM, lambda *_: scheduler.shutdown(wait=False))
    echo(f"scheduler started: analysis {settings.digest_weekday} {settings.digest_hour:02d}:00 {settings.timezone}, "
         f"digests per subscription; grace {settings.digest_grace_hours:g} h")
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        scheduler.shutdown(wait=False)
    echo("scheduler stopped")
