"""The outbox: claim a period, store the rendered digest, deliver per recipient, retry.

Every step commits before the next one starts (see ``notifications.subscriptions`` for
the tables and why): a claim before composing, the rendered digest and its
deliveries before any send, ``sending`` before each channel call, and each attempt
with its outcome after it. Time always comes in as ``now``.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from config import Settings
from monitor.store.app_models import (
    DeliveryAttempt,
    DeliveryState,
    Digest,
    DigestDelivery,
    DigestState,
    Subscription,
)
from monitor.store.db import make_session_factory, session_scope
from notifications.channels import (
    Channel,
    DeliveryError,
    InlineImage,
    Message,
    channel_for,
)
from notifications.compose import DigestSource, compose, told
from notifications.content import DigestContent
from notifications.render import render_message
from notifications.subscriptions import (
    OPEN_DELIVERY_STATES,
    latest_slot,
    list_subscriptions,
    period_of,
)

log = logging.getLogger(__name__)


def owner_token() -> str:
    """Who holds a claim: host, process and a random part (two schedulers in one process differ)."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class SendReport:
    """What one ``send_due`` did, for the CLI and the scheduler's log."""

    claimed: list[str] = field(default_factory=list)  # "subscription name period"
    quiet: list[str] = field(default_factory=list)
    taken: list[str] = field(default_factory=list)  # already claimed elsewhere or earlier
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    # May have arrived, never resent: the server's answer to the message was lost,
    # or the sending process died mid-send. Someone should check with the recipient.
    uncertain: int = 0

    def lines(self) -> list[str]:
        lines = [f"digest {item}: composed" for item in self.claimed]
        lines += [f"digest {item}: nothing new, no email (send_when_quiet is off)" for item in self.quiet]
        lines += [f"digest {item}: already done or in progress elsewhere" for item in self.taken]
        lines.append(
            f"deliveries: {self.sent} sent, {self.retrying} to retry, {self.failed} failed, "
            f"{self.uncertain} uncertain (may have arrived; not resent)"
        )
        return lines

    @property
    def ok(self) -> bool:
        """Nothing failed for good and nothing is in doubt (retries are still on their way)."""
        return not self.failed and not self.uncertain


def claim(engine: Engine, subscription_id: int, period: str, now: dt.datetime, settings: Settings, owner: str) -> int | None:
    """Take ``(subscription, period)``; None when another process holds it or it is done.

    The insert is the claim: the unique key makes a second one fail. A claim left
    in ``claimed`` past the lease (its process died before rendering, so nothing
    was sent) is taken over with a conditional update that only one process wins.
    """
    try:
        with session_scope(engine) as session:
            digest = Digest(subscription_id=subscription_id, period=period, owner=owner, claimed_at=now)
            session.add(digest)
            session.flush()
            return digest.id
    except IntegrityError:
        pass
    stale = now - dt.timedelta(seconds=settings.digest_lease_seconds)
    with session_scope(engine) as session:
        won = session.execute(
            update(Digest)
            .where(
                Digest.subscription_id == subscription_id,
                Digest.period == period,
                Digest.state == DigestState.CLAIMED,
                Digest.claimed_at < stale,
            )
            .values(owner=owner, claimed_at=now)
            .returning(Digest.id)
        ).scalar_one_or_none()
    return won


def _store(session: Session, digest_id: int, owner: str, subscription: Subscription, content: DigestContent, now: dt.datetime) -> bool:
    """Save the rendered digest and its deliveries if we still hold the claim."""
    quiet = content.quiet and not subscription.send_when_quiet
    values: dict = {"as_of": content.as_of, "findings": content.finding_ids}
    if quiet:
        values |= {"state": DigestState.QUIET, "finished_at": now}
    else:
        message = render_message(content)
        values |= {
            "state": DigestState.SENDING,
            "subject": message.subject,
            "text": message.text,
            "html": message.html,
            "images": [
                {"cid": i.cid, "alt": i.alt, "png": base64.b64encode(i.png).decode()} for i in message.images
            ],
        }
    held = session.execute(
        update(Digest)
        .where(Digest.id == digest_id, Digest.owner == owner, Digest.state == DigestState.CLAIMED)
        .values(**values)
    ).rowcount
    if held != 1:
        return False
    if not quiet:
        session.add_all(
            DigestDelivery(digest_id=digest_id, recipient=recipient, next_attempt_at=now)
            for recipient in subscription.recipients
        )
    return True


