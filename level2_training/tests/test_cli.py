"""``duration-pipeline`` as a user runs it: a subprocess in a fresh folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from duration_core import load_model

PIPELINE = str(Path(sys.executable).with_name("duration-pipeline"))


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # A clean environment: MLflow exports MLFLOW_TRACKING_URI when a test sets a tracking URI.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return subprocess.run(
        [PIPELINE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
        check=False,
    )  # fmt: skip


def test_run_then_export(tmp_path: Path) -> None:
    done = run("run", "--train", "green:2021-01", "--val", "green:2021-02",
               "--candidates", "linear,gbm", "--json", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["registered_version"] == "1"
    assert summary["aliases_moved"] == ["challenger", "champion"]
    assert summary["best_model"] == "gbm"
    assert summary["metrics"]["gbm"]["val_rmse"] <= 6.2
    assert [s["name"] for s in summary["steps"]] == [
        "ingest", "validate", "train", "evaluate", "register", "decide",
    ]  # fmt: skip
    assert "nyc-taxi-duration v1 @challenger" in done.stdout

    done = run("export", "--model-uri", "models:/nyc-taxi-duration@champion",
               "--out", "champion.zip", "--json", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert load_model(tmp_path / "champion.zip").metadata["registered_version"] == "1"


def test_bad_month_exits_1_naming_file_and_step(tmp_path: Path) -> None:
    done = run("run", "--train", "nope.parquet", "--val", "green:2021-02", cwd=tmp_path)
    assert done.returncode == 1
    assert (
        "duration-pipeline: error in step ingest: trip file not found: nope.parquet" in done.stderr
    )
    assert "Traceback" not in done.stderr


def test_unknown_candidate_is_a_usage_error(tmp_path: Path) -> None:
    done = run("run", "--train", "green:2021-01", "--val", "green:2021-02",
               "--candidates", "forest", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2
    assert "unknown candidate model(s) ['forest']" in done.stderr


def test_export_of_a_missing_model(tmp_path: Path) -> None:
    done = run("export", "--model-uri", "models:/nyc-taxi-duration@champion", "--out", "x.zip",
               cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1
    assert "there is no MLflow store at sqlite:///" in done.stderr
