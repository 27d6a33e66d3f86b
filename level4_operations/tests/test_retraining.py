"""Retraining on production rides through level 2's pipeline: the rides as TLC files split by
time, the gate against the champion on the holdout, the data gate on corrupted feedback."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from conftest import log_frame, month
from duration_core import read_trips
from duration_operations.policy import Gates, RetrainingData
from duration_operations.retraining import (
    GATE_FAILED,
    GATE_PASSED,
    PIPELINE_STOPPED,
    TOO_FEW_RIDES,
    labelled_rides,
    retrain,
    write_production_files,
)
from duration_training import PipelineConfig, run_pipeline

MODEL = "nyc-taxi-duration"
#: The default policy's data, with fewer rides: these tests train on 6,000 of them.
DATA = RetrainingData(min_rides=4_000)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A SQLite registry whose champion v1 is the course's linear model on green 2021-01."""
    folder = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    config = PipelineConfig(tracking_uri=uri, candidates=("linear",))
    run_pipeline(["green:2021-01"], "green:2021-02", config=config, tracking_uri=uri)
    return uri


def aliases(uri):
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    return {a: str(v) for a, v in client.get_registered_model(MODEL).aliases.items()}


def production(champion, rows=8_000):
    pipeline, _ = champion
    return labelled_rides(log_frame(month("green:2023-03").iloc[:rows], pipeline))


def test_labelled_rides_keep_one_live_answer_per_ride(champion):
    pipeline, _ = champion
    frame = log_frame(month("green:2021-03").iloc[:10], pipeline)
    frame.loc[0, "shadow"] = True
    frame.loc[1, "forced"] = True
    frame.loc[2, "actual"] = np.nan
    frame.loc[3, "prediction"] = np.nan  # the variant failed
    again = frame.iloc[[9]].assign(id=11, actual=99.0)  # the same ride answered again
    rides = labelled_rides(pd.concat([frame, again], ignore_index=True))
    assert rides["id"].tolist() == [5, 6, 7, 8, 9, 11]
    assert rides["actual"].iloc[-1] == 99.0


def test_production_files_are_tlc_months_split_by_time(champion, tmp_path):
    rides = production(champion, 4_000)
    data = write_production_files(rides, tmp_path, 0.25)
    assert (data.train_rows, data.holdout_rows) == (3_000, 1_000)
    assert data.train_sha256 == hashlib.sha256(data.train.read_bytes()).hexdigest()
    train, holdout = read_trips(data.train), read_trips(data.holdout)
    assert len(train) == 3_000
    assert len(holdout) == 1_000
    assert train["pickup_datetime"].max() <= holdout["pickup_datetime"].min()
    np.testing.assert_allclose(
        holdout["duration"].to_numpy(), rides["actual"].iloc[3_000:], atol=1e-6
    )
    assert (data.first_id, data.last_id) == (1, 4_000)


def test_a_retrain_on_2023_rides_beats_the_2021_champion_on_the_holdout(
    champion, registry, tmp_path
):
    result = retrain(
        production(champion),
        data_policy=DATA,
        gates=Gates(),
        tracking_uri=registry,
        model_name=MODEL,
        folder=tmp_path,
    )
    assert result.outcome == GATE_PASSED, result.reason
    assert result.version == "2"
    assert result.model == "gbm"
    assert result.champion_rmse == pytest.approx(6.6, abs=0.7)
    assert result.improvement is not None
    assert result.improvement > 0.1
    assert result.data is not None
    assert (result.data.train_rows, result.data.holdout_rows) == (
        6_000,
        2_000,
    )
    assert aliases(registry) == {"champion": "1", "challenger": "2"}
    assert {c["name"] for c in result.checks} >= {"distance_duration"}


def test_a_version_that_fails_the_gate_gives_the_alias_back(champion, registry, tmp_path):
    before = aliases(registry)
    result = retrain(
        production(champion),
        data_policy=DATA.model_copy(update={"candidates": ("linear",)}),
        gates=Gates(min_improvement=0.5),
        tracking_uri=registry,
        model_name=MODEL,
        folder=tmp_path,
    )
    assert result.outcome == GATE_FAILED
    assert "the gate needs +50.0%" in result.reason
    assert aliases(registry) == before


def test_shuffled_feedback_is_stopped_by_the_data_gate(champion, registry, tmp_path):
    rides = production(champion)
    rides["actual"] = np.random.default_rng(1).permutation(rides["actual"].to_numpy())
    versions = len(MlflowClient(tracking_uri=registry).search_model_versions(f"name='{MODEL}'"))
    result = retrain(
        rides,
        data_policy=DATA,
        gates=Gates(),
        tracking_uri=registry,
        model_name=MODEL,
        folder=tmp_path,
    )
    assert result.outcome == PIPELINE_STOPPED
    assert "validate" in result.reason
    assert "distance_duration" in result.reason
    assert result.version is None
    assert (
        len(MlflowClient(tracking_uri=registry).search_model_versions(f"name='{MODEL}'"))
        == versions
    )


def test_too_few_rides_is_not_a_retrain(champion, tmp_path):
    result = retrain(production(champion, 1_000), data_policy=DATA, gates=Gates(),
                     tracking_uri="sqlite:///unused.db", model_name=MODEL,
                     folder=tmp_path)  # fmt: skip
    assert result.outcome == TOO_FEW_RIDES
    assert result.reason == "1,000 labelled production rides, the policy needs 4,000"
