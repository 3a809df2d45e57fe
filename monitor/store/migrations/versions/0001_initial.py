"""Initial schema: responses with dimension slots, dimensions, factors, transitions, imports.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Fixed at this revision: a later revision that adds slots adds columns.
SLOTS = 16
UTC_TIME = sa.DateTime()  # UTCDateTime stores naive UTC in a plain DATETIME/TIMESTAMP


def upgrade() -> None:
    op.create_table(
        "dimensions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(length=100), nullable=False, unique=True),
        sa.Column("slot", sa.SmallInteger(), nullable=False, unique=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
    )
    op.create_table(
        "dimension_values",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "dimension_id",
            sa.Integer(),
            sa.ForeignKey("dimensions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("first_seen_at", UTC_TIME, nullable=False),
        sa.UniqueConstraint("dimension_id", "value"),
    )
    op.create_table(
        "factors",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(length=200), nullable=False, unique=True),
        sa.Column("bit", sa.SmallInteger(), nullable=False, unique=True),
    )
    op.create_table(
        "transitions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(length=200), nullable=False, unique=True),
        sa.Column("go_live", sa.Date(), nullable=False),
        sa.Column("scope", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("baseline_weeks", sa.Integer(), nullable=False),
        sa.Column("observation_weeks", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
    )
    op.create_table(
        "import_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("paths", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("inserted", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("started_at", UTC_TIME, nullable=False),
        sa.Column("finished_at", UTC_TIME, nullable=False),
    )
    op.create_table(
        "responses",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("response_id", sa.String(length=200), nullable=False),
        sa.Column("submitted_at", UTC_TIME, nullable=False),
        sa.Column("local_day", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.String(length=100), nullable=False),
        sa.Column("ticket_type", sa.String(length=16), nullable=False),
        sa.Column("rating", sa.SmallInteger(), nullable=False),
        sa.Column("lost_time_minutes", sa.Float(), nullable=True),
        sa.Column("factors", sa.JSON(), nullable=False),
        sa.Column("factor_mask", sa.BigInteger(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        *(sa.Column(f"d{slot:02d}", sa.Integer(), nullable=True) for slot in range(1, SLOTS + 1)),
        sa.Column("content_hash", sa.BigInteger(), nullable=False),
        sa.Column("ingested_at", UTC_TIME, nullable=False),
        sa.UniqueConstraint("source", "response_id", name="uq_responses_source_response_id"),
    )
    op.create_index("ix_responses_local_day", "responses", ["local_day"])


def downgrade() -> None:
    op.drop_index("ix_responses_local_day", table_name="responses")
    for table in ("responses", "import_runs", "transitions", "factors", "dimension_values"):
        op.drop_table(table)
    op.drop_table("dimensions")
