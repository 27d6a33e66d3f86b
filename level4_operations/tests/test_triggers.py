"""The triggers on real rides: the course's linear model trained on green 2021-01 is the
champion; 2021-02/03 in pickup order are quiet, 2023-03 drifts; live RMSE from fed-back
durations; the schedule and a new published month."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import log_frame, month
from duration_operations.policy import (
    DriftTrigger,
    NewMonthTrigger,
    PerformanceTrigger,
    ScheduleTrigger,
)
from duration_operations.triggers import (
    champion_rows,
    drift_trigger,
    new_month_trigger,
    performance_trigger,
    schedule_trigger,
)


@pytest.mark.parametrize("spec", ["green:2021-02", "green:2021-03"])
def test_quiet_months_do_not_fire_drift_in_any_pair_of_consecutive_windows(champion, spec):
    pipeline, facts = champion
    rides = month(spec)
    policy = DriftTrigger()
    frame = log_frame(rides, pipeline)
    largest = 0.0
    # every pair of consecutive 2,500-ride windows of the month, as the loop would see them
    for end in range(5_000, len(frame) + 1, 2_500):
        result = drift_trigger(frame.iloc[:end], facts, policy)
        assert not result.fired, result.reason
        largest = max(largest, *(max(w["psi"].values()) for w in result.figures["windows"]))
    assert 0.08 < largest < 0.25  # measured: 0.20 (2021-02), 0.19 (2021-03)


def test_2023_fires_drift_with_zone_psi_far_above_the_threshold(champion):
    pipeline, facts = champion
    result = drift_trigger(
        log_frame(month("green:2023-03").iloc[:5_000], pipeline), facts, DriftTrigger()
    )
    assert result.fired, result.reason
    windows = result.figures["windows"]
    assert len(windows) == 2
    assert all("PULocationID" in w["over"] for w in windows)
    assert all(w["psi"]["PULocationID"] > 1.0 for w in windows)  # measured 1.06-1.35
    assert windows[0]["last_id"] + 1 == windows[1]["first_id"]  # disjoint, consecutive
    assert "2 of 2 windows of 2,500 rides drifted" in result.reason


def test_one_drifted_window_of_two_does_not_fire(champion):
    pipeline, facts = champion
    quiet = log_frame(month("green:2021-03").iloc[:2_500], pipeline)
    drifted = log_frame(month("green:2023-03").iloc[:2_500], pipeline, start_id=2_501)
    both = pd.concat([quiet, drifted], ignore_index=True)
    result = drift_trigger(both, facts, DriftTrigger())
    assert not result.fired
    assert result.reason.startswith("1 of 2 windows")
    assert drift_trigger(both, facts, DriftTrigger(windows=1)).fired  # k = 1: the latest only


def test_too_few_rides_and_other_versions_rows_do_not_count(champion):
    pipeline, facts = champion
    frame = log_frame(month("green:2023-03").iloc[:6_000], pipeline)
    frame.loc[:1_999, "model_version"] = "7"  # answered by another champion version
    rows = champion_rows(frame, "1")
    assert len(rows) == 4_000
    result = drift_trigger(rows, facts, DriftTrigger())
    assert not result.fired
    assert result.reason == "4,000 of the 5,000 champion rides 2 windows need"


def test_live_rmse_within_margin_on_2021_03_and_fires_on_wrong_durations(champion):
    pipeline, facts = champion
    frame = log_frame(month("green:2021-03").iloc[:2_000], pipeline)
    quiet = performance_trigger(frame, facts, PerformanceTrigger())
    assert not quiet.fired
    assert quiet.figures["live_rmse"] == pytest.approx(7.4, abs=0.6)
    assert quiet.figures["bar"] == pytest.approx(facts.val_rmse * 1.15)
    shuffled = frame.copy()
    shuffled["actual"] = np.random.default_rng(0).permutation(shuffled["actual"].to_numpy())
    fired = performance_trigger(shuffled, facts, PerformanceTrigger())
    assert fired.fired
    assert fired.figures["live_rmse"] > 10
    assert "above v1's val RMSE" in fired.reason


def test_schedule_and_new_month(champion):
    _, facts = champion
    off = schedule_trigger(0.0, 1e9, ScheduleTrigger())
    assert not off.fired
    assert "off" in off.reason
    policy = ScheduleTrigger(enabled=True, every_hours=24)
    assert schedule_trigger(1_000.0, 1_000.0 + 25 * 3600, policy).fired
    assert not schedule_trigger(1_000.0, 1_000.0 + 23 * 3600, policy).fired
    assert not schedule_trigger(None, 1e9, policy).fired
    # trained on 2021-01: 2021-02 is bundled, so it is published
    published = new_month_trigger(facts, NewMonthTrigger(enabled=True))
    assert published.fired
    assert published.figures == {"month": "green:2021-02"}
    later = facts.__class__(**{**facts.__dict__, "months": (("green", 2023, 3),)})
    assert not new_month_trigger(later, NewMonthTrigger(enabled=True)).fired  # 2023-04: not here
