"""Reading TLC trip-record files into rides with a trip duration in minutes.

The TLC publishes one parquet file per service and month. The services spell their columns
differently (TLC data dictionaries for yellow, green, FHV and high-volume FHV trip records);
:data:`SERVICE_COLUMNS` maps each to the canonical names used everywhere else in the project:

=====================  ==========================================================
canonical              meaning
=====================  ==========================================================
``pickup_datetime``    when the meter was engaged / the passenger was picked up
``dropoff_datetime``   when the meter was disengaged / the passenger was dropped off
``PULocationID``       TLC taxi zone (1-265) of the pickup; nullable ``Int64``
``DOLocationID``       TLC taxi zone (1-265) of the dropoff; nullable ``Int64``
``trip_distance``      miles on the meter (``trip_miles`` for high-volume FHV);
                       FHV records have none, so it is all-NaN there
``duration``           dropoff - pickup, in minutes (float)
=====================  ==========================================================

The course's filter keeps rides of 1 to 60 minutes (DataTalksClub mlops-zoomcamp,
``01-intro/duration-prediction.ipynb``); the bounds are parameters.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from duration_core.datasets import TripMonth, file_sha256, parse_source, resolve_month
from duration_core.errors import (
    EmptyDatasetError,
    InvalidValueError,
    MissingColumnError,
    NotParquetError,
    TripDataError,
    TripFileNotFoundError,
)

logger = logging.getLogger(__name__)

#: Course filter bounds, minutes (DataTalksClub mlops-zoomcamp, 01-intro).
MIN_DURATION_MINUTES = 1.0
MAX_DURATION_MINUTES = 60.0

RIDE_COLUMNS = ("pickup_datetime", "dropoff_datetime", "PULocationID", "DOLocationID")
LOCATION_COLUMNS = ("PULocationID", "DOLocationID")

#: Per service: canonical column -> accepted spellings in the TLC files (matched ignoring case).
SERVICE_COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "green": {
        "pickup_datetime": ("lpep_pickup_datetime",),
        "dropoff_datetime": ("lpep_dropoff_datetime",),
        "PULocationID": ("PULocationID",),
        "DOLocationID": ("DOLocationID",),
        "trip_distance": ("trip_distance",),
    },
    "yellow": {
        "pickup_datetime": ("tpep_pickup_datetime",),
        "dropoff_datetime": ("tpep_dropoff_datetime",),
        "PULocationID": ("PULocationID",),
        "DOLocationID": ("DOLocationID",),
        "trip_distance": ("trip_distance",),
    },
    "fhv": {
        "pickup_datetime": ("pickup_datetime",),
        "dropoff_datetime": ("dropOff_datetime", "dropoff_datetime"),
        "PULocationID": ("PUlocationID", "PULocationID"),
        "DOLocationID": ("DOlocationID", "DOLocationID"),
    },
    "fhvhv": {
        "pickup_datetime": ("pickup_datetime",),
        "dropoff_datetime": ("dropoff_datetime",),
        "PULocationID": ("PULocationID",),
        "DOLocationID": ("DOLocationID",),
        "trip_distance": ("trip_miles",),
    },
}


@dataclass(frozen=True)
class FilterReport:
    """How many rides each rule removed, in the order the rules are applied.

    A ride is counted under the first rule it fails: missing timestamp, negative duration,
    too short, too long, then (when distances are required) no finite ``trip_distance``.
    ``rows_read`` equals the sum of the removed counts plus ``rows_kept``.
    """

    rows_read: int
    missing_timestamp: int
    negative_duration: int
    too_short: int
    too_long: int
    rows_kept: int
    min_duration: float
    max_duration: float
    missing_distance: int = 0

    @property
    def rows_removed(self) -> int:
        """All rides removed by any rule."""
        return self.rows_read - self.rows_kept

    @property
    def kept_share(self) -> float:
        """Share of the rides read that the filter kept (0-1; 0 for an empty file)."""
        return self.rows_kept / self.rows_read if self.rows_read else 0.0

    def as_dict(self) -> dict[str, float | int]:
        """Plain dict for JSON and logging."""
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"{self.rows_read:,} read, {self.rows_kept:,} kept; removed: "
            f"{self.missing_timestamp:,} missing timestamp, "
            f"{self.negative_duration:,} negative duration, "
            f"{self.too_short:,} under {self.min_duration:g} min, "
            f"{self.too_long:,} over {self.max_duration:g} min"
            + (f", {self.missing_distance:,} without a distance" if self.missing_distance else "")
        )


@dataclass
class TripData:
    """Rides read from one file, with where they came from and what the filter removed.

    Attributes:
        rides: One row per kept ride, columns as in the module docstring.
        report: What the duration filter removed.
        path: The file read.
        service: The TLC service whose column names were used.
        month: The month, when the file was named by one (e.g. ``green:2021-01``).
    """

    rides: pd.DataFrame
    report: FilterReport
    path: Path
    service: str
    month: TripMonth | None = field(default=None)

    @cached_property
    def sha256(self) -> str:
        """Hex sha256 of the file's bytes: the data fingerprint recorded with a model."""
        return file_sha256(self.path)

    @property
    def source(self) -> str:
        """``green:2021-01`` when read by month, else the file name."""
        return str(self.month) if self.month is not None else self.path.name

    def describe(self) -> dict[str, object]:
        """Provenance for model metadata: source, file name, sha256 and the filter counts."""
        return {
            "source": self.source,
            "file": self.path.name,
            "sha256": self.sha256,
            "service": self.service,
            **{f"filter_{k}": v for k, v in self.report.as_dict().items()},
        }


