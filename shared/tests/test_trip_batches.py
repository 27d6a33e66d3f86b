"""Reading a month in record batches: the same rides as ``load_trips``, batch by batch."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from duration_core import (
    InvalidValueError,
    MissingColumnError,
    TripDataError,
    TripFileNotFoundError,
    load_trips,
    merge_reports,
    open_trips,
)
from trip_files import green_columns


@pytest.mark.parametrize("batch_rows", [9_999, 250_000])
def test_batches_hold_exactly_load_trips_rides(batch_rows: int) -> None:
    whole = load_trips("green:2021-03")
    trips = open_trips("green:2021-03", batch_rows=batch_rows)
    assert trips.rows == 83_827
    assert trips.source == "green:2021-03"
    batches = list(trips)
    assert len(batches) == -(-83_827 // batch_rows)
    rides = pd.concat([b.rides for b in batches], ignore_index=True)
    pd.testing.assert_frame_equal(rides, whole.rides)
    positions = [b.first_position for b in batches]
    assert positions == [sum(len(b.rides) for b in batches[:i]) for i in range(len(batches))]
    report = merge_reports([b.report for b in batches], (1.0, 60.0))
    assert report == whole.report
    assert report.rows_kept == 80_372


def test_each_pass_reads_the_file_again() -> None:
    trips = open_trips("green:2021-02", batch_rows=20_000)
    first = sum(len(b.rides) for b in trips)
    assert first == sum(len(b.rides) for b in trips) == 61_921


def test_problems_are_found_before_any_ride_is_read(tmp_path: Path) -> None:
    with pytest.raises(TripFileNotFoundError):
        open_trips(tmp_path / "nope.parquet")
    no_distance = {k: v for k, v in green_columns(3).items() if k != "trip_distance"}
    pq.write_table(pa.table(no_distance), tmp_path / "no-distance.parquet")
    with pytest.raises(MissingColumnError, match="'trip_distance' is missing"):
        open_trips(tmp_path / "no-distance.parquet")
    fhv = tmp_path / "fhv.parquet"
    pq.write_table(
        pa.table({
            "pickup_datetime": green_columns(2)["lpep_pickup_datetime"],
            "dropOff_datetime": green_columns(2)["lpep_dropoff_datetime"],
            "PUlocationID": pa.array([1.0, 2.0]), "DOlocationID": pa.array([3.0, 4.0]),
        }),
        fhv,
    )  # fmt: skip
    with pytest.raises(TripDataError, match="fhv trip records have no trip distance"):
        open_trips(fhv)
    with pytest.raises(ValueError, match="batch_rows must be at least 1, got 0"):
        open_trips("green:2021-03", batch_rows=0)


def test_a_bad_value_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad-zone.parquet"
    pq.write_table(pa.table(green_columns(3, PULocationID=pa.array([1.0, 2.5, 3.0]))), path)
    trips = open_trips(path)
    with pytest.raises(InvalidValueError, match=r"bad-zone\.parquet.*2\.5"):
        list(trips)
