"""The scheduled monitor: drift and A/B gauges kept current with no request to a report route,
a failing run counted and followed by the next, one report at a time with the routes.

Routers run in process (TestClient) on conftest.py's registry (champion v1 linear, challenger
v2 gbm at 10%), a short ``monitor_interval_seconds``; the rides are a sample of green 2021-02.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from duration_deployment import monitor_loop
from duration_deployment.api.routes import reports
from duration_deployment.metrics import RouterMetrics
from duration_deployment.replay import load_replay
from ladder_testing.router import AUTH, metric_value, router_settings, running

FEATURES = ("PULocationID", "DOLocationID", "trip_distance", "prediction")


@pytest.fixture(scope="module")
def rides() -> pd.DataFrame:
    """1,500 rides of green 2021-02 with ride ids and actual durations (minutes)."""
    sample, _ = load_replay("green:2021-02", limit=1_500)
    return sample.reset_index(drop=True)


def send(client: TestClient, rides: pd.DataFrame) -> dict[str, str]:
    """Predict ``rides`` in one batch; ``{ride_id: variant}`` of the answers."""
    body = rides[["PULocationID", "DOLocationID", "trip_distance", "ride_id"]]
    answer = client.post("/predict/batch", json={"rides": body.to_dict("records")})
    assert answer.status_code == 200, answer.text
    return {r["ride_id"]: r["variant"] for r in answer.json()["predictions"]}


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        time.sleep(0.05)
    return value


def runs(client: TestClient, outcome: str) -> float:
    return metric_value(client, "duration_router_monitor_runs_total", outcome=outcome) or 0.0


def test_the_schedule_keeps_drift_and_ab_gauges_current_without_a_report_request(
    tmp_path: Path, registry_uri: str, rides: pd.DataFrame
) -> None:
    settings = router_settings(tmp_path, registry_uri, monitor_interval_seconds=0.2)
    with running(settings) as client:
        assert metric_value(client, "duration_router_monitor_interval_seconds") == 0.2
        variants = send(client, rides)
        champion_rides = [r for r, v in variants.items() if v == "champion"]
        assert len(champion_rides) >= 1_000  # enough for drift figures (MIN_DRIFT_ROWS)
        done = runs(client, "ok")
        # Two more runs: the second began after the rides were logged.
        wait_for(lambda: runs(client, "ok") >= done + 2, "two scheduled runs")
        psi = "duration_router_drift_psi"
        gauges = {f: metric_value(client, psi, variant="champion", feature=f) for f in FEATURES}
        detected = metric_value(client, "duration_router_drift_detected", variant="champion")
        unseen = metric_value(client, "duration_router_unseen_pair_share", variant="champion")
        text = client.get("/metrics").text
        assert 'route="/monitoring/report"' not in text  # nobody asked for a report
        assert 'route="/ab/report"' not in text
        # The challenger's 10% (about 150 rides) is too few for figures: no series at all.
        assert 'duration_router_drift_psi{feature="PULocationID",variant="challenger"}' not in text
        ab = "duration_router_ab_verdict"
        assert metric_value(client, ab, challenger="challenger", verdict="inconclusive") == 1.0
        assert metric_value(client, ab, challenger="challenger", verdict="promote") == 0.0
        labelled = "duration_router_ab_labelled_rides"
        assert metric_value(client, labelled, challenger="challenger", variant="champion") == 0.0
        assert metric_value(client, "duration_router_feedback_last_received_timestamp_seconds") == 0

        # The report route computes the same figures from the same window.
        report = client.get("/monitoring/report").json()
        entry = next(v for v in report["variants"] if v["variant"] == "champion")
        assert gauges == {f: entry["features"][f]["psi"] for f in FEATURES}
        assert detected == (1.0 if entry["drifted"] else 0.0)
        assert unseen == entry["unseen_pair_share"]

        # Feedback for 300 champion rides: counted at once, labelled at the next run.
        actuals = rides.set_index("ride_id").loc[champion_rides[:300], "duration"]
        body = {"actuals": [{"ride_id": r, "duration": float(d)} for r, d in actuals.items()]}
        before = time.time()
        answer = client.post("/feedback", json=body, headers=AUTH)
        assert answer.json()["matched"] == 300
        assert metric_value(client, "duration_router_feedback_rides_total") == 300.0
        at = metric_value(client, "duration_router_feedback_last_received_timestamp_seconds")
        assert at is not None
        assert before <= at <= time.time()
        done = runs(client, "ok")
        wait_for(lambda: runs(client, "ok") >= done + 2, "two scheduled runs")
        assert metric_value(client, labelled, challenger="challenger", variant="champion") == 300
        ab_report = client.get("/ab/report").json()
        assert ab_report["comparison"]["verdict"] == "inconclusive"  # no challenger feedback
        assert metric_value(client, labelled, challenger="challenger", variant="challenger") == 0
        assert runs(client, "error") == 0.0


def test_a_failing_run_is_logged_counted_and_the_next_one_runs(
    tmp_path: Path, registry_uri: str, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    real = monitor_loop.monitoring_report
    calls = {"n": 0}

    def failing_twice(*args: Any, **kwargs: Any) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] <= 2:
            raise RuntimeError("the log went away for a moment")
        return real(*args, **kwargs)

    monkeypatch.setattr(monitor_loop, "monitoring_report", failing_twice)
    settings = router_settings(tmp_path, registry_uri, monitor_interval_seconds=0.1)
    with running(settings) as client:
        wait_for(lambda: runs(client, "ok") >= 2, "two good runs after the failures")
        assert runs(client, "error") == 2.0
        assert client.get("/health").status_code == 200
        assert client.post("/predict", json={"PULocationID": 43, "DOLocationID": 151,
                                             "trip_distance": 1.5}).status_code == 200  # fmt: skip
        last = metric_value(client, "duration_router_monitor_last_success_timestamp_seconds")
        assert last is not None
        assert last > time.time() - 30
    failures = [r for r in caplog.records if "scheduled monitoring run failed" in r.getMessage()]
    assert len(failures) == 2
    assert failures[0].exc_info is not None  # with its traceback


def test_runs_and_report_routes_take_turns(
    tmp_path: Path, registry_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The schedule shares the routes' limiter: never two reports at once."""
    real = monitor_loop.monitoring_report
    lock = threading.Lock()
    state = {"active": 0, "most": 0, "monitor": 0, "route": 0}

    def slow(who: str) -> Callable[..., dict[str, Any]]:
        def report(*args: Any, **kwargs: Any) -> dict[str, Any]:
            with lock:
                state["active"] += 1
                state["most"] = max(state["most"], state["active"])
                state[who] += 1
            time.sleep(0.15)
            try:
                return real(*args, **kwargs)
            finally:
                with lock:
                    state["active"] -= 1

        return report

    monkeypatch.setattr(monitor_loop, "monitoring_report", slow("monitor"))
    monkeypatch.setattr(reports, "monitoring_report", slow("route"))
    settings = router_settings(tmp_path, registry_uri, monitor_interval_seconds=0.02)
    with running(settings) as client:
        for _ in range(5):
            assert client.get("/monitoring/report").status_code == 200
        wait_for(lambda: state["monitor"] >= 3, "three scheduled runs")
    assert state["route"] == 5
    assert state["most"] == 1


