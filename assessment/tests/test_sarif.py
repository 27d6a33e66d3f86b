"""``--format sarif`` against the official SARIF 2.1.0 schema (bundled in tests/data/)."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from mlops_assess.assess import assess
from mlops_assess.cli import main
from mlops_assess.report_sarif import SARIF_SCHEMA, sarif

SCHEMA_PATH = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"
ROOT = Path(__file__).resolve().parents[2]


@cache
def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema


def _validate(log: dict[str, Any]) -> None:
    schema = _schema()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]


def test_the_bundled_schema_is_sarif_2_1_0() -> None:
    schema = _schema()
    assert "2.1.0" in schema["title"]
    assert schema["id"] == SARIF_SCHEMA  # the errata01 schema the output names
    assert jsonschema.validators.validator_for(schema) is jsonschema.Draft4Validator
    assert schema["properties"]["version"]["enum"] == ["2.1.0"]


def test_the_validator_rejects_a_broken_log() -> None:
    with pytest.raises(AssertionError):
        _validate({"version": "2.1.0", "runs": [{"tool": {"driver": {}}}]})  # no driver name
    with pytest.raises(AssertionError):
        _validate({"version": "2.0.0", "runs": []})


def _sarif_of(folder: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main([str(folder), "--format", "sarif"]) == 0
    log: dict[str, Any] = json.loads(capsys.readouterr().out)
    return log


def _check_results(folder: Path, log: dict[str, Any]) -> None:
    assessment = assess(folder)
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    rule_ids = [rule["id"] for rule in rules]
    leveled = [r for r in assessment.results if r.criterion.level is not None]
    assert rule_ids == [r.criterion.id for r in leveled]
    missing = [r.criterion.id for r in leveled if not r.met]
    assert [result["ruleId"] for result in run["results"]] == missing
    for result in run["results"]:
        assert result["ruleId"] in rule_ids
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["message"]["text"].startswith("Level ")
        (location,) = result["locations"]
        physical = location["physicalLocation"]
        assert physical["artifactLocation"]["uri"]
        assert not physical["artifactLocation"]["uri"].startswith("/")
        assert physical["region"]["startLine"] >= 1
        assert result["level"] in {"warning", "note"}
    next_level = assessment.next_level or 0
    blocking = {r.criterion.id for r in leveled if not r.met and r.criterion.level <= next_level}
    assert {r["ruleId"] for r in run["results"] if r["level"] == "warning"} == blocking
    assert run["properties"]["maturity-level"] == assessment.level


@pytest.mark.parametrize("folder", ["level0_notebook", "level2_training", "level3_deployment"])
def test_sarif_of_the_ladder_is_valid(folder: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = ROOT / folder
    if not path.is_dir():
        pytest.skip("needs the ladder's repository (not an sdist of mlops-assess)")
    log = _sarif_of(path, capsys)
    _validate(log)
    _check_results(path, log)
    assert log["runs"][0]["results"]  # no level folder meets every criterion yet


def test_sarif_of_a_small_repository(
    make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_repo(
        {
            "README.md": "# svc\n",
            "prediction_log.py": "def write(frame, model_version):\n    return frame\n",
            "broken.py": "def (:\n",
        }
    )
    log = _sarif_of(root, capsys)
    _validate(log)
    _check_results(root, log)
    by_rule = {r["ruleId"]: r for r in log["runs"][0]["results"]}
    # Partial evidence anchors the result; otherwise the folder's README.
    traceability = by_rule["prediction-traceability"]["locations"][0]["physicalLocation"]
    assert traceability["artifactLocation"]["uri"] == "README.md"  # same_file: nothing kept
    ci = by_rule["ci-tests"]["locations"][0]["physicalLocation"]
    assert ci["artifactLocation"]["uri"] == "README.md"
    assert ci["region"]["startLine"] == 1
    assert "Evidence unreadable in broken.py" in by_rule["experiment-tracking"]["message"]["text"]


def test_sarif_of_an_empty_repository(make_repo: Callable[..., Path]) -> None:
    root = make_repo({})
    log = sarif(assess(root))
    _validate(log)
    _check_results(root, log)
    uris = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in log["runs"][0]["results"]
    }
    assert uris == {"."}
