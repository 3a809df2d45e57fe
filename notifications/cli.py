"""``mspmon subscriptions``, ``mspmon digest`` and ``mspmon scheduler``.

Registered on the main command line at the bottom of ``monitor.cli.commands``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from config.settings import WEEKDAYS
from monitor.cli.context import AppContext, pass_app, print_json
from monitor.store import db
from monitor.store.app_models import Severity
from notifications.outbox import digest_state, preview, send_due
from notifications.preview import write_previews
from notifications.render import subject
from notifications.scheduler import run_scheduler
from notifications.subscriptions import (
    SubscriptionError,
    add_subscription,
    list_subscriptions,
    remove_subscription,
    subscription_dict,
)


class _DimensionValue(click.ParamType):
    """``dimension=value``, as in ``--segment assignment_group=MSP-Europe-L1``."""

    name = "DIM=VALUE"

    def convert(self, value: str, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, str]:
        dimension, equals, item = value.partition("=")
        if not equals or not dimension.strip() or not item.strip():
            self.fail(f"expected dimension=value, got {value!r}", param, ctx)
        return dimension.strip(), item.strip()


@click.group("subscriptions")
def subscriptions_group() -> None:
    """Who receives which slice of the weekly digest, and when."""


@subscriptions_group.command("add")
@click.argument("name")
@click.option("--to", "recipients", multiple=True, required=True, help="Recipient email address; repeatable.")
@click.option("--transition", "transitions", multiple=True, help="Only this transition; repeatable (default: all).")
@click.option("--segment", "segments", type=_DimensionValue(), multiple=True, help="Only this slice, e.g. assignment_group=MSP-Europe-L1; values of one dimension are alternatives.")
@click.option("--metric", "metrics", multiple=True, help="happiness, lost_time, volume, factors or factor:<name>; repeatable (default: all).")
@click.option("--min-severity", type=click.Choice([s.value for s in Severity]), default=Severity.LOW.value, show_default=True, help="low: every finding; medium: 2x the minimum effect; high: 3x.")
@click.option("--weekday", type=click.Choice(WEEKDAYS), default=None, help="Default: the digest_weekday setting.")
@click.option("--hour", type=click.IntRange(0, 23), default=None, help="Local hour; default: the digest_hour setting.")
@click.option("--timezone", default=None, help="The recipients' IANA zone; default: the timezone setting.")
@click.option("--send-when-quiet", is_flag=True, help="Send a short all-quiet note when nothing is new (default: no email).")
@click.option("--channel", default="email", show_default=True)
@pass_app
def subscriptions_add(
    app: AppContext,
    name: str,
    recipients: tuple[str, ...],
    transitions: tuple[str, ...],
    segments: tuple[tuple[str, str], ...],
    metrics: tuple[str, ...],
    min_severity: str,
    weekday: str | None,
    hour: int | None,
    timezone: str | None,
    send_when_quiet: bool,
    channel: str,
) -> None:
    """Subscribe recipients to the weekly digest under NAME."""
    from notifications.channels.base import single_line_problem

    problem = single_line_problem(name, "the name")
    if problem:
        raise click.BadParameter(problem, param_hint="NAME")
    scope: dict[str, list[str]] = {}
    for dimension, value in segments:
        scope.setdefault(dimension, []).append(value)
    settings = app.settings
    try:
        with db.session_scope(app.ready_engine()) as session:
            subscription = add_subscription(
                session,
                name=name,
                recipients=recipients,
                channel=channel,
                transitions=transitions,
                segments=scope,
                metrics=metrics,
                min_severity=min_severity,
                weekday=weekday or settings.digest_weekday,
                hour=settings.digest_hour if hour is None else hour,
                timezone=timezone or settings.timezone,
                send_when_quiet=send_when_quiet,
            )
            summary = subscription_dict(subscription)
    except SubscriptionError as exc:
        raise click.ClickException(str(exc)) from None
    schedule = summary["schedule"]
    click.echo(
        f"subscription {summary['id']} {name!r} added: {schedule['weekday']} {schedule['hour']:02d}:00 "
        f"{schedule['timezone']} to {', '.join(summary['recipients'])}"
    )


@subscriptions_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@pass_app
def subscriptions_list(app: AppContext, as_json: bool) -> None:
    """List the subscriptions."""
    with db.session_scope(app.ready_engine()) as session:
        rows = [subscription_dict(s) for s in list_subscriptions(session)]
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo("no subscriptions yet: add one with `mspmon subscriptions add NAME --to ADDRESS`")
    for row in rows:
        scope = "; ".join(f"{k}={'|'.join(v)}" for k, v in row["segments"].items()) or "everyone"
        schedule = row["schedule"]
        click.echo(
            f"{row['id']:>3}  {row['name']}  {schedule['weekday']} {schedule['hour']:02d}:00 {schedule['timezone']}  "
            f"scope: {scope}  transitions: {', '.join(row['transitions']) or 'all'}  to: {', '.join(row['recipients'])}"
        )


@subscriptions_group.command("remove")
@click.argument("subscription_id", type=int)
@pass_app
def subscriptions_remove(app: AppContext, subscription_id: int) -> None:
    """Remove a subscription and its digest history."""
    try:
        with db.session_scope(app.ready_engine()) as session:
            remove_subscription(session, subscription_id)
    except SubscriptionError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"subscription {subscription_id} removed")


@click.group("digest")
def digest_group() -> None:
    """Weekly course-correction digests: preview and send."""


@digest_group.command("preview")
@click.option("--subscription", "subscription_id", type=int, default=None, help="Only this subscription.")
@click.option("--out", "directory", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder for the .eml and .html files.")
@pass_app
def digest_preview(app: AppContext, subscription_id: int | None, directory: Path) -> None:
    """Write each digest as .eml and .html into --out; nothing is sent or recorded."""
    with db.session_scope(app.ready_engine()) as session:
        ids = None if subscription_id is None else [subscription_id]
        written = write_previews(session, app.settings, directory, dt.datetime.now(dt.UTC), ids)
    if subscription_id is not None and not written:
        raise click.ClickException(f"no subscription with id {subscription_id}")
    for path in written:
        click.echo(str(path))
    if not written:
        click.echo("no subscriptions: nothing to preview")


@digest_group.command("send")
@click.option("--dry-run", is_flag=True, help="Say what would be sent; claim and send nothing.")
@click.option("--subscription", "subscription_id", type=int, default=None, help="Only this subscription.")
@pass_app
def digest_send(app: AppContext, dry_run: bool, subscription_id: int | None) -> None:
    """Send the digests that are due (once per subscription and week) and due retries."""
    engine = app.ready_engine()
    now = dt.datetime.now(dt.UTC)
    ids = None if subscription_id is None else [subscription_id]
    if dry_run:
        with db.session_scope(engine) as session:
            for subscription, content in preview(session, app.settings, now, ids):
                state = digest_state(session, subscription.id, content.period)
                quiet = content.quiet and not subscription.send_when_quiet
                what = "nothing new, no email" if quiet else f"{subject(content)!r} to {', '.join(subscription.recipients)}"
                if state is not None:
                    what = f"already {state}, nothing to send"
                click.echo(f"would send {subscription.name!r} {content.period}: {what}")
        return
    report = send_due(engine, app.settings, now, subscription_ids=ids)
    for line in report.lines():
        click.echo(line)
    if not report.ok:
        problems = [f"{report.failed} failed for good"] if report.failed else []
        if report.uncertain:
            problems.append(f"{report.uncertain} uncertain (may have arrived; not resent, check with the recipients)")
        raise click.ClickException(f"deliveries: {'; '.join(problems)}; see the lines above")


@click.command("scheduler")
@pass_app
def scheduler_command(app: AppContext) -> None:
    """Run the weekly analysis and the digests on schedule (its own process; Ctrl-C stops it)."""
    run_scheduler(app.ready_engine(), app.settings, echo=click.echo)
