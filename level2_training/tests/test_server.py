"""Against a real ``mlflow server`` (SQLite backend, served artifacts) on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from duration_core import read_trips
from duration_training import PipelineConfig, run_pipeline
from ladder_testing import free_port, stop_process, wait_until_answers

MLFLOW = str(Path(sys.executable).with_name("mlflow"))


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log = folder / "server.log"
    process = subprocess.Popen(
        [MLFLOW, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{folder / 'server.db'}",
         "--artifacts-destination", str(folder / "artifacts")],
        stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=folder,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(f"{url}/health", process, log, status=200)
        yield url
    finally:
        stop_process(process)


def test_pipeline_against_a_server_then_load_the_champion_elsewhere(
    tracking_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")  # restored afterwards (MLflow exports it)
    result = run_pipeline(
        ["green:2021-01"], "green:2021-02", tracking_uri=tracking_server,
        config=PipelineConfig(candidates=("linear", "gbm")),
    )  # fmt: skip
    assert result.tracking_uri == tracking_server
    assert result.aliases_moved == ["challenger", "champion"]
    assert not (tmp_path / "mlflow.db").exists()  # nothing local: the server holds it all

    rides = read_trips("green:2021-03").head(300)
    fields = rides[["PULocationID", "DOLocationID", "trip_distance"]].astype("float64")
    (tmp_path / "rides.json").write_text(fields.to_json(orient="records"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = (
        "import json, mlflow, pandas as pd\n"
        "rides = pd.DataFrame(json.load(open('../rides.json')))\n"
        "model = mlflow.sklearn.load_model('models:/nyc-taxi-duration@champion')\n"
        "print(json.dumps(model.predict(rides).tolist()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=elsewhere, capture_output=True, text=True, timeout=300,
        env={**os.environ, "MLFLOW_TRACKING_URI": tracking_server}, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = np.array(json.loads(done.stdout.strip().splitlines()[-1]))
    np.testing.assert_array_equal(loaded, result.best.pipeline.predict(fields))
