"""Per-ride rules that replay and batch scoring share: the stable ride id, and which rides
carry inputs the prediction API accepts."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np
import pandas as pd

from duration_service.schemas import MAX_TRIP_DISTANCE_MILES, MAX_ZONE, MIN_ZONE

#: The columns a ride id is made of, after the source and the position.
RIDE_ID_COLUMNS = (
    "pickup_datetime",
    "dropoff_datetime",
    "PULocationID",
    "DOLocationID",
    "trip_distance",
)


def ride_ids(rides: pd.DataFrame, source: str, positions: Iterable[int] | None = None) -> list[str]:
    """A stable id per ride: BLAKE2b (8 bytes, 16 hex digits) of the source, the ride's
    position among the month's kept rides and its pickup, dropoff, zones and distance (each as
    ``str`` writes it, joined by ``|``). Same file, same ids, on any machine and with any
    engine.

    Args:
        rides: Rides with :data:`RIDE_ID_COLUMNS`.
        source: ``green:2021-03`` (``TripData.source``).
        positions: Each ride's position among the month's kept rides; ``0..n-1`` when None.
    """
    columns = [
        _timestamp_texts(rides[c]) if pd.api.types.is_datetime64_any_dtype(rides[c])
        else list(map(str, rides[c].tolist()))
        for c in RIDE_ID_COLUMNS
    ]  # fmt: skip
    where = range(len(rides)) if positions is None else positions
    ids = []
    for position, *row in zip(where, *columns, strict=True):
        text = "|".join([source, str(position), *row])
        ids.append(hashlib.blake2b(text.encode(), digest_size=8).hexdigest())
    return ids


def _timestamp_texts(values: pd.Series) -> list[str]:
    """``str(pd.Timestamp)`` of each value, vectorised for whole seconds (a hundred times
    faster than calling ``str`` per ride); other values (fractions, NaT) go through ``str``."""
    stamps = values.to_numpy()
    if stamps.dtype.kind != "M":  # time-zone aware: keep pandas' own text
        return [str(v) for v in values.tolist()]
    seconds = stamps.astype("datetime64[s]")
    whole = (seconds == stamps) & ~np.isnat(stamps)
    texts: list[str] = np.char.replace(np.datetime_as_string(seconds, unit="s"), "T", " ").tolist()
    if not whole.all():
        for i in np.flatnonzero(~whole).tolist():
            texts[i] = str(values.iloc[i])
    return texts


def accepted_inputs(rides: pd.DataFrame) -> pd.Series:
    """True where the ride's inputs are ones the prediction API accepts (both zones 1-265,
    distance 0-500 miles); a boolean Series aligned with ``rides``."""
    return (
        rides["PULocationID"].between(MIN_ZONE, MAX_ZONE).fillna(False)
        & rides["DOLocationID"].between(MIN_ZONE, MAX_ZONE).fillna(False)
        & rides["trip_distance"].between(0, MAX_TRIP_DISTANCE_MILES).fillna(False)
    ).astype(bool)
