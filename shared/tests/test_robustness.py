"""Regression tests for inputs an adversarial review found: each gets a clear library error,
and nothing already stored (a training file, a cached month, an artifact) is damaged."""

from __future__ import annotations

import http.server
import os
import re
import stat
import subprocess
import sys
import zipfile
from datetime import UTC
from pathlib import Path
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pytest

from duration_core import (
    DownloadError,
    InvalidRidesError,
    InvalidValueError,
    ModelArtifactError,
    TripDataError,
    TripMonth,
    build_pipeline,
    load_model,
    load_trips,
    read_metadata,
    resolve_month,
    save_model,
    train_model,
)
from duration_core.datasets import file_sha256
from trip_files import DROPOFF, PICKUP, green_columns

RIDE = {"PULocationID": 43, "DOLocationID": 151, "trip_distance": 1.5}


# --- files that are read ---------------------------------------------------------------------


def test_one_timezone_aware_timestamp_is_refused(write_trips) -> None:
    path = write_trips(
        lpep_pickup_datetime=pa.array([PICKUP.replace(tzinfo=UTC)] * 2, pa.timestamp("us", "UTC")),
        **{k: v for k, v in green_columns(2).items() if k != "lpep_pickup_datetime"},
    )
    with pytest.raises(InvalidValueError, match="has a time zone and the other timestamp has none"):
        load_trips(path)


def test_two_timezone_aware_timestamps_are_compared_in_utc(write_trips) -> None:
    columns = green_columns(
        2,
        lpep_pickup_datetime=pa.array([PICKUP] * 2, pa.timestamp("us", "UTC")),
        lpep_dropoff_datetime=pa.array([DROPOFF] * 2, pa.timestamp("us", "UTC")),
    )
    assert load_trips(write_trips(**columns)).rides["duration"].tolist() == [12.5, 12.5]


@pytest.mark.parametrize(
    ("ids", "shown"),
    [
        (pa.array([2**64 - 1, 1], pa.uint64()), "18446744073709551615"),
        (pa.array([float("inf"), 1.0]), "inf"),
        (pa.array([1e20, 1.0]), "1e+20"),
    ],
)
def test_location_ids_out_of_range_are_named(write_trips, ids, shown: str) -> None:
    with pytest.raises(
        InvalidValueError, match=f"'PULocationID' must hold .*found {re.escape(shown)}"
    ):
        load_trips(write_trips(**green_columns(2, PULocationID=ids)))


def test_rides_without_distance_are_dropped_and_counted(write_trips) -> None:
    data = load_trips(
        write_trips(**green_columns(2, trip_distance=pa.array([None, 0.8], pa.float64())))
    )
    assert data.report.missing_distance == 1
    assert data.report.rows_kept == 1
    assert "1 without a distance" in str(data.report)


def test_fhv_needs_require_distance_false(write_trips) -> None:
    path = write_trips(
        pickup_datetime=pa.array([PICKUP], pa.timestamp("us")),
        dropOff_datetime=pa.array([DROPOFF], pa.timestamp("us")),
        PUlocationID=pa.array([43.0]),
        DOlocationID=pa.array([151.0]),
    )
    with pytest.raises(TripDataError, match="fhv trip records have no trip distance"):
        load_trips(path)
    assert load_trips(path, require_distance=False).report.rows_kept == 1


def test_exact_column_spelling_wins_over_other_case(write_trips) -> None:
    rides = load_trips(write_trips(**green_columns(2, pulocationid=pa.array(["x", "y"])))).rides
    assert rides["PULocationID"].tolist() == [43, 43]


def test_a_directory_is_not_a_trip_file(tmp_path: Path) -> None:
    with pytest.raises(TripDataError, match="is a directory, not a trip file"):
        load_trips(tmp_path)


def test_mistyped_month_gets_a_hint() -> None:
    with pytest.raises(TripDataError, match=r"a month is written SERVICE:YYYY-MM"):
        load_trips("green:2021-01x")


@pytest.mark.parametrize("bounds", [(1, float("inf")), (float("nan"), 60), (-1, 60), ("1", 60)])
def test_bad_duration_bounds(jan_path: Path, bounds) -> None:
    with pytest.raises(ValueError, match="duration bounds must be finite numbers of minutes"):
        load_trips(jan_path, min_duration=bounds[0], max_duration=bounds[1])


# --- rides given to the model ------------------------------------------------------------------


@pytest.fixture(scope="module")
def pipeline():
    return train_model("green:2021-01", "green:2021-02").pipeline


@pytest.mark.parametrize(
    ("rides", "message"),
    [
        ([{**RIDE, "PULocationID": 10**20}], "PULocationID must hold whole-number TLC zone IDs"),
        ([{**RIDE, "PULocationID": float("inf")}], "PULocationID must hold whole-number"),
        ([{**RIDE, "PULocationID": True}], "found booleans"),
        ([{**RIDE, "PULocationID": ""}], "PULocationID must hold whole-number"),
        ([{**RIDE, "trip_distance": True}], "trip_distance must be a number of miles"),
        ([RIDE, {"PULocationID": 1, "trip_distance": 1}], "ride 1 lacks the field 'DOLocationID'"),
        (
            {"PULocationID": [43, 44], "DOLocationID": [1, 2], "trip_distance": [1, 2]},
            "single values",
        ),
    ],
)
def test_bad_rides_are_invalid_rides_errors(pipeline, rides, message: str) -> None:
    with pytest.raises(InvalidRidesError, match=message):
        pipeline.predict(rides)


