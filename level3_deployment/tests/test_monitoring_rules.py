"""``monitoring/``: the router's Prometheus rules and its Grafana dashboard.

Prometheus' own checker accepts the rules and the example configuration; the rules' unit tests
(``rules_test.yml``) pass, and fail once a threshold is changed; every metric name a rule or a
dashboard panel uses is one a router's ``/metrics`` exposes (a router in process that predicted,
received feedback and ran its scheduled monitor), or a recording rule of ``rules.yml``; every
panel's expression parses as PromQL. Without ``promtool`` these skip (they fail under CI).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from duration_deployment.config import RouterSettings
from duration_deployment.main import create_app
from duration_deployment.replay import load_replay
from ladder_testing.programs import PROMETHEUS_HINT, promtool_problems, require_program
from ladder_testing.router import AUTH, TrainedRegistry, metric_value, router_settings

MONITORING = Path(__file__).resolve().parents[1] / "monitoring"
RULES = MONITORING / "rules.yml"
DASHBOARD = MONITORING / "grafana-dashboard.json"
#: A metric name in PromQL: a recording rule's (``level:metric:operations``) or the router's.
NAME = re.compile(r"\b(?:[a-z_]+:[a-z0-9_:]+|duration_[a-z0-9_]+)\b")


def promtool(*args: str, cwd: Path = MONITORING) -> subprocess.CompletedProcess[str]:
    program = require_program(["promtool"], PROMETHEUS_HINT)
    return subprocess.run(
        [program, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def names_in(expr: str) -> set[str]:
    """The metric names ``expr`` reads (quoted label values left out)."""
    return set(NAME.findall(re.sub(r'"[^"]*"', '""', expr)))


def dashboard_targets() -> list[tuple[str, dict[str, Any]]]:
    board = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target)
        for panel in board["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]


@pytest.fixture(scope="module")
def exposed(
    trained_registry: TrainedRegistry, tmp_path_factory: pytest.TempPathFactory
) -> set[str]:
    """The sample names of a router's ``/metrics`` once it has predicted 1,500 rides of
    green 2021-02, received their actual durations, answered a 422 and run its monitor (the
    exposition passes ``promtool check metrics``)."""
    folder = tmp_path_factory.mktemp("rules-router")
    shutil.copyfile(trained_registry.database, folder / "mlflow.db")
    settings: RouterSettings = router_settings(
        folder, f"sqlite:///{folder / 'mlflow.db'}", monitor_interval_seconds=0.2
    )
    rides, _ = load_replay("green:2021-02", limit=1_500)
    with TestClient(create_app(settings)) as client:
        body = rides[["PULocationID", "DOLocationID", "trip_distance", "ride_id"]]
        assert client.post("/predict/batch", json={"rides": body.to_dict("records")}).is_success
        actuals = rides[["ride_id", "duration"]].to_dict("records")
        answer = client.post("/feedback", json={"actuals": actuals}, headers=AUTH)
        assert answer.json()["matched"] == 1_500
        assert client.post("/predict", json={}).status_code == 422
        runs = "duration_router_monitor_runs_total"
        done = metric_value(client, runs, outcome="ok") or 0.0
        deadline = time.monotonic() + 60
        while (metric_value(client, runs, outcome="ok") or 0.0) < done + 2:
            assert time.monotonic() < deadline, "no scheduled monitoring run"
            time.sleep(0.05)
        text = client.get("/metrics").text
    assert promtool_problems(text) == ""  # Prometheus' linter accepts every new series
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


def test_the_rules_and_the_example_configuration_are_valid() -> None:
    checked = promtool("check", "rules", "rules.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules())} rules found" in checked.stdout
    assert len(rules()) == 21
    config = promtool("check", "config", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr
    assert "SUCCESS: 1 rule files found" in config.stdout


def test_the_rules_pass_their_unit_tests() -> None:
    tested = promtool("test", "rules", "rules_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_has_a_unit_test() -> None:
    tests = yaml.safe_load((MONITORING / "rules_test.yml").read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case["exp_alerts"]
    }
    assert fired == {rule["alert"] for rule in rules() if "alert" in rule}


@pytest.mark.parametrize(
    ("old", "new", "alert"),
    [
        ("p99_5m > 0.25", "p99_5m > 0.5", "DurationPredictionLatencyHigh"),
        ("drift_detected == 1\n        for: 15m", "drift_detected == 1\n        for: 30m",
         "DurationDrift"),
        ("[1h])) > 0\n        labels", "[1h])) > 1e9\n        labels", "DurationFeedbackStopped"),
    ],
    ids=["latency threshold", "drift duration", "feedback traffic"],
)  # fmt: skip
def test_a_changed_rule_fails_its_unit_test(tmp_path: Path, old: str, new: str, alert: str) -> None:
    text = RULES.read_text()
    assert old in text
    (tmp_path / "rules.yml").write_text(text.replace(old, new))
    shutil.copyfile(MONITORING / "rules_test.yml", tmp_path / "rules_test.yml")
    tested = promtool("test", "rules", "rules_test.yml", cwd=tmp_path)
    assert tested.returncode == 1
    assert f"alertname: {alert}" in tested.stdout + tested.stderr


def test_the_thresholds_are_the_routers() -> None:
    """The latency alert is the guardrails' p99 limit; the drift alert repeats no PSI
    threshold (the router's drift_detected applies duration_core's rule)."""
    by_name = {rule.get("alert"): rule for rule in rules()}
    limit_ms = RouterSettings.model_fields["guardrail_max_p99_ms"].default
    assert by_name["DurationPredictionLatencyHigh"]["expr"].endswith(f"> {limit_ms / 1000}")
    assert by_name["DurationDrift"]["expr"] == "duration_router_drift_detected == 1"
    assert not any("drift_psi" in rule["expr"] for rule in rules())
    error_rate = RouterSettings.model_fields["guardrail_max_error_rate"].default
    threshold = float(by_name["DurationPredictionErrors"]["expr"].rsplit(">", 1)[1])
    assert threshold < error_rate  # a warning before the guardrail rolls back


def test_every_name_in_the_rules_is_exposed_or_recorded(exposed: set[str]) -> None:
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    used = set().union(*(names_in(rule["expr"]) for rule in rules()))
    assert "duration_router_log_rows_dropped_total" in used
    assert used - exposed - recorded == set()


def test_every_recording_rule_is_used_by_another_rule_or_a_panel() -> None:
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    in_rules = set().union(*(names_in(rule["expr"]) for rule in rules()))
    panels = set().union(*(names_in(target["expr"]) for _, target in dashboard_targets()))
    assert recorded - in_rules - panels == set()


def test_the_dashboard_is_valid_and_covers_the_router() -> None:
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] == "duration-router"
    panels = board["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    rows = [p["title"] for p in panels if p["type"] == "row"]
    assert rows == ["Traffic", "Latency", "Errors", "Drift", "A/B test", "Scheduled monitor"]
    for panel in (p for p in panels if p["type"] != "row"):
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [t["refId"] for t in panel["targets"]]
        assert refs, panel["title"]
        assert len(set(refs)) == len(refs), panel["title"]
    assert [v["name"] for v in board["templating"]["list"]] == ["datasource"]


def test_every_dashboard_expression_parses_as_promql(tmp_path: Path) -> None:
    targets = dashboard_targets()
    records = [
        {"record": f"dashboard:panel:{i}", "expr": target["expr"]}
        for i, (_, target) in enumerate(targets)
    ]
    # JSON is YAML: promtool reads the file as it reads rules.yml.
    (tmp_path / "panels.yml").write_text(
        json.dumps({"groups": [{"name": "dashboard", "rules": records}]})
    )
    checked = promtool("check", "rules", "panels.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(targets)} rules found" in checked.stdout
    # And promtool does refuse a broken one.
    records.append({"record": "dashboard:broken", "expr": "sum by (variant) (rate(x[5m])"})
    (tmp_path / "panels.yml").write_text(
        json.dumps({"groups": [{"name": "dashboard", "rules": records}]})
    )
    assert promtool("check", "rules", "panels.yml", cwd=tmp_path).returncode == 1


def test_every_name_on_the_dashboard_is_exposed_or_recorded(exposed: set[str]) -> None:
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    for title, target in dashboard_targets():
        used = names_in(target["expr"])
        assert used, (title, target["expr"])
        assert used - exposed - recorded == set(), title
