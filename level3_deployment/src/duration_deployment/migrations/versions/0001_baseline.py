"""The first released schema of the prediction log (level 3's first release, c371331).

Revision ID: 0001
Revises:
Create Date: 2026-11-20

Timestamps are Unix seconds (``Float``) here; ``0003`` makes them timezone-aware.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("ride_id", sa.String(128)),
        sa.Column("variant", sa.String(40), nullable=False),
        sa.Column("model_version", sa.String(20), nullable=False),
        sa.Column("shadow", sa.Boolean, nullable=False),
        sa.Column("pu_location_id", sa.Integer),
        sa.Column("do_location_id", sa.Integer),
        sa.Column("trip_distance", sa.Float),
        sa.Column("prediction", sa.Float),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_predictions_ride_id", "predictions", ["ride_id"])
    op.create_index("ix_predictions_variant", "predictions", ["variant"])
    op.create_table(
        "feedback",
        sa.Column("ride_id", sa.String(128), primary_key=True),
        sa.Column("actual_minutes", sa.Float, nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("variant", sa.String(40)),
        sa.Column("model_version", sa.String(20)),
        sa.Column("previous_version", sa.String(20)),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("log_position", sa.Integer, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("table_after", sa.Text, nullable=False),
        sa.Column("aliases_after", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("events")
    op.drop_table("feedback")
    op.drop_index("ix_predictions_variant", "predictions")
    op.drop_index("ix_predictions_ride_id", "predictions")
    op.drop_table("predictions")
