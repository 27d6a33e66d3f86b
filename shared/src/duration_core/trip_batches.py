"""Reading a TLC month in record batches, for jobs whose memory must not grow with the month.

:func:`open_trips` checks the file as :func:`duration_core.load_trips` does (resolved, parquet,
the service's columns present) and returns a :class:`TripBatches`; iterating it reads the file
one parquet record batch at a time and applies the same normalisation and the same course
filter to each, so the kept rides, concatenated, are exactly :func:`load_trips`'s, in the same
order. Each :class:`TripBatch` says where its first ride sits among the month's kept rides, so
per-ride ids that depend on the position (level 3's ride id) come out the same.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from duration_core.datasets import TripMonth, parse_source, resolve_month
from duration_core.errors import InvalidValueError, NotParquetError, TripDataError
from duration_core.trips import (
    MAX_DURATION_MINUTES,
    MIN_DURATION_MINUTES,
    FilterReport,
    _apply_duration_filter,
    _check_is_file,
    _infer_service,
    _normalise,
    _read_schema,
    _resolve_columns,
    check_duration_bounds,
)

#: Rows per record batch by default: about 20 MB of the five columns read.
DEFAULT_BATCH_ROWS = 250_000


@dataclass(frozen=True)
class TripBatch:
    """The kept rides of one record batch.

    Attributes:
        rides: Kept rides (columns as :func:`load_trips`'s, index ``0..n-1``).
        report: What the filter removed from this batch.
        first_position: Position of ``rides``' first row among the month's kept rides.
    """

    rides: pd.DataFrame
    report: FilterReport
    first_position: int


@dataclass
class TripBatches:
    """One TLC file, read batch by batch (iterate it; each pass reads the file again).

    Attributes:
        path: The parquet file.
        service: The TLC service whose column names are used.
        columns: Canonical column name -> the file's own spelling.
        month: The month, when the file was named by one.
        batch_rows: Rows per record batch read.
        min_duration, max_duration: The filter's bounds, minutes.
    """

    path: Path
    service: str
    columns: dict[str, str]
    month: TripMonth | None = None
    batch_rows: int = DEFAULT_BATCH_ROWS
    min_duration: float = MIN_DURATION_MINUTES
    max_duration: float = MAX_DURATION_MINUTES
    rows: int = field(init=False)

    def __post_init__(self) -> None:
        try:
            self.rows = pq.ParquetFile(self.path).metadata.num_rows
        except (pa.ArrowException, OSError) as exc:
            raise NotParquetError(f"{self.path}: cannot read parquet data: {exc}") from None

    @property
    def source(self) -> str:
        """``green:2021-01`` when read by month, else the file name (as ``TripData.source``)."""
        return str(self.month) if self.month is not None else self.path.name

    def __iter__(self) -> Iterator[TripBatch]:
        """The file's kept rides, batch by batch (a batch may hold no ride).

        Raises:
            NotParquetError: The data cannot be read.
            InvalidValueError: Timestamps are not timestamps, or location IDs not whole
                numbers (the message names the file).
        """
        position = 0
        try:
            reader = pq.ParquetFile(self.path).iter_batches(
                batch_size=self.batch_rows, columns=list(self.columns.values())
            )
            for batch in reader:
                table = pa.Table.from_batches([batch]).select(list(self.columns.values()))
                frame = table.rename_columns(list(self.columns)).to_pandas()
                rides = _normalise(frame, self.path)
                try:
                    kept, report = _apply_duration_filter(
                        rides, self.min_duration, self.max_duration, require_distance=True
                    )
                except InvalidValueError as exc:
                    raise InvalidValueError(f"{self.path}: {exc}") from None
                yield TripBatch(kept, report, position)
                position += report.rows_kept
        except (pa.ArrowException, OSError) as exc:
            raise NotParquetError(f"{self.path}: cannot read parquet data: {exc}") from None


def open_trips(
    source: str | os.PathLike[str] | TripMonth,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    min_duration: float = MIN_DURATION_MINUTES,
    max_duration: float = MAX_DURATION_MINUTES,
    cache_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> TripBatches:
    """Resolve and check one TLC file for reading in batches (rides need a distance).

    Args:
        source: As :func:`duration_core.load_trips`: a path, a :class:`TripMonth` or a spec.
        batch_rows: Rows per record batch (at least 1).
        min_duration, max_duration: The course filter's bounds, minutes.
        cache_dir, download: As :func:`duration_core.load_trips`.

    Raises:
        The errors of :func:`duration_core.load_trips` before any ride is read (file not
        found, not parquet, a missing column, a download that failed); TripDataError for a
        service without trip distances; ValueError for bounds or ``batch_rows`` out of range.
    """
    check_duration_bounds(min_duration, max_duration)
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, got {batch_rows}")
    parsed = parse_source(source)
    month = parsed if isinstance(parsed, TripMonth) else None
    if isinstance(parsed, TripMonth):
        path = resolve_month(parsed, cache_dir=cache_dir, download=download)
    else:
        path = parsed
    _check_is_file(path, source)
    schema = _read_schema(path)
    service = month.service if month else _infer_service(schema.names, path)
    columns = _resolve_columns(schema.names, service, path)
    if "trip_distance" not in columns:
        raise TripDataError(
            f"{path}: {service} trip records have no trip distance, which the model needs"
        )
    return TripBatches(
        path=path,
        service=service,
        columns=columns,
        month=month,
        batch_rows=batch_rows,
        min_duration=min_duration,
        max_duration=max_duration,
    )


def merge_reports(reports: list[FilterReport], bounds: tuple[float, float]) -> FilterReport:
    """One report for several batches of the same file: the counts summed."""
    counts = {
        name: sum(getattr(r, name) for r in reports)
        for name in (
            "rows_read", "missing_timestamp", "negative_duration", "too_short", "too_long",
            "rows_kept", "missing_distance",
        )
    }  # fmt: skip
    return FilterReport(**counts, min_duration=bounds[0], max_duration=bounds[1])
