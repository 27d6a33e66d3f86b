"""The central metrics: the Prometheus configuration and the loop's alerting rules shipped in
``monitoring/`` are valid for Prometheus' own checker, and the rules fire (and stay quiet)
on the series their unit tests give; the loop's own exposition passes promtool's linter. The
router's rules are level 3's (``level3_deployment/monitoring/rules.yml``, tested there); the
configuration loads them from there, and no loop rule repeats one."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from duration_operations.metrics import OperationsMetrics
from ladder_testing.programs import promtool_problems, require_program

MONITORING = Path(__file__).resolve().parents[1] / "monitoring"
ROUTER_RULES = Path(__file__).resolve().parents[2] / "level3_deployment/monitoring/rules.yml"
HINT = "install Prometheus' promtool (Debian/Ubuntu: apt-get install prometheus)"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    program = require_program(["promtool"], HINT)
    return subprocess.run([program, *args], cwd=MONITORING, capture_output=True, text=True)


def test_the_prometheus_configuration_and_rules_are_valid():
    config = promtool("check", "config", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr
    assert "SUCCESS: 2 rule files found" in config.stdout
    rules = promtool("check", "rules", "alerts.yml")
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "SUCCESS: 5 rules found" in rules.stdout


def test_the_router_rules_have_one_source():
    """prometheus.yml loads level 3's file (which exists), and the loop's file holds no
    rule on the router's series."""
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    loaded = [(MONITORING / name).resolve() for name in config["rule_files"]]
    assert loaded == [MONITORING / "alerts.yml", ROUTER_RULES]
    assert ROUTER_RULES.is_file()
    groups = yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"]
    assert [g["name"] for g in groups] == ["duration-operate"]
    router_groups = {g["name"] for g in yaml.safe_load(ROUTER_RULES.read_text())["groups"]}
    assert not router_groups & {g["name"] for g in groups}
    for rule in (r for g in groups for r in g["rules"]):
        assert "duration_router_" not in rule["expr"], rule["alert"]


def test_the_alerting_rules_fire_on_their_unit_tests():
    tested = promtool("test", "rules", "alerts_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_a_broken_rule_unit_test_is_caught(tmp_path):
    """The unit tests can fail: the same test against a rule whose threshold was changed."""
    broken = (MONITORING / "alerts.yml").read_text().replace("> 900", "> 5000")
    (tmp_path / "alerts.yml").write_text(broken)
    (tmp_path / "alerts_test.yml").write_text((MONITORING / "alerts_test.yml").read_text())
    program = require_program(["promtool"], HINT)
    tested = subprocess.run([program, "test", "rules", "alerts_test.yml"], cwd=tmp_path,
                            capture_output=True, text=True)  # fmt: skip
    assert tested.returncode == 1
    assert "DurationLoopStalled" in tested.stdout + tested.stderr


def test_the_loops_metrics_pass_promtool():
    metrics = OperationsMetrics()
    metrics.passes.labels(outcome="ok").inc()
    metrics.trigger_readings.labels(trigger="drift", fired="true").inc()
    metrics.drift_psi.labels(feature="PULocationID").set(1.1)
    metrics.retrains.labels(outcome="gate passed").inc()
    assert promtool_problems(metrics.render().decode()) == ""
