"""Guardrails: the sliding windows on their own, the manager's use of them, and the real thing.

The app-level tests start a router on a private copy of the session's registry (v1 linear =
champion, v2 gbm = challenger) and wrap the challenger's loaded pipeline before the first
request so that it fails, or is slow, on rides from zone 74. Requests forced to the challenger
with ``X-Model-Variant`` all answer 200 (the champion answers a ride the challenger failed);
once the window holds ``guardrail_min_predictions`` predictions the guardrail trips and an
asyncio task takes the challenger out of the table and deletes its MLflow alias.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from duration_deployment.guardrails import Guardrails, Trip
from duration_deployment.manager import DeploymentManager
from duration_deployment.metrics import RouterMetrics
from duration_deployment.registry import DeployedModel
from duration_deployment.routing import CHALLENGER, CHAMPION, RoutingTable, Variant
from ladder_testing.router import (
    AUTH,
    RIDE,
    TrainedRegistry,
    metric_value,
    registry_aliases,
    router_settings,
    running,
    table,
)

SLOW_ZONE = 74
RIDE_74 = {"PULocationID": SLOW_ZONE, "DOLocationID": 75, "trip_distance": 0.8}
FORCE_CHALLENGER = {"X-Model-Variant": CHALLENGER}


def guardrails(**overrides: Any) -> Guardrails:
    values: dict[str, Any] = {
        "window": 50,
        "min_predictions": 20,
        "max_error_rate": 0.05,
        "max_p99_ms": 250.0,
    }
    values.update(overrides)
    return Guardrails(**values)


def feed(
    rails: Guardrails, errors: Sequence[bool], latencies: Sequence[float], variant: str = "c"
) -> list[tuple[int, Trip]]:
    """Observe each (error, latency) pair; the trips returned, with their 1-based position."""
    trips = []
    for i, (error, latency) in enumerate(zip(errors, latencies, strict=True), start=1):
        trip = rails.observe(variant, "2", error=error, latency_ms=latency)
        if trip is not None:
            trips.append((i, trip))
    return trips


# -- Guardrails on their own ---------------------------------------------------------------------


def test_error_rate_trips_once_min_predictions_are_seen() -> None:
    rails = guardrails()
    trips = feed(rails, [True] * 30, [5.0] * 30)
    assert len(trips) == 1  # a key trips once
    position, trip = trips[0]
    assert position == 20  # not before min_predictions
    assert (trip.variant, trip.model_version, trip.reason) == ("c", "2", "error_rate")
    assert trip.message == (
        "error rate 100.0% over the last 20 predictions is above the limit of 5.0%"
    )


def test_error_rate_at_the_limit_does_not_trip() -> None:
    rails = guardrails(window=20)
    # 1 failure in 20 is 5.0%: not above the limit; a second one is.
    errors = [i == 3 for i in range(20)]
    assert feed(rails, errors, [5.0] * 20) == []
    trips = feed(rails, [True], [5.0])
    assert len(trips) == 1
    assert "error rate 10.0% over the last 20 predictions" in trips[0][1].message


def test_old_failures_slide_out_of_the_window() -> None:
    rails = guardrails(window=10, min_predictions=10, max_error_rate=0.2)
    # 2 failures, then enough successes to push them out of the 10-prediction window.
    assert feed(rails, [True, True] + [False] * 20, [5.0] * 22) == []
    # 2 new failures: 20% of the window, at the limit; a third one makes 30%.
    assert feed(rails, [True, True], [5.0, 5.0]) == []
    trips = feed(rails, [True], [5.0])
    assert [t.reason for _, t in trips] == ["error_rate"]
    assert "error rate 30.0% over the last 10 predictions" in trips[0][1].message


def test_no_trip_below_the_limits() -> None:
    rails = guardrails()
    errors = [i % 50 == 0 for i in range(500)]  # 2% failures
    latencies = [20.0 + (i % 7) for i in range(500)]
    assert feed(rails, errors, latencies) == []
    # One slow prediction in 100 is the 99th percentile's business only in part: no trip.
    wide = guardrails(window=100)
    assert feed(wide, [False] * 100, [10.0] * 99 + [1_000.0]) == []


def test_p99_trips_on_slow_predictions() -> None:
    rails = guardrails()
    # Below min_predictions nothing is judged, however slow.
    assert feed(rails, [False] * 19, [300.0] * 19) == []
    trips = feed(rails, [False], [300.0])
    assert len(trips) == 1
    trip = trips[0][1]
    assert (trip.variant, trip.reason) == ("c", "p99")
    assert trip.message == (
        "p99 latency 300.0 ms over the last 20 predictions is above the limit of 250 ms"
    )


def test_two_slow_predictions_in_a_hundred_trip_the_p99() -> None:
    rails = guardrails(window=100)
    latencies = [10.0] * 98 + [1_000.0, 1_000.0]
    trips = feed(rails, [False] * 100, latencies)
    assert [(position, t.reason) for position, t in trips] == [(100, "p99")]
    assert "p99 latency 1000.0 ms over the last 100 predictions" in trips[0][1].message


def test_p99_is_judged_against_the_champion() -> None:
    """A pause that slows the champion too is not the challenger's fault."""
    rails = guardrails(p99_ratio=2.0)
    for _ in range(20):
        rails.observe_champion(200.0)
    assert rails.champion_p99() == pytest.approx(200.0)
    # 300 ms is above 250 ms but not above 2 x 200 ms: no trip.
    assert feed(rails, [False] * 40, [300.0] * 40) == []
    trips = feed(rails, [False] * 10, [450.0] * 10)
    assert len(trips) == 1
    assert trips[0][1].reason == "p99"
    assert "above the limit of 250 ms (champion: 200.0 ms)" in trips[0][1].message


