"""The pipeline: the course's published numbers, its input forms, and its behaviour."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from duration_core import (
    InvalidRidesError,
    RideFeatures,
    build_features,
    build_pipeline,
    evaluate,
    train_model,
)
from duration_core.training import TrainingResult

RIDE = {"PULocationID": 43, "DOLocationID": 151, "trip_distance": 1.5}


# --- the course's numbers (DataTalksClub mlops-zoomcamp 02-experiment-tracking notebook) -------


def test_course_row_counts(course_result: TrainingResult) -> None:
    assert course_result.train_rows == 73_908
    assert course_result.val.report.rows_kept == 61_921
    assert course_result.val_metrics.n == 61_921


def test_course_linear_regression_validation_rmse(course_result: TrainingResult) -> None:
    # Published 7.758715210382775; scikit-learn's sparse lsqr solver moves the last digits.
    assert course_result.val_metrics.rmse == pytest.approx(7.7587, abs=1e-3)
    assert course_result.val_metrics.rmse == pytest.approx(7.758715, abs=1e-3)


def test_course_lasso_validation_rmse() -> None:
    result = train_model("green:2021-01", "green:2021-02", model="lasso")
    assert result.val_metrics.rmse == pytest.approx(11.1673, abs=1e-3)  # published 11.167276


def test_ridge_is_selectable_and_close_to_the_baseline() -> None:
    result = train_model("green:2021-01", "green:2021-02", model="ridge")
    assert result.val_metrics.rmse == pytest.approx(7.7037, abs=1e-3)


def test_gbm_candidate_beats_the_baseline_from_the_same_raw_fields() -> None:
    result = train_model("green:2021-01", "green:2021-02", model="gbm")
    assert result.val_metrics.rmse == pytest.approx(5.988, abs=0.01)
    assert result.val_metrics.rmse <= 6.2  # level 2's target, from raw ride fields alone
    again = train_model("green:2021-01", "green:2021-02", model="gbm")
    assert again.val_metrics.rmse == result.val_metrics.rmse  # seeded: reproducible
    assert result.pipeline.predict([RIDE]).shape == (1,)


def test_model_beats_the_mean_predictor(course_result: TrainingResult) -> None:
    y_val = course_result.val.rides["duration"].to_numpy()
    mean_train = course_result.train[0].rides["duration"].mean()
    baseline = evaluate(y_val, np.full_like(y_val, mean_train))
    assert baseline.rmse == pytest.approx(12.2131, abs=1e-3)
    assert course_result.val_metrics.rmse < 0.65 * baseline.rmse
    assert course_result.val_metrics.r2 == pytest.approx(0.5937, abs=1e-3)


def test_several_training_months_are_concatenated() -> None:
    result = train_model(["green:2021-01", "green:2021-02"], "green:2021-03")
    assert result.train_rows == 73_908 + 61_921
    assert [t.source for t in result.train] == ["green:2021-01", "green:2021-02"]


def test_validation_file_must_differ_from_training() -> None:
    with pytest.raises(ValueError, match="is also a training file"):
        train_model("green:2021-01", "green:2021-01")


def test_unknown_model_name_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown model 'forest'"):
        build_pipeline("forest")


# --- input forms: what a service receives ---------------------------------------------------


def test_dataframe_list_of_dicts_and_single_dict_agree(course_result: TrainingResult) -> None:
    pipeline = course_result.pipeline
    rides = course_result.val.rides.head(50)
    records = (
        rides[["PULocationID", "DOLocationID", "trip_distance"]].astype(object).to_dict("records")
    )
    from_frame = pipeline.predict(rides)
    from_records = pipeline.predict(records)
    np.testing.assert_array_equal(from_frame, from_records)
    assert pipeline.predict(records[0])[0] == from_frame[0]
    assert from_frame.shape == (50,)
    assert from_frame.dtype == np.float64


def test_integer_and_float_distance_give_the_same_prediction(course_result) -> None:
    pipeline = course_result.pipeline
    as_int = pipeline.predict([{**RIDE, "trip_distance": 3}])
    as_float = pipeline.predict([{**RIDE, "trip_distance": 3.0}])
    assert as_int[0] == as_float[0]


def test_zone_ids_given_as_whole_floats_equal_ints(course_result) -> None:
    pipeline = course_result.pipeline
    assert pipeline.predict([{**RIDE, "PULocationID": 43.0}])[0] == pipeline.predict([RIDE])[0]


def test_unseen_and_missing_zones_still_get_a_finite_prediction(course_result) -> None:
    pipeline = course_result.pipeline
    regressor = pipeline.named_steps["regressor"]
    rides = [
        {"PULocationID": 999, "DOLocationID": 998, "trip_distance": 2.0},
        {"PULocationID": None, "DOLocationID": 151, "trip_distance": 2.0},
    ]
    predictions = pipeline.predict(rides)
    # An unseen pair encodes as all zeros: intercept + slope * distance.
    expected = regressor.intercept_ + regressor.coef_[-1] * 2.0
    np.testing.assert_allclose(predictions, [expected, expected])


def test_extra_fields_are_ignored_and_order_is_kept(course_result) -> None:
    pipeline = course_result.pipeline
    rides = course_result.val.rides.head(20)
    shuffled = rides.sample(frac=1.0, random_state=0)
    np.testing.assert_array_equal(
        pipeline.predict(shuffled), pd.Series(pipeline.predict(rides), rides.index)[shuffled.index]
    )
    extra = [{**RIDE, "fare_amount": 12.0, "ride_id": "abc"}]
    assert pipeline.predict(extra)[0] == pipeline.predict([RIDE])[0]


def test_longer_trip_predicts_longer_duration(course_result) -> None:
    # Directional: same zones, more miles. The course's baseline learns a tiny slope because
    # odometer errors (up to 244,152 miles in green 2021-01) dominate least squares.
    predictions = course_result.pipeline.predict(
        [{**RIDE, "trip_distance": d} for d in (0.5, 2.0, 10.0)]
    )
    assert np.all(np.diff(predictions) > 0)


def test_features_are_the_course_features() -> None:
    features = build_features(
        [
            {"PULocationID": 43, "DOLocationID": 151, "trip_distance": 1},
            {"PULocationID": 132.0, "DOLocationID": None, "trip_distance": "2.5"},
        ]
    )
    assert features["PU_DO"].tolist() == ["43_151", "132_missing"]
    assert features["trip_distance"].tolist() == [1.0, 2.5]
    assert RideFeatures().get_feature_names_out().tolist() == ["PU_DO", "trip_distance"]


@pytest.mark.parametrize(
    ("rides", "message"),
    [
        ([{"PULocationID": 43, "trip_distance": 1.0}], "ride 0 lacks the field 'DOLocationID'"),
        ([{**RIDE, "trip_distance": float("nan")}], "trip_distance must be a finite number"),
        ([{**RIDE, "trip_distance": float("inf")}], "trip_distance must be a finite number"),
        ([{**RIDE, "trip_distance": "far"}], "trip_distance must be a number of miles"),
        ([{**RIDE, "PULocationID": "abc"}], "PULocationID must hold whole-number TLC zone IDs"),
        ([{**RIDE, "PULocationID": 4.5}], "PULocationID must hold whole-number TLC zone IDs"),
        ([], "no rides given"),
        ("43_151", "rides must be a DataFrame, a dict or a list of dicts"),
    ],
)
def test_bad_rides_name_the_field(course_result, rides, message: str) -> None:
    with pytest.raises(InvalidRidesError, match=message):
        course_result.pipeline.predict(rides)
