"""Timestamps as timezone-aware columns: ``predictions.at``, ``feedback.received_at``,
``events.at`` from Unix seconds (``Float``) to ``timestamp with time zone``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04

PostgreSQL converts in place with ``to_timestamp``. SQLite has no time zones: the column is
rebuilt (batch mode) and each value rewritten as the UTC wall time with microseconds, the text
SQLAlchemy stores for a ``DateTime`` there, so old and new rows sort and compare alike.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

#: The columns changed (names written into the SQL below: constants, never input).
COLUMNS = (("predictions", "at"), ("feedback", "received_at"), ("events", "at"))

# Unix seconds -> 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC), truncated to the microsecond.
_SQLITE_TEXT = (
    "strftime('%Y-%m-%d %H:%M:%S', {c}, 'unixepoch') || printf('.%06d', "
    "min(999999, CAST(({c} - CAST({c} AS INTEGER)) * 1000000 AS INTEGER)))"
)
# ... and back: julianday reads that text (to the millisecond).
_SQLITE_EPOCH = "(julianday({c}) - 2440587.5) * 86400.0"
_UPDATE = "UPDATE {t} SET {c} = {value} WHERE typeof({c}) IN ({stored})"


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, column in COLUMNS:
        if postgres:
            op.alter_column(
                table,
                column,
                type_=sa.DateTime(timezone=True),
                existing_type=sa.Float,
                existing_nullable=False,
                postgresql_using=f"to_timestamp({column})",
            )
            continue
        # Type first (the copy keeps the numbers), then the values (text is stored as text).
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                column,
                type_=sa.DateTime(timezone=True),
                existing_type=sa.Float,
                existing_nullable=False,
            )
        to_text = _SQLITE_TEXT.format(c=column)
        op.execute(_UPDATE.format(t=table, c=column, value=to_text, stored="'real', 'integer'"))


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, column in COLUMNS:
        if postgres:
            op.alter_column(
                table,
                column,
                type_=sa.Float,
                existing_type=sa.DateTime(timezone=True),
                existing_nullable=False,
                postgresql_using=f"extract(epoch from {column})",
            )
            continue
        to_epoch = _SQLITE_EPOCH.format(c=column)
        op.execute(_UPDATE.format(t=table, c=column, value=to_epoch, stored="'text'"))
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                column,
                type_=sa.Float,
                existing_type=sa.DateTime(timezone=True),
                existing_nullable=False,
            )
