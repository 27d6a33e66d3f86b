"""``duration-train`` as a user runs it: a real subprocess, real files, exit codes, JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from duration_core import load_model


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "duration_core.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        check=False,
    )


def test_train_prints_rows_rmse_and_a_json_summary(tmp_path: Path) -> None:
    out = tmp_path / "models" / "linear.zip"
    result = run(
        "--train", "green:2021-01", "--val", "green:2021-02", "--out", str(out), "--json",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["train_rows"] == 73_908
    assert summary["val_rows"] == 61_921
    assert summary["val_rmse"] == pytest.approx(7.7587, abs=1e-3)
    assert summary["model_path"] == str(out)
    assert load_model(out).sha256 == summary["sha256"]
    assert "validation on 61,921 rides: RMSE 7.7587 min" in result.stdout
    assert "fitting linear on 73,908 rides" in result.stderr  # progress goes to stderr


def test_paths_work_as_sources(tmp_path: Path, jan_path: Path, feb_path: Path) -> None:
    out = tmp_path / "ridge.zip"
    result = run(
        "--train", str(jan_path), "--val", str(feb_path), "--model", "ridge", "--alpha", "1.0",
        "--out", str(out), "--json", "--quiet",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["train"] == ["green_tripdata_2021-01.parquet"]
    assert summary["val_rmse"] == pytest.approx(7.7037, abs=1e-3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--train", "nope.parquet", "--val", "green:2021-02"],
            "trip file not found: nope.parquet",
        ),
        (["--train", "green:2021-13", "--val", "green:2021-02"], "month must be 1-12"),
        (["--train", "green:2021-01", "--val", "green:2021-01"], "is also a training file"),
    ],
)
def test_bad_input_is_one_clear_line_without_traceback(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = run(*args, "--out", str(tmp_path / "m.zip"), cwd=tmp_path)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "duration-train: error:" in line]
    assert len(errors) == 1
    assert message in errors[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "m.zip").exists()


def test_not_parquet_file_is_named(tmp_path: Path) -> None:
    fake = tmp_path / "green_tripdata_2021-01.parquet"
    fake.write_text("not, parquet\n")
    result = run("--train", str(fake), "--val", "green:2021-02", "--out", "m.zip", cwd=tmp_path)
    assert result.returncode == 1
    assert f"{fake} is not a parquet file" in result.stderr


def test_alpha_with_linear_is_a_usage_error(tmp_path: Path) -> None:
    result = run(
        "--train", "green:2021-01", "--val", "green:2021-02", "--alpha", "0.1", "--out", "m.zip",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--alpha applies to --model lasso or ridge" in result.stderr


def test_help_explains_every_option(tmp_path: Path) -> None:
    result = run("--help", cwd=tmp_path)
    assert result.returncode == 0
    for option in ("--train", "--val", "--model", "--out", "--json", "--min-duration",
                   "--max-duration", "--cache-dir", "--no-download"):  # fmt: skip
        assert option in result.stdout
    assert "SERVICE:YYYY-MM" in result.stdout
