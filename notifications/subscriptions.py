"""Digest subscriptions and the outbox that makes each digest leave exactly once.

A subscription says who gets which slice of the findings, when (weekday and hour
in the recipient's time zone) and through which channel. Its scope is a list of
transitions and/or a segment filter with the shape of a transition's scope
(``{"assignment_group": ["MSP-Europe-L1"]}``: values of one dimension are
alternatives, different dimensions must all match); see ``notifications.content``
for which findings a scope takes in.

The outbox has three levels, each row written before the thing it records happens:

* ``digests``: one row per subscription and period, unique on
  ``(subscription_id, period)``. Inserting it *claims* the period: a second
  scheduler's insert fails on the key and it does nothing. A claim older than the
  lease whose owner never rendered the digest (a crash between claim and send) is
  taken over with a compare-and-set on the owner token.
* ``digest_deliveries``: one row per recipient, so a recipient that keeps failing
  does not hold back the others; retried with backoff.
* ``delivery_attempts``: every attempt with its outcome and error.

A delivery is marked ``sending`` and committed before the channel is called. If
the process dies after the server accepted the message but before ``sent`` is
committed, the row stays ``sending``; after the lease it becomes ``uncertain``
and is never sent again: a possible lost digest is recorded and visible, a
duplicate is impossible.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import (
    select,
)
from sqlalchemy.orm import Session

from config.settings import WEEKDAYS
from monitor import store
from monitor.store.app_models import (
    DeliveryState,
    Severity,
    Subscription,
)
from notifications.channels import CHANNELS


class SubscriptionError(ValueError):
    """A subscription that cannot be stored as given; the message says why."""


SEVERITY_RATIO = {Severity.LOW: 0.0, Severity.MEDIUM: 2.0, Severity.HIGH: 3.0}


OPEN_DELIVERY_STATES = (DeliveryState.PENDING, DeliveryState.RETRY)
METRIC_FAMILIES = ("happiness", "lost_time", "volume", "factors")


_EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")


def check_recipient(channel: str, recipient: str) -> str:
    """The recipient normalised for its channel, or a SubscriptionError saying why not."""
    recipient = recipient.strip()
    if channel == "email" and not _EMAIL.match(recipient):
        raise SubscriptionError(f"{recipient!r} is not an email address")
    if not recipient:
        raise SubscriptionError("empty recipient")
    return recipient


def _check_metrics(metrics: Iterable[str]) -> list[str]:
    checked = []
    for metric in metrics:
        if metric not in METRIC_FAMILIES and not (metric.startswith("factor:") and len(metric) > 7):
            raise SubscriptionError(
                f"unknown metric {metric!r}; use {', '.join(METRIC_FAMILIES)} or factor:<name>"
            )
        checked.append(metric)
    return checked


def _check_segments(session: Session, segments: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    known = store.dimension_slots(session)
    checked: dict[str, list[str]] = {}
    for dimension, values in segments.items():
        if dimension not in known:
            listed = ", ".join(known) or "none yet"
            raise SubscriptionError(f"unknown dimension {dimension!r} in the segment filter (known: {listed})")
        cleaned = [value.strip() for value in values if value.strip()]
        if not cleaned:
            raise SubscriptionError(f"segment filter {dimension!r} has no value")
        checked[dimension] = list(dict.fromkeys(cleaned))
    return checked


def add_subscription(
    session: Session,
    *,
    name: str,
    recipients: Iterable[str],
    channel: str = "email",
    transitions: Iterable[str] = (),
    segments: Mapping[str, Iterable[str]] | None = None,
    metrics: Iterable[str] = (),
    min_severity: str = Severity.LOW,
    weekday: str = "mon",
    hour: int = 7,
    timezone: str = "UTC",
    send_when_quiet: bool = False,
    now: dt.datetime | None = None,
) -> Subscription:
    """Validate and store a subscription; every refusal is a SubscriptionError naming the field."""
    name = name.strip()
    if not name:
        raise SubscriptionError("a subscription needs a name")
    if session.scalars(select(Subscription.id).where(Subscription.name == name)).first() is not None:
        raise SubscriptionError(f"a subscription named {name!r} already exists")
    if channel not in CHANNELS:
        raise SubscriptionError(f"unknown channel {channel!r}; use one of {', '.join(sorted(CHANNELS))}")
    checked = list(dict.fromkeys(check_recipient(channel, r) for r in recipients))
    if not checked:
        raise SubscriptionError("a subscription needs at least one recipient")
    names = list(dict.fromkeys(t.strip() for t in transitions))
    for transition in names:
        if store.find_transition(session, transition) is None:
            raise SubscriptionError(f"no transition named {transition!r}")
    if min_severity not in set(Severity):
        raise SubscriptionError(f"min severity must be one of {', '.join(Severity)}, got {min_severity!r}")
    if weekday not in WEEKDAYS:
        raise SubscriptionError(f"weekday must be one of {', '.join(WEEKDAYS)}, got {weekday!r}")
    if not 0 <= hour <= 23:
        raise SubscriptionError(f"hour must be 0-23, got {hour}")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SubscriptionError(f"unknown IANA time zone {timezone!r}") from None
    subscription = Subscription(
        name=name,
        channel=channel,
        recipients=checked,
        transitions=names,
        segments=_check_segments(session, segments or {}),
        metrics=_check_metrics(metrics),
        min_severity=min_severity,
        weekday=weekday,
        hour=hour,
        timezone=timezone,
        send_when_quiet=send_when_quiet,
        created_at=now or dt.datetime.now(dt.UTC),
    )
    session.add(subscription)
    session.flush()
    return subscription


def latest_slot(subscription: Subscription, now: dt.datetime) -> dt.datetime:
    """The newest scheduled send time at or before ``now``, in the subscription's zone.

    Wall-clock arithmetic in the zone, so 07:00 stays 07:00 across daylight saving.
    A repeated hour (autumn) is taken at its first occurrence and a skipped one
    (spring) at the instant the clocks jump, as APScheduler's cron trigger does.
    """
    zone = subscription.zone
    local = now.astimezone(zone)
    back = (local.weekday() - WEEKDAYS.index(subscription.weekday)) % 7
    day = local.date() - dt.timedelta(days=back)
    slot = dt.datetime.combine(day, dt.time(subscription.hour), zone)
    if slot > now:
        slot = dt.datetime.combine(day - dt.timedelta(weeks=1), dt.time(subscription.hour), zone)
    return slot


def period_of(slot: dt.datetime) -> str:
    """The digest period of a slot: its ISO week in the recipient's zone, e.g. 2026-W48.

    Both firings of a cron time in a repeated autumn hour fall in one period, so
    the unique key on (subscription, period) sends one digest.
    """
    year, week, _ = slot.date().isocalendar()
    return f"{year}-W{week:02d}"


def list_subscriptions(session: Session) -> list[Subscription]:
    return list(session.scalars(select(Subscription).order_by(Subscription.id)))


def remove_subscription(session: Session, subscription_id: int) -> None:
    """Delete a subscription and its outbox history."""
    subscription = session.get(Subscription, subscription_id)
    if subscription is None:
        raise SubscriptionError(f"no subscription with id {subscription_id}")
    session.delete(subscription)
    session.flush()


def subscription_dict(subscription: Subscription) -> dict[str, Any]:
    """The JSON form the CLI prints and the web view shows."""
    return {
        "id": subscription.id,
        "name": subscription.name,
        "channel": subscription.channel,
        "recipients": subscription.recipients,
        "transitions": subscription.transitions,
        "segments": subscription.segments,
        "metrics": subscription.metrics,
        "min_severity": subscription.min_severity,
        "schedule": {"weekday": subscription.weekday, "hour": subscription.hour, "timezone": subscription.timezone},
        "send_when_quiet": subscription.send_when_quiet,
    }
