"""Reading TLC files: real bundled months, every service's spelling, and each bad input."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from duration_core import (
    DurationCoreError,
    EmptyDatasetError,
    InvalidValueError,
    MissingColumnError,
    NotParquetError,
    TripFileNotFoundError,
    load_trips,
    read_trips,
)
from trip_files import DROPOFF, PICKUP, green_columns

# --- data tests on the bundled real months -------------------------------------------------


def test_january_2021_matches_the_published_row_counts(jan_path: Path) -> None:
    data = load_trips(jan_path)
    assert data.service == "green"
    assert data.report.rows_read == 76_518  # TLC's official count for green 2021-01
    assert data.report.rows_kept == 73_908  # course notebook, after the 1-60 minute filter
    assert data.report.too_short == 1_448
    assert data.report.too_long == 1_162
    assert data.report.rows_removed == 76_518 - 73_908
    assert len(data.rides) == 73_908
    assert data.sha256 == "b8e2c9496c5eada0f10adbd88f98d91721ec6fe2787a2b355cf0ccfa9678ee7b"


def test_month_spec_reads_the_bundled_file() -> None:
    data = load_trips("green:2021-02")
    assert data.source == "green:2021-02"
    assert data.report.rows_read == 64_572
    assert data.report.rows_kept == 61_921


def test_rides_have_canonical_columns_types_and_ranges(jan_path: Path) -> None:
    rides = read_trips(jan_path)
    assert list(rides.columns) == [
        "pickup_datetime",
        "dropoff_datetime",
        "PULocationID",
        "DOLocationID",
        "trip_distance",
        "duration",
    ]
    assert str(rides["PULocationID"].dtype) == "Int64"
    assert rides["duration"].between(1, 60).all()
    assert rides["PULocationID"].between(1, 265).all()
    assert rides["DOLocationID"].between(1, 265).all()
    assert (rides["trip_distance"] >= 0).all()


def test_bounds_are_parameters(jan_path: Path) -> None:
    data = load_trips(jan_path, min_duration=0, max_duration=120)
    assert data.report.rows_kept > 73_908
    assert data.rides["duration"].max() <= 120


# --- column spellings of each service --------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "columns"),
    [
        ("yellow", ("tpep_pickup_datetime", "tpep_dropoff_datetime", "PULocationID",
                    "DOLocationID", "trip_distance")),
        ("fhv", ("pickup_datetime", "dropOff_datetime", "PUlocationID", "DOlocationID", None)),
        ("fhvhv", ("pickup_datetime", "dropoff_datetime", "PULocationID", "DOLocationID",
                   "trip_miles")),
    ],
)  # fmt: skip
def test_each_service_spelling_is_read(write_trips, service: str, columns) -> None:
    pickup, dropoff, pu, do, distance = columns
    data = {
        pickup: pa.array([PICKUP], pa.timestamp("us")),
        dropoff: pa.array([DROPOFF], pa.timestamp("us")),
        pu: pa.array([43.0], pa.float64()),
        do: pa.array([151.0], pa.float64()),
        "extra": pa.array(["ignored"]),
    }
    if distance:
        data[distance] = pa.array([2.0])
    data_ = load_trips(write_trips(**data), require_distance=distance is not None)
    assert data_.service == service
    ride = data_.rides.iloc[0]
    assert ride["duration"] == pytest.approx(12.5)
    assert ride["PULocationID"] == 43
    assert (ride["trip_distance"] == 2.0) if distance else pd.isna(ride["trip_distance"])


def test_only_needed_columns_are_returned(write_trips) -> None:
    rides = read_trips(write_trips(**green_columns(), fare_amount=pa.array([9.5])))
    assert "fare_amount" not in rides.columns


# --- the bad inputs of the issue, each with a clear typed error --------------------------------


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TripFileNotFoundError, match=r"trip file not found: .*nope\.parquet"):
        load_trips(tmp_path / "nope.parquet")


def test_text_file_renamed_parquet_is_not_parquet(tmp_path: Path) -> None:
    fake = tmp_path / "green_tripdata_2021-01.parquet"
    fake.write_text("VendorID,lpep_pickup_datetime\n2,2021-01-01 00:15:56\n")
    with pytest.raises(NotParquetError, match=r"green_tripdata_2021-01.parquet is not a parquet"):
        load_trips(fake)


def test_missing_dolocationid_names_the_column_and_file(write_trips) -> None:
    columns = green_columns()
    del columns["DOLocationID"]
    path = write_trips("no_do.parquet", **columns)
    with pytest.raises(
        MissingColumnError, match=r"no_do.parquet: required column 'DOLocationID'"
    ) as err:
        load_trips(path)
    assert err.value.column == "DOLocationID"
    assert err.value.path == str(path)


def test_empty_month_is_an_error(write_trips) -> None:
    path = write_trips("empty.parquet", **green_columns(0))
    with pytest.raises(EmptyDatasetError, match=r"empty\.parquet: the file has no rides"):
        load_trips(path)


def test_month_with_every_ride_outside_the_filter_is_an_error(write_trips) -> None:
    columns = green_columns(
        3,
        lpep_dropoff_datetime=pa.array(
            [
                datetime(2021, 1, 5, 8, 0, 30),
                datetime(2021, 1, 5, 10, 0),
                datetime(2021, 1, 5, 7, 0),
            ],
            pa.timestamp("us"),
        ),
    )
    with pytest.raises(
        EmptyDatasetError, match=r"no ride is left after the 1-60 minute filter"
    ) as err:
        load_trips(write_trips(**columns))
    assert "1 under 1 min" in str(err.value)
    assert "1 over 60 min" in str(err.value)
    assert "1 negative duration" in str(err.value)


def test_float_location_ids_with_nan_stay_whole_numbers_and_nulls(write_trips) -> None:
    columns = green_columns(
        3,
        PULocationID=pa.array([132.0, None, 7.0], pa.float64()),
        DOLocationID=pa.array([265.0, 1.0, None], pa.float64()),
    )
    rides = read_trips(write_trips(**columns))
    assert len(rides) == 3  # nulls are neither dropped nor turned into strings like "132.0"
    assert rides["PULocationID"].tolist()[0] == 132
    assert rides["PULocationID"].isna().tolist() == [False, True, False]
    assert rides["DOLocationID"].isna().tolist() == [False, False, True]


@pytest.mark.parametrize("dtype", [pa.int32(), pa.int64()])
def test_int32_and_int64_location_ids(write_trips, dtype) -> None:
    rides = read_trips(write_trips(**green_columns(PULocationID=pa.array([43], dtype))))
    assert rides["PULocationID"].tolist() == [43]


def test_fractional_location_id_is_refused(write_trips) -> None:
    path = write_trips(**green_columns(PULocationID=pa.array([12.5])))
    with pytest.raises(
        InvalidValueError, match=r"'PULocationID' must hold whole-number TLC zone IDs, found 12.5"
    ):
        load_trips(path)


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_timestamp_units_give_the_same_duration(write_trips, unit: str) -> None:
    columns = green_columns(
        lpep_pickup_datetime=pa.array([PICKUP], pa.timestamp(unit)),
        lpep_dropoff_datetime=pa.array([DROPOFF], pa.timestamp(unit)),
    )
    rides = read_trips(write_trips(**columns))
    assert rides["duration"].tolist() == [12.5]


def test_negative_duration_is_filtered_and_counted_not_an_error(write_trips) -> None:
    columns = green_columns(
        2,
        lpep_dropoff_datetime=pa.array([DROPOFF, datetime(2021, 1, 5, 7, 50)], pa.timestamp("us")),
    )
    data = load_trips(write_trips(**columns))
    assert data.report.negative_duration == 1
    assert data.report.rows_kept == 1
    assert data.rides["duration"].tolist() == [12.5]


def test_missing_timestamps_are_counted(write_trips) -> None:
    columns = green_columns(2, lpep_dropoff_datetime=pa.array([DROPOFF, None], pa.timestamp("us")))
    data = load_trips(write_trips(**columns))
    assert data.report.missing_timestamp == 1
    assert data.report.rows_kept == 1


def test_timestamps_stored_as_text_are_refused(write_trips) -> None:
    path = write_trips(**green_columns(lpep_pickup_datetime=pa.array(["2021-01-05 08:00:00"])))
    with pytest.raises(InvalidValueError, match=r"'pickup_datetime' holds .* not timestamps"):
        load_trips(path)


def test_a_parquet_without_any_pickup_column_is_not_a_trip_file(write_trips) -> None:
    path = write_trips("zones.parquet", LocationID=pa.array([1, 2]))
    with pytest.raises(MissingColumnError, match="not a TLC trip-record file"):
        load_trips(path)


def test_every_error_belongs_to_the_library_family(tmp_path: Path) -> None:
    fake = tmp_path / "x.parquet"
    fake.write_bytes(b"PAR1 but not really")
    with pytest.raises(DurationCoreError):
        load_trips(fake)


def test_bad_duration_bounds_are_refused(jan_path: Path) -> None:
    with pytest.raises(ValueError, match="duration bounds"):
        load_trips(jan_path, min_duration=10, max_duration=5)
