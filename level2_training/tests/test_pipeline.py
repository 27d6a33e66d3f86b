"""The pipeline on the bundled real months with the embedded SQLite tracking store."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mlflow.tracking import MlflowClient

from duration_core import load_model, read_trips
from duration_core.datasets import TripMonth, bundled_path
from duration_training import (
    DataValidationError,
    PipelineConfig,
    PipelineError,
    TrackingUnavailableError,
    run_pipeline,
)
from duration_training.export import export_model

NAME = "nyc-taxi-duration"
JAN = bundled_path(TripMonth("green", 2021, 1))
FEB = bundled_path(TripMonth("green", 2021, 2))


def test_first_run_trains_tracks_registers_and_crowns(workdir: Path) -> None:
    result = run_pipeline(["green:2021-01"], "green:2021-02")
    assert [s.outcome for s in result.steps.steps] == ["ok"] * 6
    rmse = {c.name: c.metrics.rmse for c in result.candidates}
    assert rmse["linear"] == pytest.approx(7.7587, abs=1e-3)  # the course's baseline
    assert rmse["lasso"] == pytest.approx(11.1673, abs=1e-3)
    assert result.best.name == "gbm"
    assert result.best.metrics.rmse <= 6.2  # the level's target, from raw ride fields
    assert result.version == "1"
    assert result.aliases_moved == ["challenger", "champion"]

    client = MlflowClient()
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == "1"
    assert str(client.get_model_version_by_alias(NAME, "challenger").version) == "1"
    parent = client.get_run(result.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["train.green_tripdata_2021-01.parquet.sha256"].startswith(
        "b8e2c9496c5e"
    )
    assert parent.data.tags["git_commit"]
    assert parent.data.params["seed"] == "0"
    assert parent.data.metrics["train.green_tripdata_2021-01.parquet.rows_kept"] == 73_908
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{result.run_id}'"
    )
    assert sorted(r.data.tags["mlflow.runName"] for r in children) == [
        "gbm",
        "lasso",
        "linear",
        "ridge",
    ]
    plots = [a.path for a in client.list_artifacts(result.best.run_id, "plots")]
    assert plots == ["plots/predicted_vs_actual.png", "plots/residuals_by_distance.png"]
    assert (workdir / "mlflow.db").is_file()


def test_second_run_is_challenger_and_reproducible(workdir: Path) -> None:
    first = run_pipeline(["green:2021-01"], "green:2021-02")
    second = run_pipeline(["green:2021-01"], "green:2021-02")
    # same inputs, same seeds: same metrics and data fingerprints
    for a, b in zip(first.candidates, second.candidates, strict=True):
        assert a.metrics.rmse == pytest.approx(b.metrics.rmse, abs=1e-9)
    assert [t.sha256 for t in first.train] == [t.sha256 for t in second.train]
    assert first.val.sha256 == second.val.sha256
    # not better by 1%: challenger moves, champion stays
    assert second.version == "2"
    assert second.aliases_moved == ["challenger"]
    client = MlflowClient()
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == "1"
    assert str(client.get_model_version_by_alias(NAME, "challenger").version) == "2"
    v2 = client.get_model_version(NAME, "2")
    assert v2.tags["decision"] == "champion stays v1"
    assert float(v2.tags["champion_val_rmse"]) == pytest.approx(first.best.metrics.rmse, abs=1e-9)
    assert "not better by 1%" in v2.description


def test_a_better_model_takes_the_champion_alias(workdir: Path) -> None:
    baseline = run_pipeline(
        ["green:2021-01"], "green:2021-02", config=PipelineConfig(candidates=("linear",))
    )
    assert baseline.champion_version == "1"
    better = run_pipeline(
        ["green:2021-01"], "green:2021-02", config=PipelineConfig(candidates=("gbm",))
    )
    assert better.aliases_moved == ["challenger", "champion"]
    assert better.champion_rmse == pytest.approx(7.7587, abs=1e-3)  # v1 re-scored on February
    assert str(MlflowClient().get_model_version_by_alias(NAME, "champion").version) == "2"


def test_export_is_what_the_level1_service_serves(workdir: Path) -> None:
    result = run_pipeline(
        ["green:2021-01"], "green:2021-02", config=PipelineConfig(candidates=("linear", "gbm"))
    )
    summary = export_model(f"models:/{NAME}@champion", workdir / "champion.zip")
    assert summary["registered_version"] == "1"
    assert summary["model"] == "gbm"
    exported = load_model(workdir / "champion.zip")  # the core artifact duration-serve loads
    rides = read_trips("green:2021-03").head(500)
    np.testing.assert_array_equal(
        exported.pipeline.predict(rides), result.best.pipeline.predict(rides)
    )
    assert exported.metadata["registered_version"] == "1"
    assert exported.metadata["run_id"] == result.run_id


# --- bad data: the run fails with the reason, nothing is registered, no alias moves -------------


def broken(folder: Path, kind: str) -> Path:
    table = pq.read_table(JAN)
    path = folder / f"{kind}.parquet"
    if kind == "corrupt":
        path.write_bytes(b"PAR1" + b"\0" * 100)
    elif kind == "renamed_column":
        pq.write_table(
            table.rename_columns(
                ["DOLocation" if n == "DOLocationID" else n for n in table.column_names]
            ),
            path,
        )
    elif kind == "empty":
        pq.write_table(table.slice(0, 0), path)
    elif kind == "all_filtered":
        # every ride lasts 2 hours
        pickup = table.column("lpep_pickup_datetime")
        dropoff = pa.compute.add(pickup, pa.scalar(7_200_000_000, pa.duration("us")))
        pq.write_table(
            table.set_column(
                table.schema.get_field_index("lpep_dropoff_datetime"),
                "lpep_dropoff_datetime",
                dropoff,
            ),
            path,
        )
    elif kind == "too_few":
        pq.write_table(table.slice(0, 500), path)
    elif kind == "shuffled_durations":
        # Each ride gets another ride's duration: a feedback join gone wrong.
        pickup = table.column("lpep_pickup_datetime")
        durations = pa.compute.subtract(table.column("lpep_dropoff_datetime"), pickup)
        order = np.random.default_rng(0).permutation(len(table))
        dropoff = pa.compute.add(pickup, durations.take(pa.array(order)))
        index = table.schema.get_field_index("lpep_dropoff_datetime")
        pq.write_table(table.set_column(index, "lpep_dropoff_datetime", dropoff), path)
    return path


@pytest.mark.parametrize(
    ("kind", "step", "message"),
    [
        ("missing", "ingest", "trip file not found"),
        ("corrupt", "ingest", "is not a parquet file"),
        ("renamed_column", "ingest", "required column 'DOLocationID' is missing"),
        ("empty", "ingest", "the file has no rides"),
        ("all_filtered", "ingest", "no ride is left after the 1-60 minute filter"),
        ("too_few", "validate", "rides failed: 4"),
        ("same_as_train", "validate", "distinct_files failed"),
        ("shuffled_durations", "validate", "distance_duration failed"),
    ],
)
def test_bad_data_is_refused_and_nothing_is_registered(
    workdir: Path, kind: str, step: str, message: str
) -> None:
    if kind == "same_as_train":
        train, val = JAN, workdir / "copy.parquet"
        val.write_bytes(JAN.read_bytes())
    elif kind == "missing":
        train, val = workdir / "missing.parquet", FEB
    else:
        train, val = broken(workdir, kind), FEB
    error = DataValidationError if step == "validate" else PipelineError
    with pytest.raises(error, match=message) as raised:
        run_pipeline([train], val)
    assert raised.value.step == step
    client = MlflowClient()
    assert client.search_registered_models() == []
    (run,) = mlflow.search_runs(experiment_names=["nyc-taxi-duration"], output_format="list")
    assert run.info.status == "FAILED"
    assert run.data.tags["failed_step"] == step
    assert message.split(":")[0] in run.data.tags["failure_reason"]


def test_a_failure_after_a_champion_moves_no_alias(workdir: Path) -> None:
    run_pipeline(["green:2021-01"], "green:2021-02", config=PipelineConfig(candidates=("linear",)))
    with pytest.raises(PipelineError):
        run_pipeline([broken(workdir, "empty")], FEB)
    client = MlflowClient()
    assert [str(v.version) for v in client.search_model_versions(f"name='{NAME}'")] == ["1"]
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == "1"


def test_tracking_server_down_fails_fast_naming_it(workdir: Path) -> None:
    import socket
    import time

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(TrackingUnavailableError, match=f"http://127.0.0.1:{port} is not reachable"):
        run_pipeline(["green:2021-01"], "green:2021-02", tracking_uri=f"http://127.0.0.1:{port}")
    assert time.monotonic() - start < 10


def test_the_same_training_file_twice_is_refused(workdir: Path) -> None:
    with pytest.raises(DataValidationError, match="it would count twice"):
        run_pipeline(["green:2021-01", JAN], "green:2021-02")
    assert MlflowClient().search_registered_models() == []


def test_a_failure_after_registering_rolls_the_registry_back(workdir: Path, monkeypatch) -> None:
    run_pipeline(["green:2021-01"], "green:2021-02", config=PipelineConfig(candidates=("linear",)))

    def broken_decide(*args, **kwargs):
        raise RuntimeError("registry went away")

    monkeypatch.setattr("duration_training.pipeline.decide", broken_decide)
    with pytest.raises(PipelineError, match="RuntimeError: registry went away") as raised:
        run_pipeline(
            ["green:2021-01"], "green:2021-02", config=PipelineConfig(candidates=("linear",))
        )
    assert raised.value.step == "decide"
    client = MlflowClient()
    assert [str(v.version) for v in client.search_model_versions(f"name='{NAME}'")] == ["1"]
    assert str(client.get_model_version_by_alias(NAME, "challenger").version) == "1"
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == "1"


def test_ctrl_c_marks_the_run_killed_and_registers_nothing(workdir: Path, monkeypatch) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("duration_training.pipeline.train_candidates", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(["green:2021-01"], "green:2021-02")
    (run,) = mlflow.search_runs(experiment_names=["nyc-taxi-duration"], output_format="list")
    assert run.info.status == "KILLED"
    assert run.data.tags["failure_reason"] == "interrupted"
    assert MlflowClient().search_registered_models() == []


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("sqlite://", "is an in-memory store"),
        ("sqlite:////nonexistent/folder/x.db", "the folder /nonexistent/folder does not exist"),
        ("sqlite:///junk.db", "cannot use the MLflow store"),
    ],
)
def test_unusable_stores_are_refused(workdir: Path, uri: str, message: str) -> None:
    (workdir / "junk.db").write_text("not a database")
    with pytest.raises(TrackingUnavailableError, match=message):
        run_pipeline(["green:2021-01"], "green:2021-02", tracking_uri=uri)


@pytest.mark.parametrize(
    ("candidates", "message"),
    [((), "no candidate models given"), (("gbm", "gbm"), "given twice"), (("x",), "unknown")],
)
def test_bad_candidate_lists(candidates, message: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message):
        PipelineConfig(candidates=candidates)