def test_the_champion_baseline_needs_min_predictions() -> None:
    rails = guardrails()
    for _ in range(19):
        rails.observe_champion(1_000.0)
    assert rails.champion_p99() is None  # too few: no baseline, the absolute limit alone
    trips = feed(rails, [False] * 20, [300.0] * 20)
    assert [t.reason for _, t in trips] == ["p99"]
    assert "champion" not in trips[0][1].message


def test_variants_and_versions_have_their_own_windows() -> None:
    rails = guardrails()
    assert len(feed(rails, [True] * 20, [5.0] * 20, variant="a")) == 1
    assert feed(rails, [False] * 20, [5.0] * 20, variant="b") == []
    # Same name, another version: a fresh window.
    assert rails.observe("a", "3", error=True, latency_ms=5.0) is None


def test_forget_starts_a_variant_afresh() -> None:
    rails = guardrails()
    assert len(feed(rails, [True] * 20, [5.0] * 20)) == 1
    assert feed(rails, [True] * 5, [5.0] * 5) == []  # tripped: silent
    rails.forget("c", "2")
    assert feed(rails, [True] * 19, [5.0] * 19) == []  # a new window of 19: not judged yet
    assert len(feed(rails, [True], [5.0])) == 1


def test_min_predictions_is_capped_at_the_window() -> None:
    rails = guardrails(window=10, min_predictions=50)
    assert rails.min_predictions == 10
    assert [position for position, _ in feed(rails, [True] * 12, [5.0] * 12)] == [10]


# -- the manager's use of them -------------------------------------------------------------------


def fake_model(version: str) -> DeployedModel:
    return DeployedModel(
        name="nyc-taxi-duration", version=version, run_id=None,
        requested_uri=f"models:/nyc-taxi-duration/{version}", sha256="0" * 64,
        pipeline=object(), profile=None, model_kind="x", sklearn_version="1", smoke_ms=0.0,
    )  # fmt: skip


def bare_manager(tmp_path: Path, **overrides: Any) -> DeploymentManager:
    """A manager with no registry and no log: only what observe() and the no-op paths use."""
    settings = router_settings(
        tmp_path, f"sqlite:///{tmp_path / 'unused.db'}",
        guardrail_min_predictions=20, guardrail_window=50, **overrides,
    )  # fmt: skip
    manager = DeploymentManager(settings, None, None, RouterMetrics())  # type: ignore[arg-type]
    manager.table = (
        RoutingTable()
        .with_variant(Variant(CHAMPION, fake_model("1"), 1.0))
        .with_variant(Variant(CHALLENGER, fake_model("2"), 0.1))
    )
    return manager


def test_the_manager_never_trips_the_champion(tmp_path: Path) -> None:
    manager = bare_manager(tmp_path)
    champion = manager.table.get(CHAMPION)
    # Outside an event loop: a trip would fail to schedule its task, so none may happen.
    for _ in range(100):
        manager.observe(champion, error=True, latency_ms=10_000.0)
    assert manager._tasks == set()
    assert manager.guardrails._seen == {}
    assert manager.guardrails.champion_p99() == pytest.approx(10_000.0)  # only a baseline


def test_the_manager_schedules_one_rollback_per_trip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = bare_manager(tmp_path)
    trips: list[Trip] = []

    async def record(trip: Trip) -> None:
        trips.append(trip)

    monkeypatch.setattr(manager, "guardrail_rollback", record)
    challenger = manager.table.get(CHALLENGER)

    async def traffic() -> None:
        for _ in range(40):
            manager.observe(challenger, error=True, latency_ms=5.0)
        await asyncio.sleep(0.01)

    asyncio.run(traffic())
    assert [(t.variant, t.model_version, t.reason) for t in trips] == [
        (CHALLENGER, "2", "error_rate")
    ]


