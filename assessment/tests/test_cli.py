"""The command line: formats, ``--fail-below``, ``--explain`` and exit statuses."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from mlops_assess import __version__, cli
from mlops_assess.catalogue import load_catalogue
from mlops_assess.cli import main

ROOT = Path(__file__).resolve().parents[2]
LEVEL3 = ROOT / "level3_deployment"

needs_ladder = pytest.mark.skipif(
    not LEVEL3.is_dir(), reason="needs the ladder's repository (not an sdist of mlops-assess)"
)

Capsys = pytest.CaptureFixture[str]

SMALL = {
    "pyproject.toml": '[project]\nname = "svc"\nversion = "0.1.0"\ndependencies = ["numpy>=1"]\n',
    "src/svc/score.py": "import mlflow\n\ndef score(m, rows):\n    return m.predict(rows)\n",
    "tests/test_score.py": "def test_score():\n    assert True\n",
    ".github/workflows/ci.yml": "on: [push]\njobs:\n  t:\n    runs-on: x\n    steps:\n"
    "      - run: pytest tests\n",
}


@pytest.fixture
def small(make_repo: Callable[..., Path]) -> Path:
    return make_repo(SMALL)


def _run(capsys: Capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_json_output(small: Path, capsys: Capsys) -> None:
    status, out, _ = _run(capsys, str(small), "--format", "json")
    assert status == 0
    data = json.loads(out)
    assert data["schema_version"] == 1
    assert data["tool"] == {"name": "mlops-assess", "version": __version__, "catalogue": 1}
    assert data["level"] == 0
    assert data["level_name"] == "No MLOps"
    assert data["scope"] == "."
    assert data["files"] == 4
    assert [c["id"] for c in data["criteria"]] == [c.id for c in load_catalogue().criteria]
    by_id = {c["id"]: c for c in data["criteria"]}
    ci = by_id["ci-tests"]
    assert ci["met"] is True
    assert ci["evidence"][0]["location"] == ".github/workflows/ci.yml:6"
    for criterion in data["criteria"]:
        for evidence in criterion["evidence"]:
            assert re.fullmatch(r"[^:]+:\d+", evidence["location"]), evidence
            assert evidence["location"] == f"{evidence['path']}:{evidence['line']}"
    assert by_id["automated-release"]["met"] is False
    assert by_id["automated-release"]["missing"]
    missing = [m["id"] for m in data["next_level"]["missing"]]
    assert data["next_level"]["level"] == 1
    assert missing == ["automated-release", "model-integration-test"]
    assert set(data["ml_test_score"]["sections"]) == {
        "Data",
        "Model",
        "Infrastructure",
        "Monitoring",
    }
    assert data["notes"] == []


def test_json_notebook_location_names_the_cell(
    make_repo: Callable[..., Path], capsys: Capsys
) -> None:
    notebook = {
        "cells": [
            {"cell_type": "markdown", "id": "a", "metadata": {}, "source": "# x"},
            {
                "cell_type": "code",
                "id": "b",
                "metadata": {},
                "execution_count": None,
                "outputs": [],
                "source": "%pip install mlflow\nimport mlflow\nmlflow.log_metric('m', 1)",
            },
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    root = make_repo({"nb.ipynb": json.dumps(notebook)})
    _, out, _ = _run(capsys, str(root), "--format", "json")
    by_id = {c["id"]: c for c in json.loads(out)["criteria"]}
    assert by_id["experiment-tracking"]["evidence"][0]["location"] == "nb.ipynb:cell 2:3"


def test_markdown_output(small: Path, capsys: Capsys) -> None:
    status, out, _ = _run(capsys, str(small), "--format", "markdown")
    assert status == 0
    assert out.startswith("## MLOps maturity of `(the whole repository)`: level 0 (No MLOps)")
    assert "| level | criterion | met | evidence |" in out
    assert "### To reach level 1 (DevOps but no MLOps)" in out
    assert "`.github/workflows/ci.yml:6`" in out


def test_text_output(small: Path, capsys: Capsys) -> None:
    status, out, _ = _run(capsys, str(small))
    assert status == 0
    assert out.startswith("(the whole repository): level 0 (No MLOps)")
    assert "To reach level 1 (DevOps but no MLOps):" in out
    assert "  [x] ci-tests: Tests run automatically on every change" in out
    assert "  [ ] automated-release: Releases are built and published by a pipeline" in out
    assert "ML Test Score estimate (static evidence only)" in out


@needs_ladder
def test_fail_below(capsys: Capsys) -> None:
    status, _, err = _run(capsys, str(LEVEL3), "--fail-below", "4", "--format", "json")
    assert status == 1
    assert "level 3 is below --fail-below 4" in err
    status, _, err = _run(capsys, str(LEVEL3), "--fail-below", "3", "--format", "json")
    assert status == 0
    assert err == ""


def test_fail_below_out_of_range_is_a_usage_error(small: Path, capsys: Capsys) -> None:
    with pytest.raises(SystemExit) as raised:
        main([str(small), "--fail-below", "5"])
    assert raised.value.code == 2
    assert "--fail-below" in capsys.readouterr().err


@needs_ladder
def test_explain_prints_the_criterion_and_evidence(capsys: Capsys) -> None:
    status, out, _ = _run(capsys, str(LEVEL3), "--explain", "ab-or-canary")
    assert status == 0
    criterion = load_catalogue().get("ab-or-canary")
    assert out.startswith(
        f"ab-or-canary: {criterion.title}  [level 3 (Automated model deployment)]"
    )
    assert f"Why: {criterion.why}" in out
    assert f"Where the ladder shows it: {criterion.shown_in}" in out
    assert "In level3_deployment: met" in out
    assert "[x] a traffic split between model versions" in out
    assert re.search(r"level3_deployment/src/\S+\.py:\d+  names '", out), out


def test_explain_json(small: Path, capsys: Capsys) -> None:
    status, out, _ = _run(capsys, str(small), "--explain", "ci-tests", "--format", "json")
    assert status == 0
    data = json.loads(out)
    assert data["id"] == "ci-tests"
    assert data["met"] is True


def test_explain_unknown_id_lists_ids(small: Path, capsys: Capsys) -> None:
    with pytest.raises(SystemExit) as raised:
        main([str(small), "--explain", "nope"])
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert "no criterion 'nope'" in err
    for criterion in load_catalogue().criteria:
        assert criterion.id in err


def test_unknown_format_is_a_usage_error(small: Path, capsys: Capsys) -> None:
    with pytest.raises(SystemExit) as raised:
        main([str(small), "--format", "xml"])
    assert raised.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_version(capsys: Capsys) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["--version"])
    assert raised.value.code == 0
    assert capsys.readouterr().out.strip() == f"mlops-assess {__version__}"


def test_default_path_is_the_current_folder(
    small: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(small)
    status, out, _ = _run(capsys, "--format", "json")
    assert status == 0
    assert Path(json.loads(out)["repository_root"]) == small


@pytest.mark.parametrize(
    ("value", "message"), [("0", "must be 1 or more, not 0"), ("two", "not a whole number: 'two'")]
)
def test_workers_must_be_a_positive_number(
    small: Path, capsys: Capsys, value: str, message: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([str(small), "--workers", value])
    assert exit_info.value.code == 2
    assert f"argument --workers: {message}" in capsys.readouterr().err


def test_workers_give_the_same_json(small: Path, capsys: Capsys) -> None:
    assert main([str(small), "--format", "json", "--workers", "1"]) == 0
    one = capsys.readouterr().out
    assert main([str(small), "--format", "json", "--workers", "2"]) == 0
    assert capsys.readouterr().out == one


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([""], "argument path: an empty path is not a folder"),
        (["x" * 300], "File name too long"),
        ([".", "--explain", "ci-tests", "--format", "sarif"], "--explain prints text or json"),
        ([".", "--explain", "ci-tests", "--format", "markdown"], "--explain prints text or json"),
    ],
)
def test_more_usage_errors(argv: list[str], message: str, capsys: Capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_defect_is_one_line_and_exit_3(
    small: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise AttributeError("'NoneType' object has no attribute 'x'")

    monkeypatch.setattr(cli, "assess", broken)
    assert main([str(small)]) == 3
    err = capsys.readouterr().err
    assert err == (
        "mlops-assess: internal error (AttributeError: 'NoneType' object has no attribute 'x'); "
        "please report it with the command that caused it\n"
    )