def load_trips(
    source: str | os.PathLike[str] | TripMonth,
    *,
    service: str | None = None,
    min_duration: float = MIN_DURATION_MINUTES,
    max_duration: float = MAX_DURATION_MINUTES,
    cache_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    require_distance: bool = True,
) -> TripData:
    """Read one TLC monthly file and keep rides whose duration lies in the bounds.

    Args:
        source: A parquet path, a :class:`TripMonth`, or a spec such as ``"green:2021-01"``
            (resolved by :func:`duration_core.datasets.resolve_month`: bundled, cache, download).
        service: ``green``, ``yellow``, ``fhv`` or ``fhvhv``; inferred from the columns when None.
        min_duration: Shortest kept ride, minutes (inclusive). The course uses 1.
        max_duration: Longest kept ride, minutes (inclusive). The course uses 60.
        cache_dir: Cache folder for downloaded months.
        download: Whether a month that is neither bundled nor cached may be downloaded.
        require_distance: Drop (and count) rides without a finite ``trip_distance``, which
            the model needs; FHV records have no distance at all, so they need ``False``.

    Returns:
        The kept rides (``n`` rows, columns as in the module docstring) and the filter report.

    Raises:
        TripFileNotFoundError: The file does not exist.
        NotParquetError: The file is not parquet.
        MissingColumnError: A required column is absent; the message names it and the file.
        TripDataError: The path is a directory, or the service has no distance and
            ``require_distance`` is True.
        ValueError: The bounds are not finite numbers with 0 <= min <= max.
        InvalidValueError: Timestamps are not timestamps, or location IDs not whole numbers.
        EmptyDatasetError: The file has no rides, or none is left after the filter.
        DownloadError: The month had to be downloaded and that failed.
    """
    check_duration_bounds(min_duration, max_duration)
    parsed = parse_source(source)
    month = parsed if isinstance(parsed, TripMonth) else None
    if isinstance(parsed, TripMonth):
        path = resolve_month(parsed, cache_dir=cache_dir, download=download)
        service = service or parsed.service
    else:
        path = parsed
    _check_is_file(path, source)

    schema = _read_schema(path)
    service = service or _infer_service(schema.names, path)
    columns = _resolve_columns(schema.names, service, path)
    if require_distance and "trip_distance" not in columns:
        raise TripDataError(
            f"{path}: {service} trip records have no trip distance, which the model needs; "
            "read them with require_distance=False to use them otherwise"
        )
    try:
        table = pq.read_table(path, columns=list(columns.values()))
    except (pa.ArrowException, OSError) as exc:
        raise NotParquetError(f"{path}: cannot read parquet data: {exc}") from None
    frame = table.rename_columns(list(columns)).to_pandas()

    rides = _normalise(frame, path)
    if rides.empty:
        raise EmptyDatasetError(f"{path}: the file has no rides")
    try:
        rides, report = _apply_duration_filter(
            rides, min_duration, max_duration, require_distance=require_distance
        )
    except InvalidValueError as exc:
        raise InvalidValueError(f"{path}: {exc}") from None
    logger.info("%s: %s", path.name, report)
    if report.rows_kept == 0:
        raise EmptyDatasetError(
            f"{path}: no ride is left after the {min_duration:g}-{max_duration:g} minute "
            f"filter ({report})"
        )
    return TripData(rides=rides, report=report, path=path, service=service, month=month)


