"""The reference profile and drift measures, on the bundled real months and on hand-made rides.

The linear model is fitted once per session (``course_result``: train green 2021-01); every
figure asserted below was measured with it (see the table in ``duration_core.profile``).
"""

from __future__ import annotations

import json
import logging
import math
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from duration_core import (
    FEATURES,
    PSI_THRESHOLDS,
    ChecksumMismatchError,
    DriftReport,
    InvalidRidesError,
    ProfileError,
    ReferenceProfile,
    build_profile,
    drift_report,
    load_model,
    load_trips,
    psi,
    read_profile,
    save_model,
)
from duration_core.cli import main as train_cli
from duration_core.profile import (
    DRIFT_FEATURES,
    PSI_EPSILON,
    UNSEEN_PAIR_THRESHOLD,
    psi_level,
)
from duration_core.training import TrainingResult

TOL = 1e-3


# --- fixtures: one fit, the months as (rides, the model's predictions) -------------------------


@pytest.fixture(scope="module")
def jan_profile(course_result: TrainingResult) -> ReferenceProfile:
    rides = course_result.train[0].rides
    return build_profile(rides, course_result.pipeline.predict(rides), source="green:2021-01")


@pytest.fixture(scope="module")
def months(course_result: TrainingResult) -> dict[str, tuple[pd.DataFrame, np.ndarray]]:
    """Each month's rides and the Jan-trained linear model's predictions on them."""
    rides = {
        "2021-01": course_result.train[0].rides,
        "2021-02": course_result.val.rides,
        "2021-03": load_trips("green:2021-03").rides,
        "2023-03": load_trips("green:2023-03").rides,
    }
    return {m: (r, course_result.pipeline.predict(r)) for m, r in rides.items()}


@pytest.fixture
def small_profile() -> ReferenceProfile:
    """Four hand-made rides: pickups 1, 1, 2 and a missing zone; drop-offs all 3."""
    rides = pd.DataFrame(
        {
            "PULocationID": pd.array([1, 1, 2, None], dtype="Int64"),
            "DOLocationID": [3, 3, 3, 3],
            "trip_distance": [1.0, 2.0, 3.0, 4.0],
        }
    )
    return build_profile(rides, [5.0, 6.0, 7.0, 8.0], source="hand-made")


# --- the profile ------------------------------------------------------------------------------


def test_profile_of_the_training_month(jan_profile: ReferenceProfile) -> None:
    assert jan_profile.rows == 73_908
    assert jan_profile.source == "green:2021-01"
    assert set(jan_profile.categorical) == {"PULocationID", "DOLocationID"}
    for shares in jan_profile.categorical.values():
        assert sum(shares.values()) == pytest.approx(1.0)
        assert all(label.isdigit() or label == "missing" for label in shares)
    assert len(jan_profile.categorical["PULocationID"]) == 250
    assert len(jan_profile.categorical["DOLocationID"]) == 256
    assert set(jan_profile.numeric) == {"trip_distance", "prediction"}
    for bins in jan_profile.numeric.values():
        edges, shares = bins["edges"], bins["shares"]
        assert edges[0] == -math.inf
        assert edges[-1] == math.inf
        assert len(edges) == 11  # deciles: no duplicate edge on these data
        assert len(shares) == 10
        assert shares == pytest.approx([0.1] * 10, abs=0.005)
    assert jan_profile.numeric["trip_distance"]["edges"][1:5] == [0.77, 1.16, 1.53, 2.0]
    assert len(jan_profile.pu_do_pairs) == 13_220
    assert isinstance(jan_profile.pu_do_pairs, frozenset)
    assert "43_151" in jan_profile.pu_do_pairs


def test_train_model_builds_the_same_profile(
    course_result: TrainingResult, jan_profile: ReferenceProfile
) -> None:
    assert course_result.profile is not None
    assert course_result.profile.to_dict() == jan_profile.to_dict()
    assert "profile" in course_result.timings


