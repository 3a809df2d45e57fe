"""The data model.

Survey responses are the fact table: millions of rows, written in bulk and grouped by
period and segment. Dimensions are the organisation's own (country, service,
assignment group, ...), so they cannot be columns named in code; a JSON document or an
entity-attribute-value table would make every GROUP BY parse JSON or join per row.
Instead each response has ``DIMENSION_SLOTS`` integer slot columns (``d01`` ...).
A dimension is registered in the ``dimensions`` table and assigned a free slot the
first time an import file carries it; its values are dictionary-encoded in
``dimension_values``. Grouping by a dimension is then a GROUP BY on a small integer
column of one table, which both SQLite and PostgreSQL do fast
(see ``benchmarks/ingest.py`` for the measured figures).

Feedback factors are dictionary-encoded the same way, as bits of ``factor_mask`` so
that per-factor counts are ``SUM((factor_mask & bit) > 0)`` in a single scan; the
exact list as given is kept in ``factors`` for display and export.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

DIMENSION_SLOTS = 16
MAX_FACTORS = 63  # bits of a signed 64-bit factor_mask
DEFAULT_BASELINE_WEEKS = 12
DEFAULT_OBSERVATION_WEEKS = 12


def slot_column(slot: int) -> str:
    """Name of the response column that holds dimension slot ``slot`` (1-based)."""
    return f"d{slot:02d}"


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware datetimes stored as naive UTC.

    SQLite has no time zone type; storing UTC everywhere and re-attaching the zone on
    the way out gives the same behaviour on both backends.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a UTC time is required")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC)


class TicketType(StrEnum):
    INCIDENT = "incident"
    REQUEST = "request"
    OTHER = "other"


class ImportStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PARTIAL = "partial"  # --skip-invalid: valid rows in, rejects written aside
    INTERRUPTED = "interrupted"  # SIGINT / SIGTERM mid-import: rolled back, nothing written


class Base(DeclarativeBase):
    pass


class Dimension(Base):
    """A segment attribute such as ``country``, assigned to a slot column of responses."""

    __tablename__ = "dimensions"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    slot: Mapped[int] = mapped_column(SmallInteger, unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    values: Mapped[list[DimensionValue]] = relationship(back_populates="dimension")

    @property
    def column(self) -> str:
        return slot_column(self.slot)


class DimensionValue(Base):
    """One value of a dimension; responses store its id in the dimension's slot."""

    __tablename__ = "dimension_values"
    __table_args__ = (UniqueConstraint("dimension_id", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dimension_id: Mapped[int] = mapped_column(ForeignKey("dimensions.id", ondelete="CASCADE"))
    value: Mapped[str] = mapped_column(String(200))
    first_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    dimension: Mapped[Dimension] = relationship(back_populates="values")


class Factor(Base):
    """A feedback factor ("Long waiting time"), encoded as one bit of ``factor_mask``."""

    __tablename__ = "factors"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    bit: Mapped[int] = mapped_column(SmallInteger, unique=True)


class Transition(Base):
    """An IT change with a go-live date, e.g. the service desk moving to an MSP."""

    __tablename__ = "transitions"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    go_live: Mapped[dt.date] = mapped_column(Date)
    # {dimension name: [values]}: a response is in scope when, for every dimension
    # listed, its value is one of the values listed. Empty means everyone.
    scope: Mapped[dict[str, list[str]]] = mapped_column(JSON, default=dict)
    description: Mapped[str] = mapped_column(Text, default="")
    baseline_weeks: Mapped[int] = mapped_column(Integer, default=DEFAULT_BASELINE_WEEKS)
    observation_weeks: Mapped[int] = mapped_column(Integer, default=DEFAULT_OBSERVATION_WEEKS)
    # Experience targets, e.g. {"metric": "happiness", "op": ">=", "value": 70,
    # "weeks": 12, "segment": {}}: see ``monitor.targets``.
    targets: Mapped[list[dict]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class ImportRun(Base):
    """One ``ingest`` of one or more files: kept so failures and freshness are visible."""

    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(100))
    paths: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    inserted: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


# The fact table is used through SQLAlchemy Core (bulk insert, GROUP BY), so it is a
# plain Table on the same metadata rather than an ORM class.
responses = Table(
    "responses",
    Base.metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("source", String(100), nullable=False),
    Column("response_id", String(200), nullable=False),
    Column("submitted_at", UTCDateTime, nullable=False),
    # Days since 1970-01-01 of submitted_at in the configured time zone: periods are
    # integer arithmetic on it, identical and fast on every backend.
    Column("local_day", Integer, nullable=False),
    Column("ticket_id", String(100), nullable=False, default=""),
    Column("ticket_type", String(16), nullable=False),
    Column("rating", SmallInteger, nullable=False),
    Column("lost_time_minutes", Float, nullable=True),
    Column("factors", JSON, nullable=False),
    Column("factor_mask", BigInteger, nullable=False, default=0),
    Column("comment", Text, nullable=False, default=""),
    *(Column(slot_column(slot), Integer, nullable=True) for slot in range(1, DIMENSION_SLOTS + 1)),
    Column("content_hash", BigInteger, nullable=False),
    Column("ingested_at", UTCDateTime, nullable=False),
    UniqueConstraint("source", "response_id", name="uq_responses_source_response_id"),
    Index("ix_responses_local_day", "local_day"),
)


class AnalysisRun(Base):
    """One run of the analysis, failed ones included: freshness and failures stay visible."""

    __tablename__ = "analysis_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    as_of: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    findings: Mapped[int] = mapped_column(Integer, default=0)
    series: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # The report as ``mspmon analyze --json`` prints it: digests and the web view read
    # transitions' before/after comparisons from here instead of recomputing them.
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class FindingState(StrEnum):
    NEW = "new"  # first reported in this run's period
    ONGOING = "ongoing"  # reported before and still open
    RECOVERED = "recovered"  # the metric came back (``recovered_on`` is set)
    ENDED = "ended"  # its segment stopped receiving responses (``ended_on``, ``ended_reason``)


class FindingScope(StrEnum):
    GENERIC = "generic"  # spread over every dimension's segments in proportion to size
    LOCALIZED = "localized"  # concentrated in a few named segments
    MIXED = "mixed"  # a generic part plus a localized part


class Label(StrEnum):
    """A user's verdict on a finding, in the spirit of anomaly-feedback systems."""

    CONFIRMED = "confirmed"
    EXPECTED = "expected"  # e.g. the dip a go-live was expected to cause
    FALSE_ALARM = "false_alarm"
    NEW_NORMAL = "new_normal"


class Finding(Base):
    """A change on the worse side that matters, with an identity stable across runs.

    A weekly re-run matches a change to the stored finding of the same metric and
    segment whose change date lies within a few periods, and keeps its id, so
    alerting never announces the same dip twice.
    """

    __tablename__ = "findings"
    __table_args__ = (Index("ix_findings_metric_segment", "metric", "segment_key"),)

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    metric: Mapped[str] = mapped_column(String(250))
    segment_key: Mapped[str] = mapped_column(String(1000))
    segment: Mapped[dict[str, str]] = mapped_column(JSON)
    change_date: Mapped[dt.date] = mapped_column(Date)
    direction: Mapped[str] = mapped_column(String(16))
    before: Mapped[float] = mapped_column(Float)
    after: Mapped[float] = mapped_column(Float)
    delta: Mapped[float] = mapped_column(Float)
    ci_low: Mapped[float] = mapped_column(Float)
    ci_high: Mapped[float] = mapped_column(Float)
    n_before: Mapped[int] = mapped_column(Integer)
    n_after: Mapped[int] = mapped_column(Integer)
    p_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    recovered_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    transition: Mapped[str | None] = mapped_column(String(200), nullable=True)
    first_reported: Mapped[dt.date] = mapped_column(Date)
    last_reported: Mapped[dt.date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(16), default=FindingState.NEW)
    # Attribution (``monitor.analysis.attribution``): a root finding is explained by no other;
    # an echo keeps the id of the root that explains it.
    root: Mapped[bool] = mapped_column(Boolean, default=True)
    root_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    scope: Mapped[str | None] = mapped_column(String(16), nullable=True)
    explains: Mapped[float | None] = mapped_column(Float, nullable=True)
    impact: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Named segments with their shares, factor shifts, suggestions, mix versus rate,
    # difference-in-differences and the drill-down tree: see ``monitor.analysis.attribution``.
    attribution: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Detection (``monitor.analysis.detect``): how it was found ("search", "known_date"
    # at a go-live, "kept" on its own date by hysteresis, "corroborated" where a
    # companion metric changed) and the known date's name (transition, finding, metric).
    found_by: Mapped[str | None] = mapped_column(String(16), nullable=True)
    known_date: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # "step" or "gradual"; a gradual change slides from change_date to ramp_end at
    # slope metric units per period (slope_ci_* its 95% interval).
    shape: Mapped[str | None] = mapped_column(String(16), nullable=True)
    ramp_end: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    slope: Mapped[float | None] = mapped_column(Float, nullable=True)
    slope_ci_low: Mapped[float | None] = mapped_column(Float, nullable=True)
    slope_ci_high: Mapped[float | None] = mapped_column(Float, nullable=True)
    # State "ended": the first day without responses in its segment, and why.
    ended_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    ended_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # What the analysis says beside the figures (issue 12): "sla" on a Happiness dip,
    # "happiness" on an SLA-met fall, "voice" (response-rate and skew flags).
    notes: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    labels: Mapped[list[FindingLabel]] = relationship(
        back_populates="finding", order_by="FindingLabel.created_at", cascade="all, delete-orphan"
    )

    @property
    def label(self) -> FindingLabel | None:
        """The latest verdict; earlier ones stay as history."""
        return self.labels[-1] if self.labels else None


class FindingLabel(Base):
    """Who said what about a finding, when, and why; the latest one counts."""

    __tablename__ = "finding_labels"

    id: Mapped[int] = mapped_column(primary_key=True)
    finding_id: Mapped[str] = mapped_column(ForeignKey("findings.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(16))
    author: Mapped[str] = mapped_column(String(200))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    finding: Mapped[Finding] = relationship(back_populates="labels")


class Silence(Base):
    """Mute one finding, or every finding of a segment, until a date, with a reason.

    Exactly one of ``finding_id`` and ``segment_key`` is set. A segment silence covers
    findings whose segment includes it (``country=Finland`` mutes Finland x SAP too).
    """

    __tablename__ = "silences"

    id: Mapped[int] = mapped_column(primary_key=True)
    finding_id: Mapped[str | None] = mapped_column(
        ForeignKey("findings.id", ondelete="CASCADE"), nullable=True, index=True
    )
    segment_key: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    segment: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    until: Mapped[dt.date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class SegmentCube(Base):
    """The weekly statistics of every segment of one grouping (``country|service``)."""

    __tablename__ = "segment_cubes"

    grouping: Mapped[str] = mapped_column(String(500), primary_key=True)  # "" is everyone
    as_of: Mapped[dt.date] = mapped_column(Date)
    built_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    period: Mapped[str] = mapped_column(String(8))
    first_period: Mapped[int] = mapped_column(Integer)
    last_period: Mapped[int] = mapped_column(Integer)
    stat_names: Mapped[list[str]] = mapped_column(JSON)
    segments: Mapped[list[list[str]]] = mapped_column(JSON)  # values in grouping order
    payload: Mapped[bytes] = mapped_column(LargeBinary)