def read_trips(source: str | os.PathLike[str] | TripMonth, **kwargs: object) -> pd.DataFrame:
    """The rides of :func:`load_trips`, without the report: a DataFrame with ``duration``.

    Takes the same arguments and raises the same errors as :func:`load_trips`.
    """
    return load_trips(source, **kwargs).rides  # type: ignore[arg-type]  # load_trips checks them


def check_duration_bounds(min_duration: float, max_duration: float) -> None:
    """Raise ValueError unless ``0 <= min_duration <= max_duration < inf`` (minutes)."""
    try:
        ok = math.isfinite(min_duration) and math.isfinite(max_duration)
        ok = ok and 0 <= min_duration <= max_duration
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(
            "duration bounds must be finite numbers of minutes with 0 <= min <= max, "
            f"got {min_duration!r}..{max_duration!r}"
        )


def _check_is_file(path: Path, source: object) -> None:
    if str(source).strip() == "":
        raise TripFileNotFoundError("empty trip file path")
    if path.is_dir():
        raise TripDataError(f"{path} is a directory, not a trip file")
    if not path.is_file():
        hint = ""
        if ":" in str(source):
            hint = " (a month is written SERVICE:YYYY-MM, e.g. green:2021-01)"
        raise TripFileNotFoundError(f"trip file not found: {path}{hint}")


def _read_schema(path: Path) -> pa.Schema:
    try:
        return pq.read_schema(path)
    except (pa.ArrowException, OSError) as exc:
        raise NotParquetError(f"{path} is not a parquet file ({exc})") from None


def _infer_service(names: list[str], path: Path) -> str:
    lower = {n.lower() for n in names}
    if "lpep_pickup_datetime" in lower:
        return "green"
    if "tpep_pickup_datetime" in lower:
        return "yellow"
    if "pickup_datetime" in lower:
        return "fhvhv" if "trip_miles" in lower else "fhv"
    raise MissingColumnError(
        f"{path}: no pickup time column (lpep_pickup_datetime, tpep_pickup_datetime or "
        f"pickup_datetime), so this is not a TLC trip-record file",
        column="pickup_datetime",
        path=str(path),
    )


def _resolve_columns(names: list[str], service: str, path: Path) -> dict[str, str]:
    """Canonical name -> the file's own spelling, for every column the reader needs."""
    try:
        wanted = SERVICE_COLUMNS[service]
    except KeyError:
        raise TripDataError(
            f"unknown service {service!r}: expected one of {', '.join(SERVICE_COLUMNS)}"
        ) from None
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise InvalidValueError(f"{path}: the file has several columns named {duplicated[0]!r}")
    by_lower: dict[str, str] = {}
    for name in names:
        by_lower.setdefault(name.lower(), name)
    resolved: dict[str, str] = {}
    for canonical, spellings in wanted.items():
        found = next((s for s in spellings if s in names), None)  # exact spelling first
        if found is None:
            found = next((by_lower[s.lower()] for s in spellings if s.lower() in by_lower), None)
        if found is None:
            raise MissingColumnError(
                f"{path}: required column {spellings[0]!r} is missing "
                f"(a {service} trip file needs {', '.join(s[0] for s in wanted.values())})",
                column=canonical,
                path=str(path),
            )
        resolved[canonical] = found
    return resolved


