"""Tables of the web and notification areas: accounts, tokens, digest subscriptions and the outbox.

They live in the storage layer, beside the survey tables, so that one metadata and one
migration history hold every table and ``monitor`` never imports the areas above it.
The behaviour around them is in ``web.accounts`` and ``notifications.subscriptions``.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Table,
    Text,
    Unicode,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from monitor.store.models import Base, UTCDateTime


class Role(StrEnum):
    VIEWER = "viewer"
    ADMIN = "admin"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(16))
    # {dimension: [values]}: what a scoped viewer may see; empty means everything.
    scope: Mapped[dict[str, list[str]]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Sessions hold the generation they were signed in at; bumping it ends them all.
    session_generation: Mapped[int] = mapped_column(default=0, server_default="0")

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user", cascade="all, delete-orphan")

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def active(self) -> bool:
        return self.disabled_at is None


class LoginFailure(Base):
    """One failed sign-in, under an ``account:<email>`` and an ``address:<ip>`` key."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_key_failed_at", "key", "failed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(400))
    failed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters, so a listing can tell tokens apart without revealing them.
    hint: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    user: Mapped[User] = relationship(back_populates="tokens")


class Severity(StrEnum):
    """How far beyond the metric's minimum effect a finding is (see ``severity_of``)."""

    LOW = "low"  # every finding
    MEDIUM = "medium"  # at least twice the minimum effect
    HIGH = "high"  # at least three times


class DigestState(StrEnum):
    CLAIMED = "claimed"  # period taken, digest not rendered yet
    QUIET = "quiet"  # nothing new and no all-quiet note wanted: nothing sent
    SENDING = "sending"  # rendered; deliveries pending or being retried
    SENT = "sent"  # every recipient accepted it
    PARTIAL = "partial"  # some recipients failed for good
    FAILED = "failed"  # no recipient got it


class DeliveryState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # handed to the channel; committed before the call
    RETRY = "retry"  # temporary failure, next attempt at ``next_attempt_at``
    SENT = "sent"
    FAILED = "failed"  # permanent failure or attempts exhausted
    UNCERTAIN = "uncertain"  # interrupted mid-send: never resent, to rule out a duplicate


class Subscription(Base):
    """Who gets which slice of the digest, when, and through which channel."""

    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    channel: Mapped[str] = mapped_column(String(32), default="email")
    recipients: Mapped[list[str]] = mapped_column(JSON)
    transitions: Mapped[list[str]] = mapped_column(JSON, default=list)  # empty: all
    segments: Mapped[dict[str, list[str]]] = mapped_column(JSON, default=dict)  # empty: everyone
    metrics: Mapped[list[str]] = mapped_column(JSON, default=list)  # empty: all
    min_severity: Mapped[str] = mapped_column(String(16), default=Severity.LOW)
    weekday: Mapped[str] = mapped_column(String(3), default="mon")
    hour: Mapped[int] = mapped_column(SmallInteger, default=7)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    send_when_quiet: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Digest(Base):
    """One subscription's digest for one period: the claim and the rendered content."""

    __tablename__ = "digests"
    __table_args__ = (UniqueConstraint("subscription_id", "period", name="uq_digests_subscription_period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id", ondelete="CASCADE"))
    period: Mapped[str] = mapped_column(String(16))  # ISO week of the slot in the recipient's zone
    state: Mapped[str] = mapped_column(String(16), default=DigestState.CLAIMED)
    owner: Mapped[str] = mapped_column(String(64))  # claim token of the process that holds it
    claimed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    as_of: Mapped[dt.date | None] = mapped_column(Date, nullable=True)  # the analysis it reports
    subject: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")
    html: Mapped[str] = mapped_column(Text, default="")
    # [{"cid", "alt", "png"}] with the PNG in base64: the digest can be re-sent
    # after a restart without rendering it again.
    images: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    # Finding ids by section ({"new": [...], "ongoing": [...], "recovered": [...]}):
    # what this subscription has been told, so the next digest only repeats briefly.
    findings: Mapped[dict[str, list[str]]] = mapped_column(JSON, default=dict)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    deliveries: Mapped[list[DigestDelivery]] = relationship(
        back_populates="digest", order_by="DigestDelivery.id", cascade="all, delete-orphan"
    )


class DigestDelivery(Base):
    """One recipient of one digest, with its state and retry schedule."""

    __tablename__ = "digest_deliveries"
    __table_args__ = (UniqueConstraint("digest_id", "recipient", name="uq_digest_deliveries_recipient"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    digest_id: Mapped[int] = mapped_column(ForeignKey("digests.id", ondelete="CASCADE"), index=True)
    recipient: Mapped[str] = mapped_column(String(320))
    state: Mapped[str] = mapped_column(String(16), default=DeliveryState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")

    digest: Mapped[Digest] = relationship(back_populates="deliveries")
    attempt_log: Mapped[list[DeliveryAttempt]] = relationship(
        order_by="DeliveryAttempt.id", cascade="all, delete-orphan"
    )


class DeliveryAttempt(Base):
    """One try at handing a digest to a channel: failures are recorded, never swallowed."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("digest_deliveries.id", ondelete="CASCADE"), index=True)
    attempted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(16))  # sent, temporary, permanent, uncertain
    error: Mapped[str] = mapped_column(Text, default="")


# APScheduler's job store table, declared here with the columns its
# SQLAlchemyJobStore creates, so that migration 0004 creates it and
# `mspmon db upgrade` owns every table (the store's own create is then a no-op).
SCHEDULER_JOBS_TABLE = "apscheduler_jobs"
scheduler_jobs = Table(
    SCHEDULER_JOBS_TABLE,
    Base.metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)
