"""The A/B analysis on real predictions, fixed-horizon design (the always-valid default is in
``test_sequential.py``): models trained on green 2021-01 predict 2021-03 rides.

A linear baseline and the gbm candidate of ``duration_core`` are fitted on the bundled January
2021 green-taxi month and predict a seeded sample of 4,000 March 2021 rides (their actual
durations are the feedback). A router split is simulated by a hash of each ride's row label:
a ride goes to the challenger when ``sha256(label) mod 100`` is below its share, as sticky
routing by ride id would. Latencies are real too: single-ride ``predict`` calls timed on this
machine, assigned to rows in turn.

The figures asserted for the gbm-vs-linear test were measured with scikit-learn 1.9 (gbm:
``HistGradientBoostingRegressor``, ``random_state=0``); they are checked to a tolerance that a
patch release of scikit-learn or pandas should not cross, and are also recomputed exactly from
the frame with numpy and scipy.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from duration_core import evaluate
from duration_deployment.analysis import (
    FIXED_HORIZON,
    INCONCLUSIVE,
    KEEP_CHAMPION,
    METRIC,
    PAIRED,
    PROMOTE,
    REQUIRED_COLUMNS,
    WELCH,
    ABReport,
    ab_report,
    absolute_errors,
)
from ladder_testing.ab import (
    SAMPLE_RIDES,
    RealPredictions,
    real_predictions,
    shadow_frame,
    split_frame,
)


def squared_errors(frame: pd.DataFrame, variant: str) -> np.ndarray:
    rows = frame[(frame["variant"] == variant) & frame["prediction"].notna()]
    rows = rows[rows["actual"].notna()]
    return ((rows["prediction"] - rows["actual"]) ** 2).to_numpy()


@pytest.fixture(scope="module")
def real() -> RealPredictions:
    return real_predictions()


@pytest.fixture(scope="module")
def gbm_vs_linear(real: RealPredictions) -> tuple[pd.DataFrame, ABReport]:
    frame = split_frame(real, "linear", "gbm", 10)
    return frame, ab_report(frame, design=FIXED_HORIZON)


def test_gbm_challenger_is_promoted_over_linear_champion(
    gbm_vs_linear: tuple[pd.DataFrame, ABReport], real: RealPredictions
) -> None:
    frame, report = gbm_vs_linear
    comparison = report.comparison
    assert comparison is not None
    assert (comparison.verdict, comparison.method, comparison.metric) == (PROMOTE, WELCH, METRIC)
    assert comparison.p_value is not None
    assert comparison.p_value < 0.05
    # Measured (scikit-learn 1.9.1): -16.61 min^2, 95% CI [-27.74, -5.47], p = 0.0035.
    assert comparison.difference == pytest.approx(-16.61, abs=1.0)
    assert comparison.ci_low == pytest.approx(-27.74, abs=1.5)
    assert comparison.ci_high == pytest.approx(-5.47, abs=1.5)
    assert comparison.p_value == pytest.approx(0.0035, abs=0.004)
    # Exactly the frame's figures, whatever the fitted models.
    champion_se, challenger_se = (
        squared_errors(frame, "champion"),
        squared_errors(frame, "challenger"),
    )
    assert comparison.difference == pytest.approx(
        challenger_se.mean() - champion_se.mean(), rel=1e-12
    )
    assert comparison.ci_low < comparison.difference < comparison.ci_high < 0
    assert "predicts better" in comparison.reason
    assert f"{comparison.difference:+.2f}" in comparison.reason

    champion, challenger = report.variants
    assert (champion.variant, challenger.variant) == ("champion", "challenger")
    assert (champion.model_version, challenger.model_version) == ("1", "2")
    assert champion.labelled + challenger.labelled == SAMPLE_RIDES
    assert challenger.labelled == int((real.bucket < 10).sum())  # ~10 % of the rides
    assert 300 < challenger.labelled < 500
    # The RMSE and MAE of each variant are duration_core's metrics on its rides.
    to_challenger = real.bucket < 10
    expected = evaluate(real.actual[to_challenger], real.predictions["gbm"][to_challenger])
    assert challenger.rmse == pytest.approx(expected.rmse, rel=1e-12)
    assert challenger.mae == pytest.approx(expected.mae, rel=1e-12)
    assert challenger.mean_squared_error == pytest.approx(expected.rmse**2, rel=1e-12)
    assert champion.rmse is not None
    assert challenger.rmse < champion.rmse
    assert champion.latency_p50_ms is not None
    assert champion.latency_p99_ms is not None
    assert 0 < champion.latency_p50_ms <= champion.latency_p99_ms
    assert (champion.error_rate, challenger.error_rate) == (0.0, 0.0)


def test_same_model_at_50_50_is_inconclusive(real: RealPredictions) -> None:
    frame = split_frame(real, "linear", "linear", 50)
    comparison = ab_report(frame, design=FIXED_HORIZON).comparison
    assert comparison is not None
    assert comparison.verdict == INCONCLUSIVE
    assert comparison.p_value is not None
    assert comparison.p_value > 0.05
    assert comparison.ci_low is not None
    assert comparison.ci_high is not None
    assert comparison.ci_low < 0 < comparison.ci_high
    # Detecting a 5 % change in MSE takes far more than the ~2,000 rides per variant here.
    assert comparison.required_labelled_challenger is not None
    assert comparison.required_labelled_challenger > 10_000
    assert comparison.more_labelled_needed is not None
    assert comparison.more_labelled_needed > 0
    assert "No significant difference" in comparison.reason


def test_linear_challenger_against_gbm_champion_keeps_the_champion(
    real: RealPredictions,
) -> None:
    comparison = ab_report(split_frame(real, "gbm", "linear", 10), design=FIXED_HORIZON).comparison
    assert comparison is not None
    assert comparison.verdict == KEEP_CHAMPION
    assert comparison.difference is not None
    assert comparison.difference > 0
    assert comparison.p_value is not None
    assert comparison.p_value < 0.05
    assert comparison.ci_low is not None
    assert comparison.ci_low > 0


def test_shadow_challenger_uses_a_paired_bootstrap(real: RealPredictions) -> None:
    frame = shadow_frame(real, "linear", "gbm")
    report = ab_report(frame, bootstrap_samples=2000, seed=0, design=FIXED_HORIZON)
    comparison = report.comparison
    assert comparison is not None
    assert (comparison.method, comparison.verdict) == (PAIRED, PROMOTE)
    assert [(v.variant, v.shadow) for v in report.variants] == [
        ("champion", False),
        ("challenger", True),
    ]
    assert report.variants[1].label == "challenger (shadow)"
    differences = (real.predictions["gbm"] - real.actual) ** 2 - (
        real.predictions["linear"] - real.actual
    ) ** 2
    assert comparison.difference == pytest.approx(differences.mean(), rel=1e-12)
    # No resample of 4,000 paired rides comes near zero: the smallest p of 2,000 resamples.
    assert comparison.p_value == pytest.approx(1 / 2001)
    # The percentile interval agrees with scipy's bootstrap (another random stream).
    scipy_ci = stats.bootstrap(
        (differences,), np.mean, n_resamples=2000, method="percentile", rng=1
    ).confidence_interval
    assert comparison.ci_low == pytest.approx(scipy_ci.low, abs=1.0)
    assert comparison.ci_high == pytest.approx(scipy_ci.high, abs=1.0)
    # Pairing removes the ride-to-ride variance: narrower than Welch on the same rides.
    welch = stats.ttest_ind(
        (real.predictions["gbm"] - real.actual) ** 2,
        (real.predictions["linear"] - real.actual) ** 2,
        equal_var=False,
    ).confidence_interval(0.95)
    assert comparison.ci_high - comparison.ci_low < 0.7 * (welch.high - welch.low)
    # Same seed, same interval.
    again = ab_report(frame, bootstrap_samples=2000, seed=0, design=FIXED_HORIZON).comparison
    assert again is not None
    assert (again.ci_low, again.ci_high) == (comparison.ci_low, comparison.ci_high)


def test_shadow_rows_pair_on_ride_id_only(real: RealPredictions) -> None:
    frame = shadow_frame(real, "linear", "gbm")
    shadow = frame["shadow"].to_numpy()
    frame.loc[shadow & (np.arange(len(frame)) % 2 == 0), "ride_id"] = None
    report = ab_report(frame, design=FIXED_HORIZON)
    assert report.comparison is not None
    assert report.comparison.method == PAIRED
    assert any("left out of the paired test" in note for note in report.notes)


def test_few_labelled_rides_are_inconclusive(
    gbm_vs_linear: tuple[pd.DataFrame, ABReport],
) -> None:
    frame = gbm_vs_linear[0].copy()
    is_challenger = (frame["variant"] == "challenger").to_numpy()
    keep = np.zeros(len(frame), dtype=bool)
    keep[np.flatnonzero(is_challenger)[:12]] = True
    keep[np.flatnonzero(~is_challenger)[:200]] = True
    frame.loc[~keep, "actual"] = np.nan  # feedback not arrived yet
    report = ab_report(frame, min_labelled=30)
    comparison = report.comparison
    assert comparison is not None
    assert comparison.verdict == INCONCLUSIVE
    assert comparison.more_labelled_needed is not None
    assert comparison.more_labelled_needed >= 30 - 12
    assert "30" in comparison.reason
    assert f"{comparison.more_labelled_needed:,} more" in comparison.reason
    champion, challenger = report.variants
    assert (champion.labelled, challenger.labelled) == (200, 12)
    assert champion.predictions + challenger.predictions == SAMPLE_RIDES


def test_unlabelled_and_failed_rows_count_in_predictions_not_in_errors(
    gbm_vs_linear: tuple[pd.DataFrame, ABReport],
) -> None:
    frame = gbm_vs_linear[0].copy()
    challenger = np.flatnonzero((frame["variant"] == "challenger").to_numpy())
    failed, unlabelled = challenger[:20], challenger[20:60]
    frame.loc[failed, ["prediction", "error"]] = [np.nan, True]
    frame.loc[unlabelled, "actual"] = np.nan
    stats_ = ab_report(frame).variant("challenger")
    assert stats_ is not None
    assert stats_.predictions == len(challenger)
    assert stats_.labelled == len(challenger) - 60
    assert stats_.error_rate == pytest.approx(20 / len(challenger))
    scored = frame.loc[challenger[60:]]
    assert stats_.rmse == pytest.approx(
        math.sqrt(((scored["prediction"] - scored["actual"]) ** 2).mean()), rel=1e-12
    )
    latency = frame.loc[challenger, "latency_ms"].to_numpy()
    assert stats_.latency_p50_ms == pytest.approx(np.percentile(latency, 50))
    assert stats_.latency_p99_ms == pytest.approx(np.percentile(latency, 99))
    assert absolute_errors(frame)[("challenger", False)].size == stats_.labelled


def test_welch_interval_and_p_value_are_scipys() -> None:
    # Squared errors 1, 4, 9, 16, 25 (champion) and 0, 1, 1, 4 (challenger).
    frame = pd.DataFrame(
        {
            "variant": ["champion"] * 5 + ["challenger"] * 4,
            "model_version": ["1"] * 5 + ["2"] * 4,
            "shadow": False,
            "prediction": [11.0, 12.0, 13.0, 14.0, 15.0, 20.0, 21.0, 19.0, 22.0],
            "actual": [10.0, 10.0, 10.0, 10.0, 10.0, 20.0, 20.0, 20.0, 20.0],
            "latency_ms": [1.0, 2.0, 3.0, 4.0, 5.0, 2.0, 2.0, 2.0, 2.0],
            "error": False,
            "ride_id": [f"r{i}" for i in range(9)],
        }
    )
    comparison = ab_report(frame, alpha=0.1, min_labelled=2, design=FIXED_HORIZON).comparison
    assert comparison is not None
    champion, challenger = np.array([1.0, 4, 9, 16, 25]), np.array([0.0, 1, 1, 4])
    result = stats.ttest_ind(challenger, champion, equal_var=False)
    interval = result.confidence_interval(confidence_level=0.9)
    assert comparison.difference == pytest.approx(1.5 - 11.0)
    assert comparison.p_value == pytest.approx(result.pvalue, rel=1e-12)
    assert (comparison.ci_low, comparison.ci_high) == pytest.approx((interval.low, interval.high))
    # By hand: Welch-Satterthwaite degrees of freedom and the t quantile.
    va, vb = champion.var(ddof=1) / 5, challenger.var(ddof=1) / 4
    df = (va + vb) ** 2 / (va**2 / 4 + vb**2 / 3)
    half = stats.t.ppf(0.95, df) * math.sqrt(va + vb)
    assert (comparison.ci_low, comparison.ci_high) == pytest.approx((-9.5 - half, -9.5 + half))
    assert comparison.p_value == pytest.approx(2 * stats.t.sf(9.5 / math.sqrt(va + vb), df))
    assert comparison.confidence == pytest.approx(0.9)


def test_required_sample_size_is_the_two_sample_formula_at_the_split(
    gbm_vs_linear: tuple[pd.DataFrame, ABReport],
) -> None:
    frame, report = gbm_vs_linear
    comparison = report.comparison
    assert comparison is not None
    champion_se, challenger_se = (
        squared_errors(frame, "champion"),
        squared_errors(frame, "challenger"),
    )
    z = 1.959963984540054 + 0.8416212335729143  # z_{0.975} + z_{0.80}
    delta = 0.05 * champion_se.mean()
    ratio = champion_se.size / challenger_se.size  # ~9 at this 90/10 split
    spread = champion_se.var(ddof=1) / ratio + challenger_se.var(ddof=1)
    expected = math.ceil(z**2 * spread / delta**2)
    assert comparison.required_labelled_challenger == expected
    assert comparison.required_labelled_champion == math.ceil(expected * ratio)
    # The even-split formula asks more of the challenger and far less in total.
    even = z**2 * (champion_se.var(ddof=1) + challenger_se.var(ddof=1)) / delta**2
    assert expected < even
    assert expected * (1 + ratio) > 2 * even
    assert comparison.verdict == PROMOTE
    assert comparison.more_labelled_needed == 0  # decided: no more rides are needed
    assert comparison.min_detectable_effect == 0.05
    # A larger effect needs fewer rides, in proportion to 1 / delta^2.
    wider = ab_report(frame, min_detectable_effect=0.5, design=FIXED_HORIZON).comparison
    assert wider is not None
    assert wider.required_labelled_challenger == pytest.approx(expected / 100, abs=1)


@pytest.mark.parametrize("column", REQUIRED_COLUMNS)
def test_missing_column_is_named(column: str, gbm_vs_linear: tuple[pd.DataFrame, ABReport]) -> None:
    with pytest.raises(ValueError, match=repr(column)):
        ab_report(gbm_vs_linear[0].drop(columns=column))


def test_empty_frame_gives_an_empty_report() -> None:
    for empty in (pd.DataFrame(), pd.DataFrame(columns=list(REQUIRED_COLUMNS))):
        report = ab_report(empty)
        assert report.variants == []
        assert report.comparison is None
        assert report.notes == ["no predictions logged yet"]
        assert json.loads(json.dumps(report.to_dict(), allow_nan=False))["variants"] == []


def test_missing_challenger_gives_no_comparison(
    gbm_vs_linear: tuple[pd.DataFrame, ABReport],
) -> None:
    frame = gbm_vs_linear[0]
    report = ab_report(frame[frame["variant"] == "champion"])
    assert report.comparison is None
    assert [v.variant for v in report.variants] == ["champion"]
    assert any("challenger" in note for note in report.notes)
    report = ab_report(frame, champion="blue", challenger="green")
    assert report.comparison is None
    assert any("champion 'blue'" in note for note in report.notes)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("alpha", 0.0),
        ("alpha", 1.0),
        ("power", 1.5),
        ("min_detectable_effect", 0.0),
        ("min_labelled", 1),
        ("bootstrap_samples", 10),
        ("mixture_scale", 0.0),
        ("design", "bayesian"),
    ],
)
def test_bad_parameters_are_refused(option: str, value: float | str) -> None:
    with pytest.raises(ValueError, match=option):
        ab_report(pd.DataFrame(), **{option: value})


def test_to_dict_is_strict_json(gbm_vs_linear: tuple[pd.DataFrame, ABReport]) -> None:
    frame, report = gbm_vs_linear
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["comparison"]["verdict"] == PROMOTE
    assert data["variants"][0]["variant"] == "champion"
    assert data["alpha"] == 0.05
    # A report full of unknowns (no labels, no latency) is strict JSON too: None, not NaN.
    blank = frame.assign(actual=np.nan, latency_ms=np.nan)
    data = json.loads(json.dumps(ab_report(blank).to_dict(), allow_nan=False))
    assert data["variants"][0]["rmse"] is None
    assert data["variants"][0]["latency_p99_ms"] is None
    assert data["comparison"]["difference"] is None
    assert data["comparison"]["verdict"] == INCONCLUSIVE