def test_disabled_guardrails_watch_nothing(tmp_path: Path) -> None:
    manager = bare_manager(tmp_path, guardrails=False)
    challenger = manager.table.get(CHALLENGER)
    for _ in range(100):  # would trip (and fail to schedule outside a loop) if watched
        manager.observe(challenger, error=True, latency_ms=5.0)
    assert manager.guardrails._seen == {}


@pytest.mark.parametrize(
    "trip",
    [
        Trip(CHAMPION, "1", "error_rate", "the champion"),
        Trip(CHALLENGER, "7", "error_rate", "another version than the deployed one"),
        Trip("gone", "2", "p99", "a variant that already left"),
    ],
    ids=["champion", "stale-version", "unknown-variant"],
)
def test_guardrail_rollback_leaves_the_table_alone(tmp_path: Path, trip: Trip) -> None:
    manager = bare_manager(tmp_path)
    before = manager.table
    asyncio.run(manager.guardrail_rollback(trip))  # no registry nor log is touched
    assert manager.table is before
    text = manager.metrics.render()[0].decode()
    assert "duration_router_guardrail_rollbacks_total{" not in text


# -- in the router -------------------------------------------------------------------------------


class Wrapped:
    """A real pipeline that fails, or sleeps, on rides from :data:`SLOW_ZONE`."""

    def __init__(self, real: Any, *, sleep: float | None = None) -> None:
        self.real = real
        self.sleep = sleep

    def predict(self, records: Sequence[dict[str, Any]]) -> Any:
        records = list(records)
        if any(r["PULocationID"] == SLOW_ZONE for r in records):
            if self.sleep is None:
                raise ValueError(f"cannot predict rides from zone {SLOW_ZONE}")
            time.sleep(self.sleep)
        return self.real.predict(records)


def wrap_challenger(client: TestClient, *, sleep: float | None = None) -> None:
    """Swap the challenger's pipeline before its first request (batchers hold the model)."""
    variant = client.app.state.manager.table.get(CHALLENGER)
    assert variant is not None
    batchers = client.app.state.manager.models.batchers
    assert all(key[2] != id(variant.model.pipeline) for key in batchers)
    object.__setattr__(variant.model, "pipeline", Wrapped(variant.model.pipeline, sleep=sleep))


