"""An A/B test and drift monitoring on replayed real months, through the router.

``duration-deploy replay`` sends the rides of a real TLC month through the router and posts
their actual durations; the A/B report and the drift report are then read from the router, as a
workshop would. The router runs in-process (TestClient) with the registry of conftest.py: v1 is
the linear champion, v2 the gbm challenger, both trained on green 2021-01.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from duration_deployment.client import RouterClient
from duration_deployment.main import create_app
from duration_deployment.replay import ReplayError, load_replay, replay_month
from ladder_testing.browser import load_page
from ladder_testing.router import AUTH, router_settings


@pytest.fixture
def router(tmp_path: Path, registry_uri: str) -> Iterator[tuple[TestClient, RouterClient]]:
    app = create_app(router_settings(tmp_path, registry_uri))
    with TestClient(app) as http:
        http.headers.update(AUTH)
        client = RouterClient("http://testserver", None, http=http)  # the CLI's, in process
        yield http, client


def test_ride_ids_are_a_stable_hash_of_the_row() -> None:
    rides, counts = load_replay("green:2021-03", limit=1_000)
    assert counts["rows_read"] == 83_827
    assert counts["rides"] == 1_000
    assert rides["ride_id"].is_unique
    again, _ = load_replay("green:2021-03", limit=1_000)
    assert again["ride_id"].tolist() == rides["ride_id"].tolist()
    everything, _ = load_replay("green:2021-03")
    assert len(everything) == 80_372 - 23  # the filter's rides, less 23 the API refuses
    assert set(rides["ride_id"]) <= set(everything["ride_id"])  # ids do not depend on limit
    assert rides["pickup_datetime"].is_monotonic_increasing  # sent in pickup order
    assert everything["ride_id"].is_unique
    assert rides["ride_id"].str.fullmatch(r"[0-9a-f]{16}").all()


def test_a_month_in_parts_sends_every_ride_once_in_pickup_order() -> None:
    everything, _ = load_replay("green:2021-03")
    parts = [load_replay("green:2021-03", part=(k, 12))[0] for k in range(1, 13)]
    assert [len(p) for p in parts] == [6_696] * 11 + [80_349 - 11 * 6_696]
    joined = [ride for p in parts for ride in p["ride_id"]]
    assert joined == everything["ride_id"].tolist()
    assert parts[0]["pickup_datetime"].max() <= parts[1]["pickup_datetime"].min()
    with pytest.raises(ReplayError, match="part 13/12"):
        load_replay("green:2021-03", part=(13, 12))


def test_gbm_challenger_beats_the_linear_champion_on_a_replayed_month(
    router: tuple[TestClient, RouterClient],
) -> None:
    http, client = router
    table = http.get("/deployments").json()["table"]["variants"]
    assert [(v["variant"], v["model"], v["weight"]) for v in table] == [
        ("champion", "linear", 0.9),
        ("challenger", "gbm", 0.1),
    ]
    result = replay_month(client, "green:2021-03", rate=1e6, limit=8_000, batch=1_000)
    assert result["rides"] == 8_000
    assert result["feedback_matched"] == 8_000
    assert result["feedback_unknown"] == 0
    answered = result["answered"]
    assert answered["champion v1"] + answered["challenger v2"] == 8_000
    assert abs(answered["challenger v2"] - 800) <= 4 * (8_000 * 0.1 * 0.9) ** 0.5

    report = http.get("/ab/report").json()
    stats = {v["variant"]: v for v in report["variants"]}
    assert stats["challenger"]["labelled"] == answered["challenger v2"]
    # The offline figures of level 2 (val RMSE 7.76 vs 5.99 on 2021-02) carry over to 2021-03.
    # Measured: 8,000 rides sampled from 2021-03 (seed 0), split by the buckets of their ids.
    assert (stats["champion"]["labelled"], stats["challenger"]["labelled"]) == (7_206, 794)
    assert stats["champion"]["rmse"] == pytest.approx(7.8220, abs=1e-3)
    assert stats["challenger"]["rmse"] == pytest.approx(5.7033, abs=1e-3)
    comparison = report["comparison"]
    # The router's default: the always-valid mSPRT (measured: confidence sequence
    # [-43.60, -13.18] min^2, p = 1.1e-05, decided at 240 labelled challenger rides; Welch's
    # fixed-horizon interval on the same rides is [-36.20, -21.11]).
    assert (comparison["method"], comparison["design"]) == ("mSPRT", "always valid")
    assert comparison["difference"] == pytest.approx(-28.656, abs=0.01)
    assert comparison["ci_low"] == pytest.approx(-43.60, abs=1.0)
    assert comparison["ci_high"] == pytest.approx(-13.18, abs=1.0)
    assert comparison["p_value"] < 1e-4
    assert 150 <= comparison["decided_at"] <= 350
    assert comparison["verdict"] == "promote"

    # Re-sending known rides (forced to a variant, or not) cannot weigh the test afterwards.
    rides, _ = load_replay("green:2021-03", limit=8_000)
    poison = [
        {"PULocationID": 1, "DOLocationID": 1, "trip_distance": 500.0, "ride_id": ride_id}
        for ride_id in rides["ride_id"].head(1_000)
    ]
    for headers in ({"X-Model-Variant": "champion"}, {}):
        answer = http.post("/predict/batch", json={"rides": poison}, headers=headers)
        assert answer.status_code == 200
    again = http.get("/ab/report").json()
    assert again["comparison"]["difference"] == comparison["difference"]
    assert again["comparison"]["verdict"] == "promote"
    assert any(
        "left out: 1,000 predictions forced to a variant (X-Model-Variant" in note
        and "1,000 repeated predictions" in note
        for note in again["notes"]
    )

    page = load_page(http.get("/ab/report.html").text)
    assert page.texts["verdict"] == "Verdict: promote"
    assert len(page.plots) == page.images_loaded == 3


def test_two_copies_of_the_same_model_are_inconclusive(
    router: tuple[TestClient, RouterClient],
) -> None:
    http, client = router
    answer = http.post(
        "/deployments", json={"model_uri": "1", "variant": "challenger", "weight": 0.5}
    )
    assert answer.status_code == 201
    replay_month(client, "green:2021-03", rate=1e6, limit=4_000, batch=1_000)
    comparison = http.get("/ab/report").json()["comparison"]
    assert comparison["verdict"] == "inconclusive"
    assert comparison["p_value"] > 0.05
    assert comparison["more_labelled_needed"] > 0


def test_drift_none_on_the_training_month_and_clear_on_2023(
    router: tuple[TestClient, RouterClient],
) -> None:
    http, client = router
    http.delete("/deployments/challenger")  # the champion takes every ride
    replay_month(client, "green:2021-01", rate=1e6, limit=6_000, batch=1_000, feedback=False)
    champion = http.get("/monitoring/report").json()["variants"][0]
    assert champion["variant"] == "champion"
    assert champion["window_rows"] == 5_000
    assert champion["status"] == "no drift"
    assert all(f["psi"] < 0.1 for f in champion["features"].values())
    assert champion["unseen_pair_share"] < 0.05  # the training month: every pair is known

    replay_month(client, "green:2023-03", rate=1e6, limit=6_000, batch=1_000, feedback=False)
    champion = http.get("/monitoring/report").json()["variants"][0]
    assert champion["status"] == "drift"
    assert champion["features"]["PULocationID"]["psi"] > 0.25
    assert champion["features"]["PULocationID"]["level"] == "significant"
    metrics = http.get("/metrics").text
    assert 'duration_router_drift_psi{feature="PULocationID",variant="champion"}' in metrics

    page = load_page(http.get("/monitoring/report.html").text)
    assert "drift" in page.texts["drift-status"].lower()
    assert page.images_loaded == len(page.images) >= 1
