"""Prediction logs as the released routers wrote them, before the migrations existed: the
tables exactly as c371331 (the first release) and ecebdb3 (``forced`` added) declared them,
filled with real rides of green 2021-03 (never with the migrations under test)."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    insert,
)

from duration_core import read_trips

OLD_ROWS = 400


def release_schema(forced: bool) -> MetaData:
    """The tables as released at c371331 (``forced=False``) or ecebdb3 (``forced=True``)."""
    metadata = MetaData()
    Table(
        "predictions", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("at", Float, nullable=False),
        Column("request_id", String(36), nullable=False),
        Column("ride_id", String(128), index=True),
        Column("variant", String(40), nullable=False, index=True),
        Column("model_version", String(20), nullable=False),
        Column("shadow", Boolean, nullable=False),
        *([Column("forced", Boolean, nullable=False, default=False)] if forced else []),
        Column("pu_location_id", Integer),
        Column("do_location_id", Integer),
        Column("trip_distance", Float),
        Column("prediction", Float),
        Column("latency_ms", Float, nullable=False),
        Column("error", Text),
    )  # fmt: skip
    Table(
        "feedback", metadata,
        Column("ride_id", String(128), primary_key=True),
        Column("actual_minutes", Float, nullable=False),
        Column("received_at", Float, nullable=False),
    )  # fmt: skip
    Table(
        "events", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("at", Float, nullable=False),
        Column("action", String(32), nullable=False),
        Column("variant", String(40)),
        Column("model_version", String(20)),
        Column("previous_version", String(20)),
        Column("actor", String(100), nullable=False),
        Column("detail", Text, nullable=False),
        Column("log_position", Integer, nullable=False),
        Column("revision", Integer, nullable=False),
        Column("table_after", Text, nullable=False),
        Column("aliases_after", Text, nullable=False),
    )  # fmt: skip
    return metadata


#: A moment with microseconds, in March 2021 (the rides' month).
T0 = dt.datetime(2021, 3, 1, 8, 0, 0, 123456, tzinfo=dt.UTC).timestamp()
TABLE = {
    "champion": {"model_version": "1", "weight": 0.9, "shadow": False},
    "challenger": {"model_version": "2", "weight": 0.1, "shadow": False},
}


def fill_old_log(url: str, *, forced: bool) -> list[dict[str, object]]:
    """Create the released tables at ``url`` and log :data:`OLD_ROWS` real rides (champion
    and challenger alternately, all with feedback) and a start entry; return the rows."""
    rides = read_trips("green:2021-03").head(OLD_ROWS)
    rows = []
    for i, ride in enumerate(rides.itertuples()):
        champion = i % 2 == 0
        rows.append(
            {
                "at": T0 + i * 0.5,
                "request_id": f"old-{i}",
                "ride_id": f"old-{i}",
                "variant": "champion" if champion else "challenger",
                "model_version": "1" if champion else "2",
                "shadow": False,
                **({"forced": False} if forced else {}),
                "pu_location_id": int(ride.PULocationID),
                "do_location_id": int(ride.DOLocationID),
                "trip_distance": float(ride.trip_distance),
                "prediction": float(ride.duration) + (1.0 if champion else -0.5),
                "latency_ms": 1.5,
                "error": None,
            }
        )
    metadata = release_schema(forced)
    engine = create_engine(url)
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(metadata.tables["predictions"]), rows)
        connection.execute(
            insert(metadata.tables["feedback"]),
            [
                {"ride_id": r["ride_id"], "actual_minutes": float(d), "received_at": T0 + 3600}
                for r, d in zip(rows, rides["duration"], strict=True)
            ],
        )
        connection.execute(
            insert(metadata.tables["events"]),
            [
                {
                    "at": T0 - 60, "action": "start", "variant": None, "model_version": None,
                    "previous_version": None, "actor": "duration-router", "detail": "start",
                    "log_position": 0, "revision": 1, "table_after": json.dumps(TABLE),
                    "aliases_after": json.dumps({"champion": "1", "challenger": "2"}),
                }
            ],
        )  # fmt: skip
    engine.dispose()
    return rows
