"""A registered version loads and serves with MLflow's own tools outside this repository.

The environment the model is loaded in is a new virtual environment made by ``uv`` that holds
only the model's ``requirements.txt`` (MLflow and PyPI packages): ``duration_core`` is not
installed there, so the model works only if its code travels with it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import mlflow.artifacts
import numpy as np
import pandas as pd
import pytest

from duration_core import read_trips
from duration_core.features import RIDE_FIELDS
from duration_training import PipelineResult, run_pipeline
from duration_training.packaging import model_requirements, requirement_name
from ladder_testing.net import free_port
from ladder_testing.processes import stop_process, wait_until_answers

NAME = "nyc-taxi-duration"
BIN = Path(sys.executable).parent
#: Loads the model folder argv[1] with pyfunc, predicts the rides of argv[2], writes argv[3].
LOAD_AND_PREDICT = """
import sys, json
import mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
rides = pd.read_parquet(sys.argv[2])
json.dump([float(x) for x in model.predict(rides)], open(sys.argv[3], "w"))
"""


def uv() -> str:
    found = shutil.which("uv", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        pytest.skip("uv is not installed: pip install uv (level2's test extra has it)")
    return found


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, PipelineResult]:
    """A working folder where the pipeline registered v1 (gbm) as champion."""
    folder = tmp_path_factory.mktemp("registry")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        result = run_pipeline(["green:2021-01"], "green:2021-02")
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    mlflow.set_tracking_uri(None)
    return folder, result


@pytest.fixture(scope="module")
def rides() -> pd.DataFrame:
    """1,000 real rides of green 2021-02, typed as the services send them."""
    return (
        read_trips("green:2021-02")
        .head(1000)[list(RIDE_FIELDS)]
        .astype({"PULocationID": "int64", "DOLocationID": "int64", "trip_distance": "float64"})
    )


def model_folder(registry: Path, into: Path) -> Path:
    """The champion's files, downloaded from the registry in ``registry`` into ``into``."""
    mlflow.set_tracking_uri(f"sqlite:///{registry / 'mlflow.db'}")
    try:
        return Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{NAME}@champion", dst_path=str(into)
            )
        )
    finally:
        mlflow.set_tracking_uri(None)
        os.environ.pop("MLFLOW_TRACKING_URI", None)  # which set_tracking_uri also exports


def test_requirements_are_pinned_pypi_packages_without_the_core() -> None:
    pinned = model_requirements()
    names = [requirement_name(r) for r in pinned]
    assert "duration-core" not in names
    assert {"scikit-learn", "pandas", "numpy", "pyarrow", "skops"} <= set(names)
    assert all("==" in r for r in pinned)


def test_the_version_declares_the_services_schema_and_carries_the_core(
    trained: tuple[Path, PipelineResult], tmp_path: Path
) -> None:
    folder = model_folder(trained[0], tmp_path)
    info = mlflow.models.Model.load(str(folder))
    assert [(c["name"], c["type"]) for c in info.signature.inputs.to_dict()] == [
        ("PULocationID", "long"),
        ("DOLocationID", "long"),
        ("trip_distance", "double"),
    ]
    assert [(c["name"], c["type"]) for c in info.signature.outputs.to_dict()] == [
        ("duration", "double")
    ]
    assert (folder / "code" / "duration_core" / "features.py").is_file()
    assert not (folder / "code" / "duration_core" / "data").exists()  # code only, no months
    requirements = (folder / "requirements.txt").read_text().split()
    assert not any(r.startswith("duration-core") for r in requirements)


@pytest.fixture(scope="module")
def fresh_env(trained: tuple[Path, PipelineResult], tmp_path_factory) -> tuple[Path, Path]:
    """(a new venv with only the champion's requirements.txt, the champion's folder)."""
    root = tmp_path_factory.mktemp("fresh")
    folder = model_folder(trained[0], root / "model")
    venv = root / "venv"
    subprocess.run([uv(), "venv", "-q", "-p", sys.executable, str(venv)], check=True)
    subprocess.run(
        [uv(), "pip", "install", "-q", "-r", str(folder / "requirements.txt")],
        check=True,
        env={**os.environ, "VIRTUAL_ENV": str(venv)},
    )
    return venv, folder


def test_pyfunc_in_a_fresh_env_predicts_what_the_pipeline_predicts(
    trained: tuple[Path, PipelineResult], fresh_env: tuple[Path, Path], rides, tmp_path: Path
) -> None:
    venv, folder = fresh_env
    python = str(venv / "bin" / "python")
    no_core = subprocess.run([python, "-c", "import duration_core"], capture_output=True)
    assert no_core.returncode == 1  # the library is not installed there: the model brings it
    rides.to_parquet(tmp_path / "rides.parquet")
    subprocess.run(
        [python, "-c", LOAD_AND_PREDICT, str(folder), str(tmp_path / "rides.parquet"),
         str(tmp_path / "out.json")],
        check=True, cwd=tmp_path,
    )  # fmt: skip
    predicted = np.array(json.loads((tmp_path / "out.json").read_text()))
    in_process = trained[1].best.pipeline.predict(rides)
    assert predicted.shape == (1000,)
    np.testing.assert_array_equal(predicted, in_process)


@pytest.fixture(scope="module")
def mlflow_serve(trained: tuple[Path, PipelineResult], tmp_path_factory) -> Iterator[str]:
    """``mlflow models serve -m models:/nyc-taxi-duration@champion --env-manager uv``."""
    registry = trained[0]
    uv()  # MLflow runs uv from PATH to build the model's environment
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "mlflow-serve.log"
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{registry / 'mlflow.db'}",
        "MLFLOW_ENV_ROOT": str(tmp_path_factory.mktemp("envs")),
    }
    command = [str(BIN / "mlflow"), "models", "serve", "-m", f"models:/{NAME}@champion",
               "--env-manager", "uv", "-h", "127.0.0.1", "-p", str(port)]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_until_answers(f"http://127.0.0.1:{port}/ping", process, log, timeout=600, status=200)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)


def test_mlflow_models_serve_answers_both_dataframe_formats_alike(
    mlflow_serve: str, trained: tuple[Path, PipelineResult], rides: pd.DataFrame
) -> None:
    sample = rides.head(50)
    split = httpx.post(
        f"{mlflow_serve}/invocations",
        json={"dataframe_split": sample.to_dict(orient="split", index=False)},
        timeout=30,
    )
    records = httpx.post(
        f"{mlflow_serve}/invocations",
        json={"dataframe_records": sample.to_dict(orient="records")},
        timeout=30,
    )
    assert split.status_code == records.status_code == 200
    assert split.json()["predictions"] == records.json()["predictions"]
    np.testing.assert_allclose(
        split.json()["predictions"], trained[1].best.pipeline.predict(sample), rtol=0, atol=1e-12
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "valid JSON"),
        (b'{"rides": []}', "exactly one of the input fields"),
        (b'{"dataframe_records": [{"PULocationID": "x", "DOLocationID": 1, "trip_distance": 1}]}',
         "PULocationID"),
        (b'{"dataframe_records": [{"DOLocationID": 1, "trip_distance": 1.0}]}',
         "missing inputs ['PULocationID']"),
    ],
)  # fmt: skip
def test_mlflow_models_serve_refuses_bad_bodies_with_a_4xx(
    mlflow_serve: str, body: bytes, message: str
) -> None:
    answer = httpx.post(
        f"{mlflow_serve}/invocations",
        content=body,
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert 400 <= answer.status_code < 500, answer.text
    assert message in answer.json()["message"]