def due_subscriptions(session: Session, now: dt.datetime, ids: list[int] | None = None) -> list[tuple[Subscription, str]]:
    """Each subscription with the period of its latest scheduled time at or before ``now``."""
    return [
        (subscription, period_of(latest_slot(subscription, now)))
        for subscription in list_subscriptions(session)
        if ids is None or subscription.id in ids
    ]


def send_due(
    engine: Engine,
    settings: Settings,
    now: dt.datetime,
    *,
    subscription_ids: list[int] | None = None,
    channels: Mapping[str, Channel] | None = None,
    owner: str | None = None,
) -> SendReport:
    """Claim, compose and deliver the digests due at ``now``, then any retries that are due."""
    owner = owner or owner_token()
    report = SendReport()
    with session_scope(engine) as session:
        due = [(s.id, s.name, period) for s, period in due_subscriptions(session, now, subscription_ids)]
    claimed = []
    for subscription_id, name, period in due:
        digest_id = claim(engine, subscription_id, period, now, settings, owner)
        if digest_id is None:
            report.taken.append(f"{name!r} {period}")
        else:
            claimed.append((digest_id, subscription_id, period))
    if claimed:
        session = make_session_factory(engine)()
        try:
            source = DigestSource(session, settings, now.date())
            for digest_id, subscription_id, period in claimed:
                subscription = session.get(Subscription, subscription_id)
                if subscription is None:  # removed meanwhile; its digest rows went with it
                    continue
                content = compose(source, subscription, period, told(session, subscription_id, period))
                if _store(session, digest_id, owner, subscription, content, now):
                    quiet = content.quiet and not subscription.send_when_quiet
                    (report.quiet if quiet else report.claimed).append(f"{subscription.name!r} {period}")
                session.commit()
        finally:
            session.close()
    deliver_pending(engine, settings, now, channels=channels, report=report)
    return report


def digest_state(session: Session, subscription_id: int, period: str) -> str | None:
    """The state of a subscription's digest for a period, None if not claimed yet."""
    return session.scalar(
        select(Digest.state).where(Digest.subscription_id == subscription_id, Digest.period == period)
    )


def preview(session: Session, settings: Settings, now: dt.datetime, subscription_ids: list[int] | None = None) -> list[tuple[Subscription, DigestContent]]:
    """The digests as they would go out at ``now``; nothing is claimed or written."""
    due = due_subscriptions(session, now, subscription_ids)
    if not due:
        return []
    source = DigestSource(session, settings, now.date())
    return [(s, compose(source, s, period, told(session, s.id, period))) for s, period in due]


def _message(digest: Digest) -> Message:
    images = tuple(InlineImage(i["cid"], base64.b64decode(i["png"]), i["alt"]) for i in digest.images)
    key = f"digest-{digest.subscription_id}-{digest.period}"
    return Message(digest.subject, digest.text, digest.html, images, key)


def _expire_stale(engine: Engine, settings: Settings, now: dt.datetime) -> int:
    """Deliveries left ``sending`` by a process that died: maybe delivered, so never resent.

    Returns how many were found, for the report.
    """
    stale = now - dt.timedelta(seconds=settings.digest_lease_seconds)
    expired = 0
    with session_scope(engine) as session:
        for delivery in session.scalars(
            select(DigestDelivery).where(DigestDelivery.state == DeliveryState.SENDING, DigestDelivery.started_at < stale)
        ):
            error = "interrupted while sending; not resent so that it can never arrive twice"
            delivery.state = DeliveryState.UNCERTAIN
            delivery.last_error = error
            delivery.attempt_log.append(DeliveryAttempt(attempted_at=now, outcome="uncertain", error=error))
            session.flush()
            _refresh_digest(session, delivery.digest, now)
            expired += 1
    return expired


