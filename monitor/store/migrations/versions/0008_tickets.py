"""Tickets as a first-class record (issue 12).

Revision ID: 0008
Revises: 0006
Create Date: 2026-11-23

Numbered 0008 on its branch; the lead re-chains it after 0006/0007 at merge.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None

SLOTS = 16
UTC_TIME = sa.DateTime()


def upgrade() -> None:
    op.create_table(
        "tickets",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("ticket_id", sa.String(length=100), nullable=False, unique=True),
        sa.Column("ticket_type", sa.String(length=16), nullable=False),
        sa.Column("opened_at", UTC_TIME, nullable=False),
        sa.Column("resolved_at", UTC_TIME, nullable=True),
        sa.Column("closed_at", UTC_TIME, nullable=True),
        sa.Column("updated_at", UTC_TIME, nullable=True),
        sa.Column("opened_day", sa.Integer(), nullable=False),
        sa.Column("resolved_day", sa.Integer(), nullable=True),
        sa.Column("priority", sa.String(length=64), nullable=False),
        sa.Column("sla_met", sa.Boolean(), nullable=True),
        sa.Column("reassignment_count", sa.SmallInteger(), nullable=True),
        sa.Column("reopen_count", sa.SmallInteger(), nullable=True),
        sa.Column("caller", sa.String(length=64), nullable=True),
        *(sa.Column(f"d{slot:02d}", sa.Integer(), nullable=True) for slot in range(1, SLOTS + 1)),
        sa.Column("content_hash", sa.BigInteger(), nullable=False),
        sa.Column("ingested_at", UTC_TIME, nullable=False),
    )
    op.create_index("ix_tickets_resolved_day", "tickets", ["resolved_day"])
    # Responses join their ticket by ticket_id (dimension inheritance, response rate).
    op.create_index("ix_responses_ticket_id", "responses", ["ticket_id"])


def downgrade() -> None:
    op.drop_index("ix_responses_ticket_id", table_name="responses")
    op.drop_index("ix_tickets_resolved_day", table_name="tickets")
    op.drop_table("tickets")