def test_interval_zero_runs_nothing(tmp_path: Path, registry_uri: str) -> None:
    settings = router_settings(tmp_path, registry_uri, monitor_interval_seconds=0)
    with running(settings) as client:
        assert client.app.state.monitor._task is None  # type: ignore[attr-defined]
        assert metric_value(client, "duration_router_monitor_interval_seconds") == 0.0
        time.sleep(0.3)
        assert runs(client, "ok") == runs(client, "error") == 0.0


def test_the_gauges_show_only_deployed_variants_with_figures() -> None:
    metrics = RouterMetrics()

    def entry(variant: str, psi: float) -> dict[str, Any]:
        features = {f: {"psi": psi} for f in FEATURES}
        return {"variant": variant, "features": features, "unseen_pair_share": 0.05,
                "drifted": psi >= 0.25}  # fmt: skip

    metrics.show_drift_report([entry("champion", 0.3), entry("challenger", 0.01)])
    text = metrics.render()[0].decode()
    assert 'duration_router_drift_detected{variant="champion"} 1.0' in text
    assert 'duration_router_drift_detected{variant="challenger"} 0.0' in text
    # The challenger gone, the champion's new version without enough rides yet.
    metrics.show_drift_report([{"variant": "champion", "status": "not enough data: 10"}])
    text = metrics.render()[0].decode()
    for name in ("drift_psi", "drift_detected", "unseen_pair_share"):
        assert f"duration_router_{name}{{" not in text, name
