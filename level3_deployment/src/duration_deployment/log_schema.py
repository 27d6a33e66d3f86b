"""The prediction log's tables as the code writes them today: the head of the migrations.

Every change to these tables is also an Alembic revision in ``migrations/versions/`` (one
per change since the first released schema, ``0001``); :mod:`duration_deployment.log_migrations`
brings a database to this schema. Change both together: a table edited here but not migrated
fails every insert on a log made before the change (what happened when ``forced`` was added).

Tables:
    ``predictions``: one row per prediction, shadow ones included: time of the answer, request
        id, ride id, variant, model version, the inputs, the predicted minutes (NULL when the
        variant failed, with ``error`` saying why), latency (ms), shadow or not.
    ``feedback``: the actual duration (minutes) of a ride id, the last one sent wins.
    ``events``: the deployment history (deploy, weight, remove, promote, rollback, guardrail
        rollbacks, notes), with who, when, which version before and after, and the table after.
    ``journal_checkpoints``: per write-ahead journal of a router, the last journal sequence
        number whose row is in ``predictions`` (written in the same transaction as the rows).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
)
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware timestamp, always UTC.

    PostgreSQL stores ``timestamp with time zone``; SQLite (no time zones) stores the UTC wall
    time as text, which sorts in time order. Python values in: an aware ``datetime`` or Unix
    seconds (``float``); out: an aware UTC ``datetime``.

    Raises:
        ValueError: A naive ``datetime`` (its zone would be a guess).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, int | float):
            moment = dt.datetime.fromtimestamp(float(value), dt.UTC)
        elif isinstance(value, dt.datetime):
            if value.tzinfo is None:
                raise ValueError(f"naive datetime {value.isoformat()}: give its time zone")
            moment = value.astimezone(dt.UTC)
        else:
            raise ValueError(f"a timestamp must be a datetime or Unix seconds, not {value!r}")
        return moment.replace(tzinfo=None) if dialect.name == "sqlite" else moment

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        moment: dt.datetime = value
        if moment.tzinfo is None:
            return moment.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC)


metadata = MetaData()

predictions = Table(
    "predictions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False, doc="time of the answer"),
    Column("request_id", String(36), nullable=False),
    Column("ride_id", String(128), index=True),
    Column("variant", String(40), nullable=False, index=True),
    Column("model_version", String(20), nullable=False),
    Column("shadow", Boolean, nullable=False),
    Column(
        "forced",
        Boolean,
        nullable=False,
        default=False,
        server_default=false(),
        doc="X-Model-Variant or a versioned route chose it",
    ),
    Column("pu_location_id", Integer),
    Column("do_location_id", Integer),
    Column("trip_distance", Float),
    Column("prediction", Float, doc="predicted trip duration, minutes; NULL on error"),
    Column("latency_ms", Float, nullable=False),
    Column("error", Text),
)

feedback = Table(
    "feedback",
    metadata,
    Column("ride_id", String(128), primary_key=True),
    Column("actual_minutes", Float, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    Column("action", String(32), nullable=False),
    Column("variant", String(40)),
    Column("model_version", String(20)),
    Column("previous_version", String(20)),
    Column("actor", String(100), nullable=False),
    Column("detail", Text, nullable=False),
    Column("log_position", Integer, nullable=False, doc="last predictions.id before the change"),
    Column("revision", Integer, nullable=False),
    Column("table_after", Text, nullable=False, doc="JSON: {variant: {version, weight, shadow}}"),
    Column("aliases_after", Text, nullable=False, doc="JSON: {alias: version}"),
)

journal_checkpoints = Table(
    "journal_checkpoints",
    metadata,
    Column("journal_id", String(36), primary_key=True),
    Column("seq", BigInteger, nullable=False, doc="last journal entry written to predictions"),
    Column("updated_at", UtcDateTime, nullable=False),
)
