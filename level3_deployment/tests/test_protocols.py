"""The standard inference protocols on the router: MLflow's scoring protocol (``/invocations``)
with MLflow's documented payloads, and the Open Inference Protocol V2 with ``tritonclient``.

A real ``duration-router`` process on a copy of the session's registry (champion v1 linear,
challenger v2 gbm at 10%) answers the real clients; each answer equals ``/predict/batch`` for
the same real rides, ride by ride and variant by variant (the split is sticky by ``ride_id``).
The in-process tests check what the router does with protocol requests: logged once per ride,
counted in the A/B test unless a version was named, 404 for versions no variant serves.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from tritonclient.utils import InferenceServerException

from duration_core import read_trips
from ladder_testing import free_port, stop_process, wait_until_answers
from ladder_testing.protocols import mlflow_payloads, ride_frame, triton_infer
from ladder_testing.router import MODEL, TOKEN, TrainedRegistry

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def router_url(
    trained_registry: TrainedRegistry, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("protocol-router")
    shutil.copyfile(trained_registry.database, folder / "mlflow.db")
    port = free_port()
    env = {
        **os.environ,
        "DURATION_ROUTER_TOKEN": TOKEN,
        "DURATION_ROUTER_MODEL_CACHE_DIR": str(folder / "cache"),
        "DURATION_ROUTER_SMOKE_MAX_SECONDS": "60",  # not what this checks (a loaded CI machine)
    }
    log = folder / "router.log"
    process = subprocess.Popen(
        [
            str(BIN / "duration-router"),
            "--tracking-uri", f"sqlite:///{folder / 'mlflow.db'}",
            "--port", str(port),
            "--prediction-log", f"sqlite:///{folder / 'prediction_log.db'}",
        ],
        env=env, cwd=folder, stdout=log.open("a"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(f"{url}/ready", process, log)
        yield url
    finally:
        stop_process(process)
    assert "Traceback" not in log.read_text()


@pytest.fixture(scope="module")
def rides() -> pd.DataFrame:
    """400 real rides of green 2021-02 with ride ids (so the split is sticky)."""
    trips = read_trips("green:2021-02").head(400)
    frame = ride_frame(trips[["PULocationID", "DOLocationID", "trip_distance"]].to_dict("records"))
    frame["ride_id"] = [f"p-{i}" for i in range(len(frame))]
    return frame


@pytest.fixture(scope="module")
def expected(router_url: str, rides: pd.DataFrame) -> pd.DataFrame:
    """What ``/predict/batch`` answers for the rides: duration, model_version, variant."""
    answer = httpx.post(
        f"{router_url}/predict/batch", json={"rides": rides.to_dict("records")}, timeout=60
    )
    assert answer.status_code == 200, answer.text
    frame = pd.DataFrame(answer.json()["predictions"])
    assert set(frame["variant"]) == {"champion", "challenger"}  # both answer some rides
    return frame


@pytest.mark.parametrize("form", ["dataframe_split", "dataframe_records", "inputs"])
def test_invocations_equal_predict(
    router_url: str, rides: pd.DataFrame, expected: pd.DataFrame, form: str
) -> None:
    answer = httpx.post(f"{router_url}/invocations", json=mlflow_payloads(rides)[form], timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "predictions": list(expected["duration"]),
        "model_versions": list(expected["model_version"]),
        "variants": list(expected["variant"]),
    }


@pytest.mark.parametrize("binary", [True, False], ids=["binary tensors", "JSON tensors"])
def test_tritonclient_infer_equals_predict(
    router_url: str, rides: pd.DataFrame, expected: pd.DataFrame, binary: bool
) -> None:
    result = triton_infer(router_url, rides, binary=binary)
    np.testing.assert_array_equal(result.as_numpy("duration"), expected["duration"].to_numpy())
    assert list(result.as_numpy("variant").astype(str)) == list(expected["variant"])
    assert list(result.as_numpy("model_version").astype(str)) == list(expected["model_version"])


def test_a_versioned_infer_reaches_the_variant_serving_it(
    router_url: str, rides: pd.DataFrame
) -> None:
    head = rides.head(50)
    forced = httpx.post(
        f"{router_url}/predict/batch", json={"rides": head.to_dict("records")},
        headers={"X-Model-Variant": "challenger"}, timeout=60,
    )  # fmt: skip
    assert forced.status_code == 200, forced.text
    gbm = [p["duration"] for p in forced.json()["predictions"]]
    result = triton_infer(router_url, head, version="2")
    np.testing.assert_array_equal(result.as_numpy("duration"), np.array(gbm))
    assert set(result.as_numpy("variant").astype(str)) == {"challenger"}
    assert result.get_response()["model_version"] == "2"

    with pytest.raises(InferenceServerException) as error:
        triton_infer(router_url, head, version="7")
    assert error.value.status() == "404"
    assert error.value.message() == (
        "model 'nyc-taxi-duration' has no version '7' here (serving: 1, 2)"
    )
    with pytest.raises(InferenceServerException) as error:
        triton_infer(router_url, head, model="other-model")
    assert error.value.status() == "404"


def test_tritonclient_metadata_lists_the_live_versions(router_url: str) -> None:
    import tritonclient.http as triton

    client = triton.InferenceServerClient(router_url.removeprefix("http://"))
    try:
        assert client.is_server_ready()
        assert client.get_server_metadata()["name"] == "duration-router"
        metadata = client.get_model_metadata(MODEL)
        assert metadata["versions"] == ["1", "2"]
        assert {o["name"] for o in metadata["outputs"]} == {"duration", "model_version", "variant"}
        assert client.is_model_ready(MODEL, "2")
        assert not client.is_model_ready(MODEL, "3")
    finally:
        client.close()


# -- in process: the log, the A/B test, the metrics ----------------------------------------------


def _infer_body(rides: list[dict[str, Any]], *, ride_id: str | None = None) -> dict[str, Any]:
    columns = {
        "PULocationID": "INT64", "DOLocationID": "INT64", "trip_distance": "FP64",
        "ride_id": "BYTES",
    }  # fmt: skip
    inputs = [
        {"name": name, "datatype": datatype, "shape": [len(rides)],
         "data": [r[name] for r in rides]}
        for name, datatype in columns.items() if all(name in r for r in rides)
    ]  # fmt: skip
    body: dict[str, Any] = {"inputs": inputs}
    if ride_id is not None:
        body["parameters"] = {"ride_id": ride_id}
    return body


def test_protocol_rides_are_logged_and_counted_like_predict(router_client: TestClient) -> None:
    client = router_client
    log = client.app.state.log
    trips = read_trips("green:2021-02").head(60)
    rides = [
        {**r, "ride_id": f"q-{i}"}
        for i, r in enumerate(trips[["PULocationID", "DOLocationID", "trip_distance"]]
                              .to_dict("records"))
    ]  # fmt: skip
    routed = client.post("/invocations", json={"dataframe_records": rides[:20]})
    assert routed.status_code == 200, routed.text
    v2 = client.post(f"/v2/models/{MODEL}/infer", json=_infer_body(rides[20:40]))
    assert v2.status_code == 200, v2.text
    one = client.post(
        f"/v2/models/{MODEL}/infer",
        json=_infer_body([{k: v for k, v in rides[40].items() if k != "ride_id"}],
                         ride_id=rides[40]["ride_id"]),
    )  # fmt: skip
    assert one.status_code == 200, one.text
    pinned = client.post(f"/v2/models/{MODEL}/versions/2/infer", json=_infer_body(rides[41:60]))
    assert pinned.status_code == 200, pinned.text
    # The same ride again through another protocol: the same variant answers (sticky).
    again = client.post("/invocations", json={"dataframe_records": rides[:20]})
    assert again.json()["variants"] == routed.json()["variants"]

    log.flush()
    frame = log.frame(shadow=False)
    assert len(frame) == 80  # every answered ride once, the repeated 20 included
    by_ride = frame.groupby("ride_id")
    assert by_ride.size().to_dict() == {
        r["ride_id"]: 2 if i < 20 else 1 for i, r in enumerate(rides)
    }
    assert set(frame["ride_id"]) == {r["ride_id"] for r in rides}
    forced = frame[frame["forced"]]
    assert sorted(forced["ride_id"]) == sorted(r["ride_id"] for r in rides[41:60])
    assert set(forced["model_version"]) == {"2"}
    assert not frame["error"].any()
    v2_variants = [d for o in v2.json()["outputs"] if o["name"] == "variant" for d in o["data"]]
    logged = frame.drop_duplicates("ride_id").set_index("ride_id")["variant"]
    assert [logged[r["ride_id"]] for r in rides[20:40]] == v2_variants

    # Counted in the A/B test: the pinned rides are left out as forced, the repeats as repeated.
    actuals = [{"ride_id": r["ride_id"], "duration": 10.0} for r in rides]
    token = {"Authorization": f"Bearer {TOKEN}"}
    assert client.post("/feedback", json={"actuals": actuals}, headers=token).status_code == 200
    report = client.get("/ab/report").json()
    assert any(
        "left out: 19 predictions forced to a variant" in note and "20 repeated" in note
        for note in report["notes"]
    ), report["notes"]


def test_protocol_requests_without_a_deployment_answer_503(
    tmp_path: Path, registry_uri: str
) -> None:
    from duration_deployment.main import create_app
    from ladder_testing.router import router_settings

    settings = router_settings(tmp_path, registry_uri, deploy_on_start=False)
    with TestClient(create_app(settings)) as client:
        assert client.get("/ping").status_code == 503
        assert client.get(f"/v2/models/{MODEL}/ready").json()["ready"] is False
        answer = client.post(f"/v2/models/{MODEL}/infer", json=_infer_body([
            {"PULocationID": 43, "DOLocationID": 151, "trip_distance": 1.5}
        ]))  # fmt: skip
        assert answer.status_code == 503
        assert list(answer.json()) == ["error"]


def test_the_variant_header_forces_protocol_rides_like_predict(router_client: TestClient) -> None:
    client = router_client
    rides = [{"PULocationID": 43, "DOLocationID": 151, "trip_distance": 1.5, "ride_id": f"h-{i}"}
             for i in range(10)]  # fmt: skip
    header = {"X-Model-Variant": "challenger"}
    forced = client.post("/invocations", json={"dataframe_records": rides}, headers=header)
    assert forced.status_code == 200, forced.text
    assert set(forced.json()["variants"]) == {"challenger"}
    v2 = client.post(f"/v2/models/{MODEL}/infer", json=_infer_body(rides), headers=header)
    assert v2.status_code == 200, v2.text
    (variants,) = [o["data"] for o in v2.json()["outputs"] if o["name"] == "variant"]
    assert set(variants) == {"challenger"}
    unknown = client.post(
        "/invocations", json={"dataframe_records": rides}, headers={"X-Model-Variant": "nope"}
    )
    assert unknown.status_code == 409
    assert unknown.json()["error_code"] == "RESOURCE_CONFLICT"
    assert unknown.json()["message"] == (
        "X-Model-Variant: no live variant named 'nope' (live: champion, challenger)"
    )
    log = client.app.state.log
    log.flush()
    frame = log.frame(shadow=False)
    assert len(frame) == 20
    assert frame["forced"].all()
