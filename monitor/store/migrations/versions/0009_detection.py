"""Findings carry how they were found, their shape (step or gradual slide) and why they ended (issue 11).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

COLUMNS = (
    ("found_by", sa.String(length=16)),
    ("known_date", sa.String(length=200)),
    ("shape", sa.String(length=16)),
    ("ramp_end", sa.Date()),
    ("slope", sa.Float()),
    ("slope_ci_low", sa.Float()),
    ("slope_ci_high", sa.Float()),
    ("ended_on", sa.Date()),
    ("ended_reason", sa.Text()),
)


def upgrade() -> None:
    with op.batch_alter_table("findings") as batch:
        for name, kind in COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("findings") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
