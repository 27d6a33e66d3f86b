"""The feature step: raw ride records in, the course's features out.

It is the first step of the model pipeline (:func:`duration_core.model.build_pipeline`), so a
service passes the records it receives and training and serving cannot drift apart.

Features (DataTalksClub mlops-zoomcamp, ``01-intro/duration-prediction.ipynb``):
``PU_DO`` = pickup zone + ``"_"`` + dropoff zone as a category (e.g. ``"43_151"``), and
``trip_distance`` in miles. A missing zone becomes the token :data:`MISSING_ZONE`, its own
category, never ``"nan"`` or ``"132.0"``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from duration_core.errors import InvalidRidesError, TripDataError
from duration_core.trips import location_ids

#: The raw fields a ride record needs (the request body of the level-1 service).
RIDE_FIELDS = ("PULocationID", "DOLocationID", "trip_distance")

#: The features the step produces, in column order.
FEATURE_COLUMNS = ("PU_DO", "trip_distance")
#: With ``zones=True`` the step also passes the zone IDs on as numbers (NaN when missing), for
#: models that split on them (the gradient-boosting candidate).
ZONE_COLUMNS = ("PULocationID", "DOLocationID")

#: Category token for a pickup or dropoff zone that is null in the records.
MISSING_ZONE = "missing"

Rides = pd.DataFrame | Sequence[Mapping[str, Any]] | Mapping[str, Any]


def rides_frame(rides: Rides) -> pd.DataFrame:
    """Ride records as a DataFrame: a DataFrame as is, a dict as one row, a list of dicts.

    Raises:
        InvalidRidesError: ``rides`` is none of those, is empty, or lacks one of
            :data:`RIDE_FIELDS` (the message names the field).
    """
    if isinstance(rides, pd.DataFrame):
        frame = rides
        if frame.columns.duplicated().any():
            duplicated = frame.columns[frame.columns.duplicated()][0]
            raise InvalidRidesError(f"the rides have several columns named {duplicated!r}")
    elif isinstance(rides, Mapping):
        if any(not pd.api.types.is_scalar(rides.get(f)) for f in RIDE_FIELDS):
            raise InvalidRidesError(
                "a ride dict holds one ride: its fields must be single values "
                "(pass a list of dicts or a DataFrame for several rides)"
            )
        frame = pd.DataFrame.from_records([rides])
    elif isinstance(rides, Sequence) and not isinstance(rides, str | bytes):
        for row, ride in enumerate(rides):
            if not isinstance(ride, Mapping):
                raise InvalidRidesError("rides must be a DataFrame, a dict or a list of dicts")
            for name in RIDE_FIELDS:
                if name not in ride:
                    raise InvalidRidesError(f"ride {row} lacks the field {name!r}")
        frame = pd.DataFrame.from_records(list(rides))
    else:
        raise InvalidRidesError(
            f"rides must be a DataFrame, a dict or a list of dicts, not {type(rides).__name__}"
        )
    if frame.empty:
        raise InvalidRidesError("no rides given")
    missing = [f for f in RIDE_FIELDS if f not in frame.columns]
    if missing:
        raise InvalidRidesError(f"ride records lack the field {missing[0]!r}")
    return frame


def zone_ids(values: pd.Series, *, name: str) -> pd.Series:
    """Zone IDs as nullable ``Int64`` (see :func:`duration_core.trips.location_ids`).

    Raises:
        InvalidRidesError: A value is not a whole number; the message names the field.
    """
    try:
        return location_ids(values, name=name)
    except TripDataError as exc:
        raise InvalidRidesError(str(exc)) from None


def zone_token(zone: Any) -> str:
    """One zone's category token: ``132`` -> ``"132"``, null -> :data:`MISSING_ZONE`."""
    return MISSING_ZONE if pd.isna(zone) else str(int(zone))