def test_dataframe_with_duplicate_columns(pipeline) -> None:
    import pandas as pd

    frame = pd.DataFrame(
        [[43, 43, 151, 1.5]],
        columns=["PULocationID", "PULocationID", "DOLocationID", "trip_distance"],
    )
    with pytest.raises(InvalidRidesError, match="several columns named 'PULocationID'"):
        pipeline.predict(frame)


def test_unknown_regressor_parameter() -> None:
    with pytest.raises(ValueError, match="bad parameter for model 'lasso'"):
        build_pipeline("lasso", foo=1)


def test_same_training_file_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="is given twice"):
        train_model(["green:2021-01", "green:2021-01"], "green:2021-02")


def test_validation_copy_of_training_file_is_refused(tmp_path: Path, jan_path: Path) -> None:
    copy = tmp_path / "copy.parquet"
    copy.write_bytes(jan_path.read_bytes())
    with pytest.raises(ValueError, match="is also a training file"):
        train_model(jan_path, copy)


# --- artifacts ---------------------------------------------------------------------------------


def test_artifact_is_readable_by_others_under_the_usual_umask(pipeline, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        save_model(pipeline, tmp_path / "m.zip")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m.zip").stat().st_mode) == 0o644


def test_save_refuses_to_overwrite_a_data_file(pipeline, tmp_path: Path, jan_path: Path) -> None:
    data = tmp_path / "train.parquet"
    data.write_bytes(jan_path.read_bytes())
    with pytest.raises(ModelArtifactError, match=r"refusing to overwrite .*not a duration-core"):
        save_model(pipeline, data)
    assert file_sha256(data) == file_sha256(jan_path)


def test_cli_refuses_out_equal_to_the_training_file(tmp_path: Path, jan_path: Path) -> None:
    data = tmp_path / "train.parquet"
    data.write_bytes(jan_path.read_bytes())
    done = subprocess.run(
        [sys.executable, "-m", "duration_core.cli", "--train", str(data), "--val", "green:2021-02",
         "--out", str(data)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "refusing to overwrite" in done.stderr
    assert file_sha256(data) == file_sha256(jan_path)


@pytest.mark.parametrize("bound", ["nan", "inf", "-1"])
def test_cli_bad_bounds_are_usage_errors(tmp_path: Path, bound: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "duration_core.cli", "--train", "green:2021-01", "--val",
         "green:2021-02", "--out", str(tmp_path / "m.zip"), "--max-duration", bound],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "must be a finite number of minutes" in done.stderr


def test_save_refuses_what_is_not_a_pipeline(tmp_path: Path) -> None:
    with pytest.raises(ModelArtifactError, match="can only save a scikit-learn Pipeline"):
        save_model({"a": 1}, tmp_path / "m.zip")
    assert not (tmp_path / "m.zip").exists()


def test_corrupt_compressed_member_is_an_artifact_error(pipeline, tmp_path: Path) -> None:
    path = tmp_path / "m.zip"
    save_model(pipeline, path)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("pipeline.pkl")
        start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    raw = bytearray(path.read_bytes())
    for offset in range(start + 100, start + 140):
        raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ModelArtifactError, match="damaged"):
        load_model(path)


def test_metadata_of_the_wrong_shape_is_an_artifact_error(pipeline, tmp_path: Path) -> None:
    path = tmp_path / "m.zip"
    save_model(pipeline, path)
    with zipfile.ZipFile(path) as zf:
        payload = zf.read("pipeline.pkl")
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", '{"format": "duration-core-model/1", "versions": "x"}')
        zf.writestr("pipeline.pkl", payload)
    with pytest.raises(ModelArtifactError, match="lacks its versions or pipeline_sha256"):
        read_metadata(path)


# --- downloads ---------------------------------------------------------------------------------


class TrickyHandler(http.server.BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, tuple[int, dict[str, str], bytes]]] = {
        # parquet magic at both ends, garbage between: not a parquet file
        "green_tripdata_2020-05.parquet": (200, {}, b"PAR1" + b"\0" * 1000 + b"PAR1"),
        "green_tripdata_2020-06.parquet": (302, {"Location": "ftp://127.0.0.1/x"}, b""),
    }

    def do_GET(self) -> None:
        status, headers, body = self.routes.get(self.path.rsplit("/", 1)[-1], (404, {}, b""))
        self.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def tricky_server(loopback_server) -> str:
    return loopback_server(TrickyHandler)


def test_parquet_magic_around_garbage_is_not_cached(tricky_server: str, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="did not return a parquet file"):
        resolve_month(
            TripMonth("green", 2020, 5), cache_dir=tmp_path, base_url=tricky_server, progress=False
        )
    assert list(tmp_path.iterdir()) == []


def test_redirect_to_ftp_is_refused(tricky_server: str, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="only http"):
        resolve_month(
            TripMonth("green", 2020, 6), cache_dir=tmp_path, base_url=tricky_server, progress=False
        )
    assert list(tmp_path.iterdir()) == []


def test_cache_dir_that_is_a_file(tricky_server: str, tmp_path: Path) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("not a folder")
    with pytest.raises(DownloadError, match="cannot save green:2020-05 in the cache folder"):
        resolve_month(
            TripMonth("green", 2020, 5), cache_dir=blocker, base_url=tricky_server, progress=False
        )
    assert blocker.read_text() == "not a folder"


def test_predictions_stay_finite_on_real_rides(pipeline) -> None:
    # Guard for the review's finding on huge distances: real validation rides all predict finite.
    rides = load_trips("green:2021-03").rides
    assert np.isfinite(pipeline.predict(rides)).all()
