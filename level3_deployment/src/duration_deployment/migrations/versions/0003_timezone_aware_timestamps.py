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

# Unix seconds -> 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC), truncated to the microsecond: whole
# seconds (floor, so 1969 works) through strftime, which would round a fraction to the
# millisecond, and the fraction appended.
_FLOOR = "(CAST({c} AS INTEGER) - ({c} < CAST({c} AS INTEGER)))"
_SQLITE_TEXT = (
    f"strftime('%Y-%m-%d %H:%M:%S', {_FLOOR}, 'unixepoch') || printf('.%06d', "
    f"min(999999, CAST(({{c}} - {_FLOOR}) * 1000000 AS INTEGER)))"
)
# ... and back: julianday reads that text (to the millisecond).
_SQLITE_EPOCH = "(julianday({c}) - 2440587.5) * 86400.0"
_UPDATE = "UPDATE {t} SET {c} = {value} WHERE typeof({c}) IN ({stored})"
# Years 1-9999, what a Python datetime (and so every reader of the log) can hold.
_OUT_OF_RANGE = "SELECT count(*), min({c}) FROM {t} WHERE {c} < -62135596800 OR {c} >= 253402300800"


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, column in COLUMNS:
        _refuse_out_of_range(table, column)
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


def _refuse_out_of_range(table: str, column: str) -> None:
    """Stop (the upgrade rolls back) on values no date can hold: Unix seconds past year 9999,
    or before year 1 (milliseconds written as seconds, say), naming the column and a row.

    Raises:
        ValueError: There are such values.
    """
    query = _OUT_OF_RANGE.format(t=table, c=column)
    bad = op.get_bind().exec_driver_sql(query).first()
    if bad is not None and bad[0]:
        raise ValueError(
            f"{table}.{column}: {bad[0]} rows hold Unix seconds no date can hold (e.g. "
            f"{bad[1]!r}, outside years 1-9999): correct or delete them, then upgrade again"
        )


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