def pair_tokens(pickup: pd.Series, dropoff: pd.Series) -> np.ndarray:
    """``PU_DO`` tokens such as ``"43_151"``, an object array of shape ``(n,)``.

    The string is built once per distinct pair (about 13,000 in a green month), not per ride,
    and the array holds references to those strings.
    """
    pu_codes, pu_zones = pd.factorize(pickup, use_na_sentinel=False)
    do_codes, do_zones = pd.factorize(dropoff, use_na_sentinel=False)
    width = max(len(do_zones), 1)
    pair_codes, pairs = pd.factorize(pu_codes.astype("int64") * width + do_codes)
    tokens: np.ndarray = np.array(
        [
            f"{zone_token(pu_zones[int(p) // width])}_{zone_token(do_zones[int(p) % width])}"
            for p in pairs
        ],
        dtype=object,
    )
    return tokens[pair_codes]


def build_features(rides: Rides, *, zones: bool = False) -> pd.DataFrame:
    """The course's features from raw rides.

    Args:
        rides: ``n`` ride records with :data:`RIDE_FIELDS` (other fields are ignored).
        zones: Also return ``PULocationID`` and ``DOLocationID`` as float64 (NaN if missing).

    Returns:
        ``n`` rows with columns ``PU_DO`` (object dtype, str values) and ``trip_distance``
        (float64, miles), then the zone columns when ``zones``, in the order of the input.

    Raises:
        InvalidRidesError: A field is missing, a zone is not a whole number, or a distance is
            not a finite number.
    """
    frame = rides_frame(rides)
    pu = zone_ids(frame["PULocationID"], name="PULocationID")
    do = zone_ids(frame["DOLocationID"], name="DOLocationID")
    miles = frame["trip_distance"]
    try:
        if miles.dtype.kind in "mMb" or (
            miles.dtype == object and any(isinstance(v, bool | np.bool_) for v in miles)
        ):
            raise TypeError("not a number of miles")
        distance = pd.to_numeric(miles).to_numpy(dtype="float64", na_value=np.nan)
    except (TypeError, ValueError, OverflowError):
        raise InvalidRidesError("trip_distance must be a number of miles") from None
    bad = ~np.isfinite(distance)
    if bad.any():
        raise InvalidRidesError(
            f"trip_distance must be a finite number of miles; {int(bad.sum()):,} of "
            f"{len(distance):,} rides have none (first at row {int(np.argmax(bad))})"
        )
    # object dtype on purpose: the encoders work on Python strings.
    columns = {
        "PU_DO": pd.Series(pair_tokens(pu, do), index=frame.index, dtype=object),
        "trip_distance": pd.Series(distance, index=frame.index),
    }
    if zones:
        columns["PULocationID"] = pu.astype("float64")
        columns["DOLocationID"] = do.astype("float64")
    return pd.DataFrame(columns)


class RideFeatures(TransformerMixin, BaseEstimator):  # type: ignore[misc]  # sklearn is untyped
    """scikit-learn transformer wrapping :func:`build_features`; it learns nothing.

    ``transform`` takes a DataFrame or a list of ride dicts (shape ``(n,)`` records) and
    returns a DataFrame of shape ``(n, 2)``: ``PU_DO`` and ``trip_distance``, or ``(n, 4)``
    with the zone IDs as numbers when ``zones=True``.
    """

    def __init__(self, zones: bool = False) -> None:
        self.zones = zones

    def fit(self, X: Rides, y: object = None) -> RideFeatures:  # noqa: N803 (sklearn API)
        """Nothing to learn; checks that ``X`` holds usable rides."""
        rides_frame(X)
        return self

    def transform(self, X: Rides) -> pd.DataFrame:  # noqa: N803 (sklearn API)
        """See :func:`build_features`."""
        return build_features(X, zones=getattr(self, "zones", False))

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """``["PU_DO", "trip_distance"]``, plus the zone columns when ``zones``."""
        names = FEATURE_COLUMNS + (ZONE_COLUMNS if getattr(self, "zones", False) else ())
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]  # sklearn.utils.Tags, untyped
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        return tags
