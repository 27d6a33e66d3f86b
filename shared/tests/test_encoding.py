"""RideVectorizer builds exactly the course's DictVectorizer matrix."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction import DictVectorizer

from duration_core import build_features, read_trips
from duration_core.encoding import RideVectorizer


def course_matrix(train: pd.DataFrame, other: pd.DataFrame):
    """The course's encoding: to_dict records + DictVectorizer, fitted on ``train``."""
    dv = DictVectorizer()
    dv.fit(train[["PU_DO", "trip_distance"]].to_dict(orient="records"))
    return dv, dv.transform(other[["PU_DO", "trip_distance"]].to_dict(orient="records"))


@pytest.fixture(scope="module")
def features() -> tuple[pd.DataFrame, pd.DataFrame]:
    return (
        build_features(read_trips("green:2021-01")),
        build_features(read_trips("green:2021-02")),
    )


def test_same_matrix_as_dictvectorizer_on_real_months(features) -> None:
    train, val = features
    encoder = RideVectorizer().fit(train)
    for frame in (train, val):  # val holds pairs never seen in January
        dv, expected = course_matrix(train, frame)
        actual = encoder.transform(frame)
        assert actual.shape == expected.shape
        assert (actual != expected).nnz == 0
        assert actual.dtype == np.float64
    assert encoder.get_feature_names_out().tolist() == dv.get_feature_names_out().tolist()
    assert len(encoder.categories_) == 13_220


def test_unseen_pair_has_only_the_distance() -> None:
    encoder = RideVectorizer().fit(
        pd.DataFrame({"PU_DO": ["1_2", "10_2"], "trip_distance": [1, 2]})
    )
    matrix = encoder.transform(pd.DataFrame({"PU_DO": ["10_2", "7_7"], "trip_distance": [3, 0]}))
    np.testing.assert_array_equal(matrix.toarray(), [[1.0, 0.0, 3.0], [0.0, 0.0, 0.0]])
    # sorted as strings, the way DictVectorizer sorts them: "10_2" < "1_2"
    assert encoder.categories_.tolist() == ["10_2", "1_2"]


def test_survives_pickling() -> None:
    frame = pd.DataFrame({"PU_DO": ["1_2", "3_4"], "trip_distance": [1.0, 2.0]})
    encoder = pickle.loads(pickle.dumps(RideVectorizer().fit(frame)))
    np.testing.assert_array_equal(
        encoder.transform(frame).toarray(), [[1.0, 0.0, 1.0], [0.0, 1.0, 2.0]]
    )