def test_missing_zones_and_duplicate_quantiles(small_profile: ReferenceProfile) -> None:
    assert small_profile.categorical["PULocationID"] == {"1": 0.5, "2": 0.25, "missing": 0.25}
    assert small_profile.categorical["DOLocationID"] == {"3": 1.0}
    assert small_profile.pu_do_pairs == frozenset({"1_3", "2_3", "missing_3"})
    # Four values give nine deciles, collapsed to the distinct ones; bins are (a, b].
    bins = small_profile.numeric["trip_distance"]
    assert len(bins["edges"]) == len(set(bins["edges"]))
    assert sum(bins["shares"]) == pytest.approx(1.0)


def test_constant_values_collapse_to_one_inner_edge() -> None:
    rides = pd.DataFrame({"PULocationID": [1, 2], "DOLocationID": [3, 4], "trip_distance": 2.0})
    profile = build_profile(rides, [9.0, 9.0], source="constant")
    assert profile.numeric["prediction"] == {"edges": [-math.inf, 9.0, math.inf], "shares": [1, 0]}


# --- drift on the real months -----------------------------------------------------------------


def test_training_month_against_itself_shows_no_drift(
    jan_profile: ReferenceProfile, months: dict[str, tuple[pd.DataFrame, np.ndarray]]
) -> None:
    report = drift_report(jan_profile, *months["2021-01"])
    assert report.rows == 73_908
    assert list(report.features) == list(DRIFT_FEATURES)
    assert all(d.psi < 1e-6 for d in report.features.values())
    assert all(d.level == "none" for d in report.features.values())
    assert report.unseen_pair_share == 0.0
    assert report.drifted is False


@pytest.mark.parametrize(
    ("month", "rows", "expected", "unseen"),
    [
        ("2021-02", 61_921, (0.014027, 0.010887, 0.001863, 0.046837), 0.084898),
        ("2021-03", 80_372, (0.018012, 0.014955, 0.002156, 0.056327), 0.091923),
    ],
)
def test_next_months_are_ordinary_variation(
    jan_profile: ReferenceProfile,
    months: dict[str, tuple[pd.DataFrame, np.ndarray]],
    month: str,
    rows: int,
    expected: tuple[float, ...],
    unseen: float,
) -> None:
    report = drift_report(jan_profile, *months[month])
    assert report.rows == rows
    assert [d.psi for d in report.features.values()] == pytest.approx(expected, abs=TOL)
    assert all(d.level == "none" for d in report.features.values())
    # About 8.5 % of any month's rides take a pair missing from one training month.
    assert report.unseen_pair_share == pytest.approx(unseen, abs=TOL)
    assert report.unseen_pair_share < UNSEEN_PAIR_THRESHOLD
    assert report.drifted is False


def test_two_years_later_drifts(
    jan_profile: ReferenceProfile, months: dict[str, tuple[pd.DataFrame, np.ndarray]]
) -> None:
    report = drift_report(jan_profile, *months["2023-03"])
    assert report.rows == 69_392
    psis = {name: d.psi for name, d in report.features.items()}
    assert psis == pytest.approx(
        {
            "PULocationID": 1.068314,
            "DOLocationID": 0.665801,
            "trip_distance": 0.225026,
            "prediction": 0.267797,
        },
        abs=TOL,
    )
    levels = {name: d.level for name, d in report.features.items()}
    assert levels == {
        "PULocationID": "significant",
        "DOLocationID": "significant",
        "trip_distance": "moderate",
        "prediction": "significant",
    }
    # Fewer unseen pairs than in 2021-02: the PSI, not the unseen share, flags this month.
    assert report.unseen_pair_share == pytest.approx(0.050395, abs=TOL)
    assert report.unseen_pair_share < report.unseen_pair_threshold == UNSEEN_PAIR_THRESHOLD
    assert report.drifted is True


def test_unseen_pair_threshold_alone_can_flag_a_window(
    jan_profile: ReferenceProfile, months: dict[str, tuple[pd.DataFrame, np.ndarray]]
) -> None:
    report = drift_report(jan_profile, *months["2021-02"], unseen_pair_threshold=0.05)
    assert all(d.level == "none" for d in report.features.values())
    assert report.unseen_pair_threshold == 0.05
    assert report.drifted is True


