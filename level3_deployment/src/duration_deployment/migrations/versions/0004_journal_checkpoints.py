"""journal_checkpoints: how far each router's write-ahead journal is in the database.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04

A router answers a prediction once its row is in its local journal; the writer copies rows to
``predictions`` and moves the journal's checkpoint in the same transaction, so a router
restarted after a crash replays exactly the rows after the checkpoint.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "journal_checkpoints",
        sa.Column("journal_id", sa.String(36), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("journal_checkpoints")
