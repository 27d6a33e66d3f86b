"""predictions.forced: whether X-Model-Variant or a versioned route chose the variant (ecebdb3).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21

Rows logged before it were routed by the table (only routed rows existed): ``false``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "predictions",
        sa.Column("forced", sa.Boolean, nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("forced")