def deliver_pending(
    engine: Engine,
    settings: Settings,
    now: dt.datetime,
    *,
    channels: Mapping[str, Channel] | None = None,
    report: SendReport | None = None,
) -> SendReport:
    """Send every delivery that is pending or due for a retry, each on its own."""
    report = report or SendReport()
    report.uncertain += _expire_stale(engine, settings, now)
    with session_scope(engine) as session:
        due = session.execute(
            select(DigestDelivery.id, DigestDelivery.state, DigestDelivery.attempts)
            .where(DigestDelivery.state.in_(OPEN_DELIVERY_STATES), DigestDelivery.next_attempt_at <= now)
            .order_by(DigestDelivery.id)
        ).all()
    built: dict[str, Channel] = dict(channels or {})
    for delivery_id, state, attempts in due:
        with session_scope(engine) as session:
            taken = session.execute(
                update(DigestDelivery)
                .where(DigestDelivery.id == delivery_id, DigestDelivery.state == state, DigestDelivery.attempts == attempts)
                .values(state=DeliveryState.SENDING, attempts=attempts + 1, started_at=now)
            ).rowcount
            if taken != 1:
                continue  # another process got it first
            delivery = session.get(DigestDelivery, delivery_id)
            assert delivery is not None
            kind = session.scalar(select(Subscription.channel).where(Subscription.id == delivery.digest.subscription_id))
            message, recipient = _message(delivery.digest), delivery.recipient
        if kind not in built:
            built[kind] = channel_for(kind, settings)
        outcome, error = _attempt(built[kind], message, recipient)
        with session_scope(engine) as session:
            delivery = session.get(DigestDelivery, delivery_id)
            assert delivery is not None
            _record(delivery, outcome, error, settings, now)
            session.flush()
            _refresh_digest(session, delivery.digest, now)
            state = delivery.state
        report.sent += state == DeliveryState.SENT
        report.retrying += state == DeliveryState.RETRY
        report.failed += state == DeliveryState.FAILED
        report.uncertain += state == DeliveryState.UNCERTAIN
    return report


def _attempt(channel: Channel, message: Message, recipient: str) -> tuple[str, str]:
    """Call the channel once: (outcome, error) with outcome sent, temporary, permanent or uncertain."""
    try:
        channel.send(message, recipient)
    except DeliveryError as exc:
        if exc.uncertain:
            return "uncertain", str(exc)
        return ("temporary" if exc.temporary else "permanent"), str(exc)
    except Exception as exc:  # a channel bug: recorded, never silent, and never resent
        # The channel cannot say how far it got, so the message may have left:
        # at most once wins over a retry.
        log.exception("channel %s failed unexpectedly for %s", channel.kind, recipient)
        return "uncertain", f"{type(exc).__name__}: {exc}"
    return "sent", ""


def _record(delivery: DigestDelivery, outcome: str, error: str, settings: Settings, now: dt.datetime) -> None:
    delivery.attempt_log.append(DeliveryAttempt(attempted_at=now, outcome=outcome, error=error))
    delivery.last_error = error
    if outcome == "sent":
        delivery.state, delivery.sent_at = DeliveryState.SENT, now
    elif outcome == "uncertain":
        delivery.state = DeliveryState.UNCERTAIN
    elif outcome == "temporary" and delivery.attempts < settings.digest_max_attempts:
        backoff = settings.digest_retry_seconds * 2 ** (delivery.attempts - 1)
        delivery.state = DeliveryState.RETRY
        delivery.next_attempt_at = now + dt.timedelta(seconds=backoff)
    else:
        delivery.state = DeliveryState.FAILED


def _refresh_digest(session: Session, digest: Digest, now: dt.datetime) -> None:
    """A digest's state follows its deliveries: sending until each one is settled."""
    states = {d.state for d in digest.deliveries}
    if states & {DeliveryState.PENDING, DeliveryState.RETRY, DeliveryState.SENDING}:
        digest.state = DigestState.SENDING
        return
    if states == {DeliveryState.SENT}:
        digest.state = DigestState.SENT
    elif DeliveryState.SENT in states:
        digest.state = DigestState.PARTIAL
    else:
        digest.state = DigestState.FAILED
    digest.finished_at = now
