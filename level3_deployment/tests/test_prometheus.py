"""A real Prometheus scraping a real ``duration-router`` process, with the router's rules.

The router (a copy of conftest.py's registry: champion v1 linear, challenger v2 gbm at 10%)
runs its monitor every second; Prometheus scrapes it every second and evaluates
``monitoring/rules.yml`` as often. Rides are counted as the router answers them, then read
back through Prometheus' HTTP API: the counts per variant and per route are exactly the
answers', the drift gauges are the router's own, and every rule loaded and evaluates without
an error. Without ``prometheus`` this skips (it fails under CI).
"""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from duration_deployment.replay import load_replay
from ladder_testing import wait_until_answers
from ladder_testing.programs import PROMETHEUS_HINT, require_program
from ladder_testing.prometheus import (
    PrometheusServer,
    prometheus_server,
    query_until,
    scrape_config,
    wait_for_value,
)
from ladder_testing.router import TOKEN, TrainedRegistry
from ladder_testing.services import RouterProcess

RULES = Path(__file__).resolve().parents[1] / "monitoring" / "rules.yml"
JOB = "duration-router"


@pytest.fixture(scope="session")
def prometheus_program() -> str:
    """The ``prometheus`` program; asked for first, so a skip trains and starts nothing."""
    return require_program(["prometheus"], PROMETHEUS_HINT)


@pytest.fixture(scope="module")
def router(
    trained_registry: TrainedRegistry, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RouterProcess]:
    folder = tmp_path_factory.mktemp("router")
    shutil.copyfile(trained_registry.database, folder / "mlflow.db")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DURATION_"))}
    env.update(
        DURATION_ROUTER_TOKEN=TOKEN,
        DURATION_ROUTER_MODEL_CACHE_DIR=str(folder / "cache"),
        DURATION_ROUTER_LOG_FLUSH_SECONDS="0.05",
        DURATION_ROUTER_MONITOR_INTERVAL_SECONDS="1",
        DURATION_ROUTER_SMOKE_MAX_SECONDS="60",  # not what this checks (a loaded machine)
    )
    router = RouterProcess(folder, f"sqlite:///{folder / 'mlflow.db'}", env).start()
    try:
        assert router.process is not None
        wait_until_answers(f"{router.url}/ready", router.process, router.log, status=200)
        yield router
    finally:
        router.stop()
    assert "Traceback" not in router.log.read_text()


@pytest.fixture(scope="module")
def prometheus(
    router: RouterProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusServer]:
    config = scrape_config({JOB: f"127.0.0.1:{router.port}"}, [RULES], interval_seconds=1)
    with prometheus_server(tmp_path_factory.mktemp("prometheus"), config) as server:
        yield server


def by(label: str, vector: dict[tuple[tuple[str, str], ...], float]) -> dict[str, float]:
    return {dict(labels)[label]: value for labels, value in vector.items()}


def test_prometheus_counts_what_the_router_answered(
    prometheus_program: str, router: RouterProcess, prometheus: PrometheusServer
) -> None:
    up = query_until(prometheus, f'up{{job="{JOB}"}}', bool)  # scraped once
    assert list(up.values()) == [1.0]
    per_variant = (
        f'sum by (variant) (duration_router_predictions_total{{job="{JOB}", shadow="false"}})'
    )
    # Both variants' series start at 0 at deployment (nothing predicted yet: the module's
    # other test sends no ride).
    assert by("variant", prometheus.query(per_variant)) == {"champion": 0.0, "challenger": 0.0}

    rides, _ = load_replay("green:2021-02", limit=1_225)
    body = rides[["PULocationID", "DOLocationID", "trip_distance", "ride_id"]].to_dict("records")
    answered: Counter[str] = Counter()
    with httpx.Client(base_url=router.url, timeout=60) as client:
        for start in range(0, 1_200, 100):  # 12 batches of 100
            answer = client.post("/predict/batch", json={"rides": body[start : start + 100]})
            assert answer.status_code == 200, answer.text
            answered.update(p["variant"] for p in answer.json()["predictions"])
        for ride in body[1_200:]:  # 25 single rides
            answer = client.post("/predict", json=ride)
            assert answer.status_code == 200, answer.text
            answered[answer.json()["variant"]] += 1
    assert sum(answered.values()) == 1_225
    assert set(answered) == {"champion", "challenger"}
    expected = {(("variant", name),): float(count) for name, count in answered.items()}
    assert wait_for_value(prometheus, per_variant, expected) == expected

    requests = (
        f'sum by (route) (duration_http_requests_total{{job="{JOB}", status="200", '
        'route=~"/predict|/predict/batch"})'
    )
    got = wait_for_value(prometheus, requests, {(("route", "/predict"),): 25.0,
                                                (("route", "/predict/batch"),): 12.0})  # fmt: skip
    assert by("route", got) == {"/predict": 25.0, "/predict/batch": 12.0}

    # The scheduled monitor's drift gauges, as Prometheus stored them, are the router's.
    champion_rows = answered["champion"]
    assert champion_rows >= 1_000  # enough for drift figures
    text = httpx.get(f"{router.url}/metrics", timeout=30).text
    psi = {
        s.labels["feature"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "duration_router_drift_psi" and s.labels["variant"] == "champion"
    }
    assert set(psi) == {"PULocationID", "DOLocationID", "trip_distance", "prediction"}
    stored = wait_for_value(
        prometheus,
        f'sum by (feature) (duration_router_drift_psi{{job="{JOB}", variant="champion"}})',
        {(("feature", f),): v for f, v in psi.items()},
    )
    assert by("feature", stored) == psi
    verdict = prometheus.query(
        f'duration_router_ab_verdict{{job="{JOB}", challenger="challenger"}} == 1'
    )
    assert list(by("verdict", verdict)) == ["inconclusive"]  # no feedback yet

    # The recording rules evaluate on the scraped series.
    rate = by("variant", prometheus.query("variant:duration_router_predictions:rate5m"))
    assert set(rate) == {"champion", "challenger"}
    assert all(value > 0 for value in rate.values())


def test_the_rules_load_healthy(
    prometheus_program: str, router: RouterProcess, prometheus: PrometheusServer
) -> None:
    assert query_until(prometheus, f'up{{job="{JOB}"}} == 1', bool)  # scraped at least once
    deadline = time.monotonic() + 30
    while True:
        groups = prometheus.api("rules")["groups"]
        rules = [r for g in groups for r in g["rules"]]
        if all(r["health"] != "unknown" for r in rules) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert {g["name"] for g in groups} == {"duration-router-records", "duration-router"}
    health = {r["name"]: (r["health"], r.get("lastError", "")) for r in rules}
    assert len(health) == 21
    assert set(health.values()) == {("ok", "")}, health
    firing = [a for a in prometheus.api("alerts")["alerts"] if a["state"] == "firing"]
    assert firing == []
