"""Against a real ``mlflow server`` (SQLite backend, served artifacts, MLflow's basic-auth app)
on 127.0.0.1: the pipeline with a user of its own; a read-only user loads the champion but
cannot register a version or move an alias."""

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
from ladder_testing.mlflow_auth import PIPELINE_GRANTS, READER_GRANTS
from ladder_testing.services import Server, mlflow_server

#: In a fresh process, as the read-only user: load the champion, predict the rides, then try
#: to register a version and to move an alias.
ELSEWHERE = """
import json, mlflow, pandas as pd
from mlflow.exceptions import MlflowException
rides = pd.DataFrame(json.load(open('../rides.json')))
model = mlflow.sklearn.load_model('models:/nyc-taxi-duration@champion')
client = mlflow.MlflowClient()
champion = client.get_model_version_by_alias('nyc-taxi-duration', 'champion')
refused = {}
for what, call in {
    'register': lambda: client.create_model_version(
        'nyc-taxi-duration', champion.source, run_id=champion.run_id),
    'alias': lambda: client.set_registered_model_alias('nyc-taxi-duration', 'champion', '1'),
}.items():
    try:
        call()
        refused[what] = None
    except MlflowException as exc:
        refused[what] = exc.error_code
print(json.dumps({'minutes': model.predict(rides).tolist(), 'refused': refused}))
"""


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as server:
        yield server


def test_pipeline_against_a_server_then_load_the_champion_elsewhere(
    tracking_server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = tracking_server.url
    pipeline = tracking_server.add_user("pipeline", PIPELINE_GRANTS)
    reader = tracking_server.add_user("reader", READER_GRANTS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")  # restored afterwards (MLflow exports it)
    for name, value in pipeline.env.items():
        monkeypatch.setenv(name, value)
    result = run_pipeline(
        ["green:2021-01"], "green:2021-02", tracking_uri=url,
        config=PipelineConfig(candidates=("linear", "gbm")),
    )  # fmt: skip
    assert result.tracking_uri == url
    assert result.aliases_moved == ["challenger", "champion"]
    assert not (tmp_path / "mlflow.db").exists()  # nothing local: the server holds it all

    rides = read_trips("green:2021-03").head(300)
    fields = rides[["PULocationID", "DOLocationID", "trip_distance"]].astype("float64")
    (tmp_path / "rides.json").write_text(fields.to_json(orient="records"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    done = subprocess.run(
        [sys.executable, "-c", ELSEWHERE], cwd=elsewhere, capture_output=True, text=True,
        timeout=300, env=env | reader.env | {"MLFLOW_TRACKING_URI": url}, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    np.testing.assert_array_equal(answer["minutes"], result.best.pipeline.predict(fields))
    # MLflow answers 403: READ on the model does not reach CreateModelVersion (EDIT) or
    # SetRegisteredModelAlias (EDIT).
    assert answer["refused"] == {"register": "PERMISSION_DENIED", "alias": "PERMISSION_DENIED"}
