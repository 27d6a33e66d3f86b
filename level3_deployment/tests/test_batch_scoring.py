"""``duration-score``: batch deployment of registered versions on real months.

The session's registry (champion v1 linear, challenger v2 gbm, trained by the level-2 pipeline
on green 2021-01/02) scores green 2021-03 (83,827 rows; 80,372 kept by the course's filter;
23 with a zone or distance the API refuses; 80,349 scored). The pandas engine is checked
against the model's own predictions and level 3's replay ride ids; the Spark engine (a real
local Spark, Java needed) against the pandas engine; bad inputs against their messages, and a
``kill -9`` mid-job against a half-written month.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow.artifacts
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from duration_core import RIDE_FIELDS
from duration_core.datasets import TripMonth, bundled_path
from duration_deployment.batch import MonthSource, ScoreError, score_months
from duration_deployment.batch.output import SCHEMA
from duration_deployment.replay import load_replay
from ladder_testing.programs import require_program
from ladder_testing.router import TrainedRegistry, mlflow_client

BIN = Path(sys.executable).parent
MARCH = "green:2021-03"
CHAMPION = "models:/nyc-taxi-duration@champion"


@pytest.fixture(scope="module")
def registry(trained_registry: TrainedRegistry) -> str:
    return f"sqlite:///{trained_registry.database}"


def read_scored(out: Path) -> pd.DataFrame:
    """The scored dataset under ``out`` (Hive partitions as columns), by ride id."""
    table = ds.dataset(out, format="parquet", partitioning="hive").to_table()
    return table.to_pandas().sort_values("ride_id").reset_index(drop=True)


@pytest.fixture(scope="module")
def pandas_run(registry: str, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("scored-pandas")
    summary = score_months(CHAMPION, [MARCH], out, tracking_uri=registry)
    return summary, read_scored(out)


def test_pandas_engine_scores_a_real_month(pandas_run, registry: str, tmp_path: Path) -> None:
    summary, scored = pandas_run
    (month,) = summary.months
    assert (month.rows_read, month.rows_kept, month.skipped_inputs, month.rows_written) == (
        83_827, 80_372, 23, 80_349,
    )  # fmt: skip
    assert summary.as_dict()["rows_written"] == 80_349
    assert Path(month.path) == summary.output / "service=green" / "year=2021" / "month=3"
    assert len(scored) == 80_349
    assert scored["ride_id"].is_unique
    assert list(scored.columns) == [*SCHEMA.names, "service", "year", "month"]
    assert set(scored["service"]) == {"green"}
    assert set(scored["year"]) == {2021}
    assert set(scored["month"]) == {3}
    # The registered champion, as MLflow loads it, predicts the same for each ride.
    version = mlflow_client(registry).get_model_version_by_alias("nyc-taxi-duration", "champion")
    assert set(scored["model_version"]) == {str(version.version)}
    assert set(scored["run_id"]) == {version.run_id}
    assert set(scored["model_name"]) == {"nyc-taxi-duration"}
    folder = mlflow.artifacts.download_artifacts(
        artifact_uri=mlflow_client(registry).get_model_version_download_uri(
            "nyc-taxi-duration", str(version.version)
        ),
        dst_path=str(tmp_path),
        tracking_uri=registry,
    )
    expected = mlflow.pyfunc.load_model(folder).predict(scored[list(RIDE_FIELDS)])
    np.testing.assert_allclose(scored["predicted_duration"], expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(
        scored["diff"], scored["actual_duration"] - scored["predicted_duration"], atol=1e-12
    )
    assert scored["actual_duration"].between(1, 60).all()
    rmse = float(np.sqrt((scored["diff"] ** 2).mean()))
    assert rmse == pytest.approx(7.8, abs=0.4)  # the linear model on 2021-03 (README: 7.82)


def test_ride_ids_are_the_replay_ids(pandas_run) -> None:
    """The same ride has the same id in batch scoring and in ``duration-deploy replay``."""
    _, scored = pandas_run
    replayed, counts = load_replay(MARCH)
    assert counts["rides"] == 80_349
    by_id = replayed.set_index("ride_id")
    assert set(by_id.index) == set(scored["ride_id"])
    again = scored.set_index("ride_id").loc[by_id.index]
    np.testing.assert_array_equal(again["trip_distance"], by_id["trip_distance"])
    np.testing.assert_array_equal(again["actual_duration"], by_id["duration"])


def test_small_record_batches_write_the_same_rows(
    pandas_run, registry: str, tmp_path: Path
) -> None:
    _, scored = pandas_run
    summary = score_months(CHAMPION, [MARCH], tmp_path, tracking_uri=registry, batch_rows=7_000)
    files = list(Path(summary.months[0].path).glob("*.parquet"))
    assert len(files) == 1
    assert pq.ParquetFile(files[0]).metadata.num_row_groups == 12  # 83,827 rows / 7,000
    pd.testing.assert_frame_equal(read_scored(tmp_path), scored)


def test_spark_engine_writes_the_same_rows_and_predictions(
    pandas_run, registry: str, tmp_path: Path
) -> None:
    require_program(["java"], "apt-get install openjdk-17-jre-headless (Debian/Ubuntu)")
    _, expected = pandas_run
    summary = score_months(
        CHAMPION, [MARCH], tmp_path, tracking_uri=registry, engine="spark", master="local[2]"
    )
    (month,) = summary.months
    assert (month.rows_read, month.rows_kept, month.skipped_inputs, month.rows_written) == (
        83_827, 80_372, 23, 80_349,
    )  # fmt: skip
    scored = read_scored(tmp_path)
    assert not list(Path(month.path).glob(".*"))  # no Hadoop checksums
    assert not list(Path(month.path).glob("_*"))  # no _SUCCESS marker
    exact = ("ride_id", "pickup_datetime", "PULocationID", "DOLocationID",
             "model_name", "model_version", "run_id", "service", "year", "month")  # fmt: skip
    for column in exact:
        assert scored[column].tolist() == expected[column].tolist(), column
    for column in ("trip_distance", "actual_duration", "predicted_duration", "diff"):
        np.testing.assert_allclose(scored[column], expected[column], rtol=0, atol=1e-9)
    assert scored.dtypes.to_dict() == expected.dtypes.to_dict()


def test_rescoring_replaces_the_month_and_the_challenger_is_named(
    registry: str, tmp_path: Path
) -> None:
    first = score_months(CHAMPION, [MARCH], tmp_path, tracking_uri=registry)
    again = score_months("models:/nyc-taxi-duration/2", [MARCH], tmp_path, tracking_uri=registry)
    assert again.months[0].path == first.months[0].path
    scored = read_scored(tmp_path)
    assert len(scored) == 80_349  # replaced, not appended
    assert set(scored["model_version"]) == {"2"}
    assert [p.name for p in tmp_path.iterdir()] == ["service=green"]  # no staging left


# -- bad input: a clear error, nothing half-written -------------------------------------------


@pytest.mark.parametrize(
    ("model_uri", "message"),
    [
        (
            "models:/nyc-taxi-duration@nope",
            "--model models:/nyc-taxi-duration@nope: cannot resolve",
        ),
        ("models:/nyc-taxi-duration/99", "--model models:/nyc-taxi-duration/99: cannot resolve"),
        ("runs:/abc/model", "model_uri 'runs:/abc/model' is not a registry URI"),
        ("models:/other-model@champion", "--model models:/other-model@champion: cannot resolve"),
    ],
)
def test_unknown_models_are_named(
    registry: str, tmp_path: Path, model_uri: str, message: str
) -> None:
    with pytest.raises(ScoreError) as error:
        score_months(model_uri, [MARCH], tmp_path / "out", tracking_uri=registry)
    assert str(error.value).startswith(f"--model {model_uri}: ")
    assert message in str(error.value)
    assert not (tmp_path / "out").exists()


class NotFoundHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # the stdlib's name
        self.send_error(404)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def tlc_404(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFoundHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("DURATION_TLC_BASE_URL", url)
    yield url
    server.shutdown()


def test_a_month_the_tlc_does_not_have(registry: str, tmp_path: Path, tlc_404: str) -> None:
    with pytest.raises(ScoreError) as error:
        score_months(
            CHAMPION, [MARCH, "green:2031-01"], tmp_path / "out",
            tracking_uri=registry, data_cache_dir=tmp_path / "cache",
        )  # fmt: skip
    assert str(error.value).startswith("--month green:2031-01: ")
    assert "404" in str(error.value)
    assert not (tmp_path / "out").exists()  # checked before anything was scored


@pytest.mark.parametrize("bad", ["not-a-month", "green:2021-13", "taxi:2021-03"])
def test_malformed_months(registry: str, tmp_path: Path, bad: str) -> None:
    with pytest.raises(ScoreError, match=f"^--month '{bad}': "):
        score_months(CHAMPION, [bad], tmp_path / "out", tracking_uri=registry)


def test_an_output_that_cannot_be_written(registry: str, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for out in (blocker, blocker / "inside"):
        with pytest.raises(ScoreError, match=f"^--out {out}: "):
            score_months(CHAMPION, [MARCH], out, tracking_uri=registry)
    assert blocker.read_text() == "x"


def _month_of_long_rides(folder: Path) -> Path:
    """Green 2021-03's rows with every dropoff two hours after its pickup (none kept)."""
    table = pq.read_table(bundled_path(TripMonth.parse(MARCH)))
    frame = table.to_pandas()
    frame["lpep_dropoff_datetime"] = frame["lpep_pickup_datetime"] + pd.Timedelta(hours=2)
    path = folder / "long-rides.parquet"
    frame.to_parquet(path)
    return path


