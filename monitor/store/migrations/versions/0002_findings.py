"""Findings with stable identities, a log of analysis runs, and transition targets.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("transitions", sa.Column("targets", sa.JSON(), nullable=False, server_default="[]"))
    op.create_table(
        "analysis_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("findings", sa.Integer(), nullable=False),
        sa.Column("series", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "findings",
        sa.Column("id", sa.String(length=16), primary_key=True),
        sa.Column("metric", sa.String(length=250), nullable=False),
        sa.Column("segment_key", sa.String(length=1000), nullable=False),
        sa.Column("segment", sa.JSON(), nullable=False),
        sa.Column("change_date", sa.Date(), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("before", sa.Float(), nullable=False),
        sa.Column("after", sa.Float(), nullable=False),
        sa.Column("delta", sa.Float(), nullable=False),
        sa.Column("ci_low", sa.Float(), nullable=False),
        sa.Column("ci_high", sa.Float(), nullable=False),
        sa.Column("n_before", sa.Integer(), nullable=False),
        sa.Column("n_after", sa.Integer(), nullable=False),
        sa.Column("p_value", sa.Float(), nullable=True),
        sa.Column("recovered_on", sa.Date(), nullable=True),
        sa.Column("transition", sa.String(length=200), nullable=True),
        sa.Column("first_reported", sa.Date(), nullable=False),
        sa.Column("last_reported", sa.Date(), nullable=False),
    )
    op.create_index("ix_findings_metric_segment", "findings", ["metric", "segment_key"])


def downgrade() -> None:
    op.drop_index("ix_findings_metric_segment", table_name="findings")
    op.drop_table("findings")
    op.drop_table("analysis_runs")
    with op.batch_alter_table("transitions") as batch:
        batch.drop_column("targets")
