"""Attribution of findings (root, scope, explains, impact), their lifecycle state,
user labels and silences, and the analysis report kept with each run.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("analysis_runs", sa.Column("report", sa.JSON(), nullable=True))
    with op.batch_alter_table("findings") as batch:
        batch.add_column(sa.Column("state", sa.String(length=16), nullable=False, server_default="new"))
        batch.add_column(sa.Column("root", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column("root_id", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("scope", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("explains", sa.Float(), nullable=True))
        batch.add_column(sa.Column("impact", sa.Float(), nullable=True))
        batch.add_column(sa.Column("attribution", sa.JSON(), nullable=False, server_default="{}"))
    op.create_table(
        "finding_labels",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("finding_id", sa.String(length=16), sa.ForeignKey("findings.id", ondelete="CASCADE"), nullable=False),
        sa.Column("label", sa.String(length=16), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_finding_labels_finding_id", "finding_labels", ["finding_id"])
    op.create_table(
        "silences",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("finding_id", sa.String(length=16), sa.ForeignKey("findings.id", ondelete="CASCADE"), nullable=True),
        sa.Column("segment_key", sa.String(length=1000), nullable=True),
        sa.Column("segment", sa.JSON(), nullable=True),
        sa.Column("until", sa.Date(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_silences_finding_id", "silences", ["finding_id"])


def downgrade() -> None:
    op.drop_index("ix_silences_finding_id", "silences")
    op.drop_table("silences")
    op.drop_index("ix_finding_labels_finding_id", "finding_labels")
    op.drop_table("finding_labels")
    with op.batch_alter_table("findings") as batch:
        for column in ("attribution", "impact", "explains", "scope", "root_id", "root", "state"):
            batch.drop_column(column)
    op.drop_column("analysis_runs", "report")