def test_a_month_with_no_ride_left_keeps_the_earlier_scoring(registry: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = score_months(CHAMPION, [MARCH], out, tracking_uri=registry)
    before = read_scored(out)
    long_rides = MonthSource(TripMonth.parse(MARCH), _month_of_long_rides(tmp_path))
    with pytest.raises(ScoreError) as error:
        score_months(CHAMPION, [long_rides], out, tracking_uri=registry)
    assert str(error.value) == (
        "--month green:2021-03: no ride is left after the course's 1-60 minute filter "
        "(83,827 rows read); nothing was written"
    )
    pd.testing.assert_frame_equal(read_scored(out), before)
    assert [p.name for p in out.iterdir()] == ["service=green"]
    assert Path(first.months[0].path).is_dir()


# -- the console script ---------------------------------------------------------------------


def test_the_console_script_prints_one_json_summary(registry: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [str(BIN / "duration-score"), "--model", CHAMPION, "--month", MARCH,
         "--out", str(tmp_path / "out"), "--tracking-uri", registry, "--json"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["rows_read"] == 83_827
    assert summary["rows_written"] == summary["rows_scored"] == 80_349
    assert summary["rows_per_second"] > 0
    assert summary["output"] == str(tmp_path / "out")
    assert summary["model"]["version"] == "1"
    assert "rides scored" in done.stderr  # progress goes to stderr

    bad = subprocess.run(
        [str(BIN / "duration-score"), "--model", "models:/nyc-taxi-duration@nope",
         "--month", MARCH, "--out", str(tmp_path / "bad"), "--tracking-uri", registry],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert bad.returncode == 1
    assert (
        bad.stderr.strip()
        .splitlines()[-1]
        .startswith("duration-score: --model models:/nyc-taxi-duration@nope: cannot resolve")
    )
    assert "Traceback" not in bad.stderr
    usage = subprocess.run(
        [str(BIN / "duration-score"), "--month", MARCH], capture_output=True, text=True
    )
    assert usage.returncode == 2
    assert "--model" in usage.stderr


def scoring_mid_month(registry: str, out: Path, log: Path) -> subprocess.Popen[bytes]:
    """A ``duration-score`` process of green 2021-03 in batches of 2,000 rows, once it has
    written its first batch (the month is half done)."""
    process = subprocess.Popen(
        [str(BIN / "duration-score"), "--model", CHAMPION, "--month", MARCH, "--out", str(out),
         "--tracking-uri", registry, "--batch-rows", "2000"],
        stdout=subprocess.DEVNULL, stderr=log.open("w"), cwd=log.parent,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while "rides scored" not in log.read_text() and time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        time.sleep(0.05)
    assert "rides scored" in log.read_text()
    return process


def test_kill_9_mid_job_leaves_no_half_month(registry: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    process = scoring_mid_month(registry, out, tmp_path / "score.log")
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert not (out / "service=green").exists()  # nothing of the month is visible
    staged = list(out.iterdir())
    assert all(p.name.startswith(".duration-score-") for p in staged)  # hidden from readers
    assert ds.dataset(out, format="parquet", partitioning="hive").count_rows() == 0


# -- found by an adversarial review -----------------------------------------------------------


def _march_head(path: Path, rows: int, **changes: object) -> Path:
    """The first ``rows`` raw rows of green 2021-03 (columns changed as given) at ``path``."""
    frame = pq.read_table(bundled_path(TripMonth.parse(MARCH))).slice(0, rows).to_pandas()
    for column, value in changes.items():
        frame[column] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path)
    return path


def test_the_spark_engine_reads_exactly_the_file_and_refuses_what_the_core_refuses(
    registry: str, tmp_path: Path
) -> None:
    require_program(["java"], "apt-get install openjdk-17-jre-headless (Debian/Ubuntu)")
    march = TripMonth.parse(MARCH)
    small = _march_head(tmp_path / "c[ab]" / "march.parquet", 2_000)
    _march_head(tmp_path / "ca" / "march.parquet", 5_000)  # what the glob c[ab] would match
    summary = score_months(
        CHAMPION, [MonthSource(march, small)], tmp_path / "out", tracking_uri=registry,
        engine="spark", master="local[1]",
    )  # fmt: skip
    assert summary.months[0].rows_read == 2_000
    fraction = _march_head(tmp_path / "frac.parquet", 50, PULocationID=12.5)
    for engine in ("pandas", "spark"):
        with pytest.raises(ScoreError) as error:
            score_months(
                CHAMPION, [MonthSource(march, fraction)], tmp_path / engine,
                tracking_uri=registry, engine=engine, master="local[1]",  # type: ignore[arg-type]
            )  # fmt: skip
        assert str(error.value).startswith("--month green:2021-03: ")
        assert "whole-number" in str(error.value)
        assert "\n" not in str(error.value)
        assert not list((tmp_path / engine).glob("service=*"))


def test_a_corrupt_second_month_keeps_the_first_and_says_so(registry: str, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.parquet"
    data = bytearray(bundled_path(TripMonth.parse(MARCH)).read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4096] = bytes(4096)
    corrupt.write_bytes(bytes(data))
    months = [MARCH, MonthSource(TripMonth.parse("green:2021-02"), corrupt)]
    with pytest.raises(ScoreError) as error:
        score_months(CHAMPION, months, tmp_path / "out", tracking_uri=registry)
    assert str(error.value).startswith("--month green:2021-02: ")
    assert str(error.value).endswith("nothing of it was written")
    assert [m.month for m in error.value.published] == [MARCH]
    assert read_scored(tmp_path / "out")["month"].unique().tolist() == [3]


def test_a_missing_registry_is_named_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "mlflow.db"
    with pytest.raises(ScoreError, match="no registry there"):
        score_months(CHAMPION, [MARCH], tmp_path / "out", tracking_uri=f"sqlite:///{missing}")
    assert not missing.exists()


def test_a_month_given_twice_is_refused(registry: str, tmp_path: Path) -> None:
    with pytest.raises(ScoreError, match=r"^--month green:2021-03 is given twice$"):
        score_months(CHAMPION, [MARCH, MARCH], tmp_path / "out", tracking_uri=registry)


def test_sigterm_cleans_up_like_ctrl_c(registry: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    log = tmp_path / "score.log"
    process = scoring_mid_month(registry, out, log)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 130
    assert log.read_text().strip().splitlines()[-1] == (
        "duration-score: interrupted; the month being scored was not published"
    )
    assert list(out.iterdir()) == []  # the staging folder is gone too