def wait_for_rollback(client: TestClient, timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        state = client.get("/deployments", headers=AUTH).json()
        variants = {v["variant"] for v in state["table"]["variants"]}
        if CHALLENGER not in variants or time.monotonic() > deadline:
            return state
        time.sleep(0.05)


def guarded_settings(tmp_path: Path, registry_uri: str) -> Any:
    return router_settings(
        tmp_path, registry_uri, guardrail_min_predictions=20, guardrail_window=50
    )


def test_failing_challenger_is_rolled_back(tmp_path: Path, registry_uri: str) -> None:
    with running(guarded_settings(tmp_path, registry_uri)) as client:
        wrap_challenger(client)
        answers = []
        for i in range(20):  # every other ride fails on the challenger: 50% > 5%
            ride = RIDE_74 if i % 2 else RIDE
            response = client.post(
                "/predict", json={**ride, "ride_id": f"g-{i}"}, headers=FORCE_CHALLENGER
            )
            assert response.status_code == 200, response.text
            answers.append(response.json())
        for i, answer in enumerate(answers):
            expected = ("champion", "1") if i % 2 else ("challenger", "2")
            assert (answer["variant"], answer["model_version"]) == expected

        state = wait_for_rollback(client)
        assert [(v["variant"], v["model_version"], v["weight"]) for v in
                state["table"]["variants"]] == [("champion", "1", 1.0)]  # fmt: skip
        assert state["aliases"] == {"champion": "1"}
        entry = state["history"][-1]
        assert entry["action"] == "guardrail rollback"
        assert entry["actor"] == "guardrail"
        assert (entry["variant"], entry["previous_version"]) == ("challenger", "2")
        assert entry["detail"] == (
            "challenger v2 rolled back: error rate 50.0% over the last 20 predictions is "
            "above the limit of 5.0%"
        )
        assert registry_aliases(registry_uri) == {"champion": "1"}

        rollbacks = "duration_router_guardrail_rollbacks_total"
        text = client.get("/metrics").text.splitlines()
        assert f'{rollbacks}{{reason="error_rate",variant="challenger"}} 1.0' in text
        assert metric_value(
            client, "duration_router_prediction_errors_total",
            variant="challenger", model_version="2",
        ) == 10.0  # fmt: skip

        log = client.app.state.log
        events = log.history()
        assert [e["action"] for e in events] == ["start", "guardrail rollback"]
        assert events[-1]["table_after"] == {
            "champion": {"model_version": "1", "weight": 1.0, "shadow": False}
        }
        assert events[-1]["aliases_after"] == {"champion": "1"}
        frame = log.frame()
        failed = frame[frame["error"]]
        assert len(failed) == 10
        assert set(zip(failed["variant"], failed["model_version"], strict=True)) == {
            ("challenger", "2")
        }
        assert failed["prediction"].isna().all()
        assert len(frame) == 30  # 10 challenger answers, 10 failures, 10 champion answers

        # The challenger no longer answers, forced or not; a rollback can bring it back.
        gone = client.post("/predict", json=RIDE, headers=FORCE_CHALLENGER)
        assert gone.status_code == 409
        assert client.post("/predict", json=RIDE).json()["variant"] == "champion"
        assert client.post("/rollback", headers=AUTH).status_code == 200
        assert table(client)["challenger"] == ("2", 0.1, False)


def test_slow_challenger_is_rolled_back(tmp_path: Path, registry_uri: str) -> None:
    with running(guarded_settings(tmp_path, registry_uri)) as client:
        # No champion traffic, so no baseline: the absolute limit alone decides (the
        # comparison with the champion's p99 is unit-tested above, where timings are exact).
        wrap_challenger(client, sleep=0.3)
        for i in range(20):  # 2 rides of 20 take 0.3 s on the challenger: p99 ~300 ms
            ride = RIDE_74 if i in (3, 11) else RIDE
            response = client.post("/predict", json=ride, headers=FORCE_CHALLENGER)
            assert response.status_code == 200, response.text
            assert response.json()["variant"] == "challenger"  # slow, not failed

        state = wait_for_rollback(client)
        assert [v["variant"] for v in state["table"]["variants"]] == ["champion"]
        entry = state["history"][-1]
        assert entry["action"] == "guardrail rollback"
        assert entry["detail"].startswith("challenger v2 rolled back: p99 latency ")
        assert entry["detail"].endswith("over the last 20 predictions is above the limit of 250 ms")
        p99 = float(entry["detail"].split("p99 latency ")[1].split(" ms")[0])
        assert p99 >= 300.0  # the two 0.3 s rides
        assert registry_aliases(registry_uri) == {"champion": "1"}
        rollbacks = "duration_router_guardrail_rollbacks_total"
        text = client.get("/metrics").text.splitlines()
        assert f'{rollbacks}{{reason="p99",variant="challenger"}} 1.0' in text
        assert client.app.state.log.last_event()["action"] == "guardrail rollback"


def test_guardrail_rollback_with_the_registry_down(
    tmp_path: Path, registry_uri: str, trained_registry: TrainedRegistry
) -> None:
    """The traffic stops even when the alias cannot be deleted; the history says so."""
    with running(guarded_settings(tmp_path, registry_uri)) as client:
        wrap_challenger(client)
        Path(registry_uri.removeprefix("sqlite:///")).unlink()
        for i in range(20):
            ride = RIDE_74 if i % 2 else RIDE
            response = client.post("/predict", json=ride, headers=FORCE_CHALLENGER)
            assert response.status_code == 200, response.text
        state = wait_for_rollback(client)
        assert [v["variant"] for v in state["table"]["variants"]] == ["champion"]
        entry = state["history"][-1]
        assert entry["action"] == "guardrail rollback"
        assert entry["detail"].endswith("(the registry was down: alias not deleted)")
        assert entry["table_after"] == {
            "champion": {"model_version": "1", "weight": 1.0, "shadow": False}
        }
        assert metric_value(
            client, "duration_router_guardrail_rollbacks_total",
            variant="challenger", reason="error_rate",
        ) == 1.0  # fmt: skip
        assert client.post("/predict", json=RIDE).json()["variant"] == "champion"

    # The registry comes back (a fresh copy: SQLite files swapped under an open engine turn
    # read-only), the alias still on v2: a restart with the same log must not redeploy it.
    back = tmp_path / "registry-back.db"
    shutil.copyfile(trained_registry.database, back)
    back_uri = f"sqlite:///{back}"
    assert registry_aliases(back_uri) == {"champion": "1", "challenger": "2"}
    with running(guarded_settings(tmp_path, back_uri)) as client:
        assert set(table(client)) == {"revision", "champion"}
    assert registry_aliases(back_uri) == {"champion": "1"}