def test_report_to_dict_is_json(
    jan_profile: ReferenceProfile, months: dict[str, tuple[pd.DataFrame, np.ndarray]]
) -> None:
    report = drift_report(jan_profile, *months["2023-03"])
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["rows"] == 69_392
    assert data["drifted"] is True
    assert data["features"]["PULocationID"]["level"] == "significant"
    assert set(data) == {
        "rows",
        "features",
        "unseen_pair_share",
        "unseen_pair_threshold",
        "drifted",
    }
    assert "drift over 69,392 rides" in str(report)


def test_small_window_is_logged_as_noisy(
    jan_profile: ReferenceProfile,
    months: dict[str, tuple[pd.DataFrame, np.ndarray]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    rides, predicted = months["2021-01"]
    with caplog.at_level(logging.INFO, logger="duration_core.profile"):
        report = drift_report(jan_profile, rides.head(100), predicted[:100])
    assert report.rows == 100
    assert "sampling noise" in caplog.text


# --- the PSI itself ---------------------------------------------------------------------------


def test_psi_matches_the_formula_on_a_small_example() -> None:
    # shares (0.5, 0.3, 0.2) against counts (40, 40, 20), i.e. shares (0.4, 0.4, 0.2)
    by_hand = (0.4 - 0.5) * math.log(0.4 / 0.5) + (0.4 - 0.3) * math.log(0.4 / 0.3)
    assert by_hand == pytest.approx(0.0510826, abs=1e-7)
    assert psi([0.5, 0.3, 0.2], [40, 40, 20]) == pytest.approx(by_hand, rel=1e-12)
    assert psi([50, 30, 20], [0.4, 0.4, 0.2]) == pytest.approx(by_hand, rel=1e-12)
    assert psi([40, 40, 20], [0.5, 0.3, 0.2]) == pytest.approx(by_hand, rel=1e-12)  # symmetric
    assert psi([1, 2, 3], [2, 4, 6]) == 0.0


def test_psi_floors_empty_bins_at_epsilon() -> None:
    eps = PSI_EPSILON
    assert eps == 1e-4
    by_hand = (0.5 - 1) * math.log(0.5 / 1) + (0.5 - eps) * math.log(0.5 / eps)
    assert psi([1, 0], [1, 1]) == pytest.approx(by_hand, rel=1e-12)
    assert psi([1, 0], [1, 1], epsilon=0.01) == pytest.approx(
        -0.5 * math.log(0.5) + 0.49 * math.log(50), rel=1e-12
    )


@pytest.mark.parametrize(
    ("expected", "actual", "message"),
    [
        ([0.5, 0.5], [1.0], "2 bins but actual has 1"),
        ([], [], "non-empty"),
        ([0.5, -0.5], [0.5, 0.5], "non-negative"),
        ([0.5, math.nan], [0.5, 0.5], "finite"),
        ([0, 0], [1, 1], "sums to 0"),
    ],
)
def test_psi_refuses_bad_vectors(expected: list, actual: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        psi(expected, actual)


def test_psi_levels_follow_the_rule_of_thumb() -> None:
    assert PSI_THRESHOLDS == (0.1, 0.25)
    assert [psi_level(v) for v in (0.0, 0.0999, 0.1, 0.2499, 0.25, 3.0)] == [
        "none",
        "none",
        "moderate",
        "moderate",
        "significant",
        "significant",
    ]


def test_window_zones_unknown_to_the_profile_share_one_bin(
    small_profile: ReferenceProfile,
) -> None:
    window = pd.DataFrame(
        {
            "PULocationID": [1, 7, 8, 9],  # 7, 8, 9 are not in the profile; 2, missing absent
            "DOLocationID": [3, 3, 3, 3],
            "trip_distance": [1.0, 2.0, 3.0, 4.0],
        }
    )
    report = drift_report(small_profile, window, [5.0, 6.0, 7.0, 8.0])
    eps = PSI_EPSILON
    # bins "1", "2", "missing", unseen: reference (0.5, 0.25, 0.25, eps), window (0.25, 0, 0, 0.75)
    by_hand = (
        (0.25 - 0.5) * math.log(0.25 / 0.5)
        + 2 * (eps - 0.25) * math.log(eps / 0.25)
        + (0.75 - eps) * math.log(0.75 / eps)
    )
    assert report.features["PULocationID"].psi == pytest.approx(by_hand, rel=1e-9)
    assert report.features["DOLocationID"].psi == 0.0
    assert report.unseen_pair_share == 0.75  # 7_3, 8_3, 9_3
    assert report.drifted is True


# --- bad input --------------------------------------------------------------------------------


def test_length_mismatch_names_both_lengths(months: dict) -> None:
    rides, predicted = months["2021-01"]
    with pytest.raises(ValueError, match="73,908 rides in the training set but 10 predictions"):
        build_profile(rides, predicted[:10], source="x")
    small = rides.head(10)
    with pytest.raises(ValueError, match="10 rides in the window but 9 predictions"):
        drift_report(build_profile(small, predicted[:10], source="x"), small, predicted[:9])


def test_empty_window_is_refused(small_profile: ReferenceProfile, months: dict) -> None:
    rides, _ = months["2021-01"]
    with pytest.raises(ValueError, match="no rides in the window"):
        drift_report(small_profile, rides.head(0), [])
    with pytest.raises(ValueError, match="no rides in the training set"):
        build_profile(rides.head(0), [], source="x")


def test_bad_predictions_and_rides_are_refused(small_profile: ReferenceProfile) -> None:
    rides = pd.DataFrame({"PULocationID": [1, 2], "DOLocationID": [3, 3], "trip_distance": 1.0})
    with pytest.raises(ValueError, match="finite minutes; 1 are not"):
        drift_report(small_profile, rides, [1.0, math.nan])
    with pytest.raises(ValueError, match=r"shape \(n,\)"):
        drift_report(small_profile, rides, [[1.0], [2.0]])
    with pytest.raises(InvalidRidesError, match="trip_distance"):
        drift_report(small_profile, rides.drop(columns="trip_distance"), [1.0, 2.0])
    with pytest.raises(ValueError, match="unseen_pair_threshold"):
        drift_report(small_profile, rides, [1.0, 2.0], unseen_pair_threshold=1.5)
    with pytest.raises(TypeError, match="ReferenceProfile"):
        drift_report(small_profile.to_dict(), rides, [1.0, 2.0])  # type: ignore[arg-type]


# --- storage ----------------------------------------------------------------------------------


def test_round_trips(jan_profile: ReferenceProfile, tmp_path: Path) -> None:
    data = jan_profile.to_dict()
    text = json.dumps(data, allow_nan=False)  # strict JSON: no bare Infinity
    assert data["pu_do_pairs"] == sorted(jan_profile.pu_do_pairs)
    assert data["numeric"]["prediction"]["edges"][0] == "-Infinity"
    assert ReferenceProfile.from_dict(data) == jan_profile
    assert ReferenceProfile.from_dict(json.loads(text)) == jan_profile
    path = tmp_path / "profiles" / "jan.json"
    jan_profile.save(path)
    assert ReferenceProfile.load(path) == jan_profile
    assert not list(path.parent.glob(".*"))  # no temporary file left behind
    tupled = ReferenceProfile(
        rows=jan_profile.rows,
        source=jan_profile.source,
        categorical=jan_profile.categorical,
        numeric=jan_profile.numeric,
        pu_do_pairs=tuple(sorted(jan_profile.pu_do_pairs)),
    )
    assert tupled == jan_profile


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        (lambda d: d.pop("rows"), "'rows'"),
        (lambda d: d.pop("source"), "'source'"),
        (lambda d: d.pop("categorical"), "'categorical'"),
        (lambda d: d.pop("numeric"), "'numeric'"),
        (lambda d: d.pop("pu_do_pairs"), "'pu_do_pairs'"),
        (lambda d: d["categorical"].pop("DOLocationID"), "categorical['DOLocationID']"),
        (lambda d: d["numeric"].pop("prediction"), "numeric['prediction']"),
        (lambda d: d["numeric"]["trip_distance"].pop("shares"), "['shares']"),
        (lambda d: d["numeric"]["trip_distance"]["shares"].pop(), "['shares']"),
        (lambda d: d["numeric"]["prediction"]["edges"].reverse(), "['edges']"),
        (lambda d: d["numeric"]["prediction"]["edges"].__setitem__(0, "-inf"), "['edges']"),
        (lambda d: d["categorical"]["PULocationID"].__setitem__("1", -0.5), "['PULocationID']"),
        (lambda d: d.__setitem__("rows", 0), "'rows'"),
        (lambda d: d.__setitem__("pu_do_pairs", "43_151"), "'pu_do_pairs'"),
        (lambda d: d.__setitem__("format", "other/9"), "'format'"),
    ],
)
def test_bad_dict_names_the_key(small_profile: ReferenceProfile, mutate, key: str) -> None:
    data = json.loads(small_profile.to_json())
    mutate(data)
    with pytest.raises(ProfileError, match=f"key.*{key}".replace("[", r"\[").replace("]", r"\]")):
        ReferenceProfile.from_dict(data)


def test_unreadable_profile_files(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="not found"):
        ReferenceProfile.load(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ProfileError, match=r"bad\.json: not a JSON reference profile"):
        ReferenceProfile.load(tmp_path / "bad.json")
    with pytest.raises(ProfileError, match="is a folder"):
        ReferenceProfile.from_dict(json.loads(_tiny_profile_json())).save(tmp_path)
    with pytest.raises(ProfileError, match="a reference profile is a dict"):
        ReferenceProfile.from_dict([1, 2])  # type: ignore[arg-type]


def _tiny_profile_json() -> str:
    rides = pd.DataFrame({"PULocationID": [1], "DOLocationID": [2], "trip_distance": [1.0]})
    return build_profile(rides, [3.0], source="tiny").to_json()


# --- in the model artifact --------------------------------------------------------------------


def test_artifact_keeps_the_profile(course_result: TrainingResult, tmp_path: Path) -> None:
    with_profile = tmp_path / "with.zip"
    without = tmp_path / "without.zip"
    save_model(
        course_result.pipeline,
        with_profile,
        course_result.metadata(),
        profile=course_result.profile,
    )
    save_model(course_result.pipeline, without, course_result.metadata())

    loaded = load_model(with_profile)
    assert loaded.profile == course_result.profile
    assert read_profile(with_profile) == course_result.profile
    assert len(loaded.metadata["profile_sha256"]) == 64
    with zipfile.ZipFile(with_profile) as zf:
        assert sorted(zf.namelist()) == ["metadata.json", "pipeline.pkl", "profile.json"]

    old = load_model(without)
    assert old.profile is None
    assert read_profile(without) is None
    assert "profile_sha256" not in old.metadata


def test_artifact_profile_is_checked(course_result: TrainingResult, tmp_path: Path) -> None:
    path = tmp_path / "m.zip"
    save_model(
        course_result.pipeline, path, course_result.metadata(), profile=course_result.profile
    )
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}

    altered = dict(members, **{"profile.json": _tiny_profile_json().encode()})
    _write_zip(path, altered)
    with pytest.raises(ChecksumMismatchError, match="profile's sha256"):
        load_model(path)

    meta = json.loads(members["metadata.json"])
    del meta["profile_sha256"]
    _write_zip(path, dict(members, **{"metadata.json": json.dumps(meta).encode()}))
    with pytest.raises(ChecksumMismatchError, match="does not record"):
        load_model(path)


def _write_zip(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def test_duration_train_saves_the_profile(
    course_result: TrainingResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "linear.zip"
    argv = ["--train", "green:2021-01", "--val", "green:2021-02", "--out", str(out), "-q"]
    assert train_cli(argv) == 0
    capsys.readouterr()
    profile = load_model(out).profile
    assert profile is not None
    assert profile.to_dict() == course_result.profile.to_dict()  # type: ignore[union-attr]


def test_public_names() -> None:
    assert FEATURES == ("PULocationID", "DOLocationID", "trip_distance")
    assert DRIFT_FEATURES[:3] == FEATURES
    assert DRIFT_FEATURES[3] == "prediction"
    assert set(DriftReport.__dataclass_fields__) == {
        "rows",
        "features",
        "unseen_pair_share",
        "unseen_pair_threshold",
        "drifted",
    }