def _normalise(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Canonical dtypes: naive datetime64 timestamps, nullable Int64 zones, float64 miles."""
    for column in ("pickup_datetime", "dropoff_datetime"):
        if not pd.api.types.is_datetime64_any_dtype(frame[column]):
            raise InvalidValueError(
                f"{path}: column {column!r} holds {frame[column].dtype}, not timestamps"
            )
    aware = [c for c in ("pickup_datetime", "dropoff_datetime") if frame[c].dt.tz is not None]
    if len(aware) == 1:
        raise InvalidValueError(
            f"{path}: {aware[0]!r} has a time zone and the other timestamp has none; "
            "durations between them would be wrong"
        )
    for column in aware:  # both aware: compare them in UTC
        frame[column] = frame[column].dt.tz_convert("UTC").dt.tz_localize(None)
    for column in LOCATION_COLUMNS:
        frame[column] = location_ids(frame[column], name=f"{path}: column {column!r}")
    if "trip_distance" in frame:
        distance = frame["trip_distance"]
        if pd.api.types.is_datetime64_any_dtype(distance) or pd.api.types.is_timedelta64_dtype(
            distance
        ):
            raise InvalidValueError(f"{path}: column 'trip_distance' holds {distance.dtype}")
        try:
            frame["trip_distance"] = pd.to_numeric(distance).astype("float64")
        except (TypeError, ValueError):
            raise InvalidValueError(
                f"{path}: column 'trip_distance' holds non-numeric values"
            ) from None
    else:
        frame["trip_distance"] = np.nan
    return frame


def location_ids(values: pd.Series, *, name: str) -> pd.Series:
    """Location IDs as nullable ``Int64``: int32, int64, or float with NaN for unknown zones.

    Numeric strings (``"132"``) are accepted; nulls stay null.

    Raises:
        InvalidValueError: A value is not a whole number that fits in 64 bits (``12.5``,
            ``"abc"``, ``""``, ``inf``, ``1e20``) or is a boolean; the message starts with
            ``name`` and quotes the first such value.
    """
    if pd.api.types.is_bool_dtype(values.dtype):
        raise InvalidValueError(f"{name} must hold whole-number TLC zone IDs, found booleans")
    try:
        if pd.api.types.is_integer_dtype(values.dtype):
            return values.astype("Int64")
        if not pd.api.types.is_numeric_dtype(values.dtype) and any(
            isinstance(v, bool | np.bool_) or (isinstance(v, str) and not v.strip()) for v in values
        ):
            raise TypeError("booleans and empty strings are not zone IDs")
        numeric = pd.to_numeric(values)
        if pd.api.types.is_float_dtype(numeric.dtype):
            floats = numeric.to_numpy(dtype="float64", na_value=np.nan)
            present = floats[~np.isnan(floats)]
            # float -> Int64 silently wraps values beyond int64; refuse them instead.
            if present.size and not (np.abs(present) <= _INT64_SAFE).all():
                raise OverflowError("zone ID beyond int64")
        return numeric.astype("Int64")
    except (TypeError, ValueError, OverflowError):
        bad = _first_bad_id(values)
        raise InvalidValueError(
            f"{name} must hold whole-number TLC zone IDs, found {bad!r}"
        ) from None


_INT64_SAFE = 2.0**62  # below int64's limit even after float rounding


def _first_bad_id(values: pd.Series) -> object:
    """The first value that is neither null nor a whole number within int64 (for messages)."""
    for value in values:
        if isinstance(value, bool | np.bool_) or (isinstance(value, str) and not value.strip()):
            return value
        if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
            continue
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            return value
        if not (np.isfinite(number) and number.is_integer() and abs(number) <= _INT64_SAFE):
            return value
    return None


def duration_minutes(pickup: pd.Series, dropoff: pd.Series) -> pd.Series:
    """``dropoff - pickup`` in minutes as float64 (NaN where either time is missing).

    Works for any timestamp unit (``s``, ``ms``, ``us``, ``ns``).
    """
    return (dropoff - pickup).dt.total_seconds() / 60.0


def _apply_duration_filter(
    rides: pd.DataFrame, min_duration: float, max_duration: float, *, require_distance: bool
) -> tuple[pd.DataFrame, FilterReport]:
    try:
        duration = duration_minutes(rides["pickup_datetime"], rides["dropoff_datetime"])
    except OverflowError:
        raise InvalidValueError(
            "timestamps too far apart to subtract (outside the years 1677-2262)"
        ) from None
    missing = duration.isna().to_numpy()
    values = duration.to_numpy(dtype="float64", na_value=np.nan)
    with np.errstate(invalid="ignore"):
        negative = ~missing & (values < 0)
        too_short = ~missing & ~negative & (values < min_duration)
        too_long = ~missing & (values > max_duration)
    no_distance = np.zeros(len(values), dtype=bool)
    if require_distance:
        distance = rides["trip_distance"].to_numpy(dtype="float64")
        no_distance = ~(missing | negative | too_short | too_long) & ~np.isfinite(distance)
    keep = ~(missing | negative | too_short | too_long | no_distance)
    rides = rides.assign(duration=values)
    kept = rides.loc[keep].reset_index(drop=True)
    report = FilterReport(
        rows_read=len(rides),
        missing_timestamp=int(missing.sum()),
        negative_duration=int(negative.sum()),
        too_short=int(too_short.sum()),
        too_long=int(too_long.sum()),
        rows_kept=int(keep.sum()),
        min_duration=float(min_duration),
        max_duration=float(max_duration),
        missing_distance=int(no_distance.sum()),
    )
    return kept, report
