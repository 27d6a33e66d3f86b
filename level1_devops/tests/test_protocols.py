"""The standard inference protocols on a real ``duration-serve`` process: MLflow's scoring
protocol (``/invocations``) with MLflow's documented payloads, and the Open Inference Protocol
V2 with ``tritonclient``, each answer equal to ``/predict/batch`` for the same real rides."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from tritonclient.utils import InferenceServerException

from duration_core import LoadedModel, read_trips
from ladder_testing.prometheus import sample
from ladder_testing.protocols import mlflow_payloads, ride_frame, triton_infer
from test_integration import Server, start_server

MODEL = "nyc-taxi-duration"


@pytest.fixture(scope="module")
def server(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("serve"), "--model", str(model_path))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def rides() -> pd.DataFrame:
    """300 real rides of green 2021-02 (the model's validation month)."""
    trips = read_trips("green:2021-02").head(300)
    return ride_frame(trips[["PULocationID", "DOLocationID", "trip_distance"]].to_dict("records"))


@pytest.fixture(scope="module")
def expected(server: Server, rides: pd.DataFrame) -> list[float]:
    """What ``/predict/batch`` answers for the rides."""
    answer = httpx.post(f"{server.url}/predict/batch", json={"rides": rides.to_dict("records")})
    assert answer.status_code == 200, answer.text
    return [p["duration"] for p in answer.json()["predictions"]]


@pytest.mark.parametrize("form", ["dataframe_split", "dataframe_records", "inputs"])
def test_invocations_equal_predict(
    server: Server, rides: pd.DataFrame, expected: list[float], model: LoadedModel, form: str
) -> None:
    answer = httpx.post(f"{server.url}/invocations", json=mlflow_payloads(rides)[form])
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": expected, "model_version": model.version}


def test_ping_and_version(server: Server) -> None:
    assert httpx.get(f"{server.url}/ping").status_code == 200
    version = httpx.get(f"{server.url}/version")
    assert version.status_code == 200
    assert version.text == "0.1.0"


@pytest.mark.parametrize(
    ("body", "status", "code", "message"),
    [
        (b"{", 400, "BAD_REQUEST", "request body is not valid JSON: Expecting property name"),
        (b"[1]", 400, "BAD_REQUEST", "the body must be a JSON object with exactly one of"),
        (b'{"dataframe_records": [], "inputs": []}', 400, "BAD_REQUEST",
         "the body must be a JSON object with exactly one of the input fields"),
        (b'{"dataframe_split": {"columns": ["PULocationID", "DOLocationID", "trip_distance"],'
         b' "data": [[43, 151]]}}', 400, "BAD_REQUEST",
         "dataframe_split.data[0] must be a list of 3 values"),
        (b'{"dataframe_split": {"columns": ["PULocationID", "trip_distance"], "data": [[1, 2]]}}',
         422, "INVALID_PARAMETER_VALUE", "dataframe_split.columns: missing column 'DOLocationID'"),
        (b'{"dataframe_records": [{"PULocationID": 43, "DOLocationID": 300,'
         b' "trip_distance": 1.5}]}', 422, "INVALID_PARAMETER_VALUE",
         "dataframe_records[0].DOLocationID: Input should be less than or equal to 265"),
        (b'{"dataframe_records": [{"PULocationID": 43, "DOLocationID": 151,'
         b' "trip_distnace": 1.5}]}', 422, "INVALID_PARAMETER_VALUE",
         "dataframe_records[0].trip_distance: Field required"),
        (b'{"inputs": {"PULocationID": [1, 2], "DOLocationID": [1], "trip_distance": [1.0]}}',
         400, "BAD_REQUEST", "inputs: every column must be a list, all of one length"),
        (b'{"dataframe_records": [{"PULocationID": 4, "DOLocationID": 5, "trip_distance": 1},'
         b' {"PULocationID": 4, "DOLocationID": 5, "trip_distance": 1}],'
         b' "params": {"ride_id": "r"}}', 400, "BAD_REQUEST", "params.ride_id names one ride"),
        (b'{"dataframe_records": []}', 422, "INVALID_PARAMETER_VALUE", "no rides"),
    ],
)  # fmt: skip
def test_bad_invocations_name_what_is_wrong(
    server: Server, body: bytes, status: int, code: str, message: str
) -> None:
    answer = httpx.post(
        f"{server.url}/invocations", content=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == status, answer.text
    error = answer.json()
    assert error["error_code"] == code
    assert error["message"].startswith(message), error["message"]
    assert error["detail"] == error["message"]


def test_invocations_need_json(server: Server) -> None:
    answer = httpx.post(
        f"{server.url}/invocations", content=b"a,b", headers={"Content-Type": "text/csv"}
    )
    assert answer.status_code == 415
    assert answer.json()["message"] == (
        "the body must be JSON, sent with Content-Type: application/json"
    )


@pytest.mark.parametrize("binary", [True, False], ids=["binary tensors", "JSON tensors"])
def test_tritonclient_infer_equals_predict(
    server: Server, rides: pd.DataFrame, expected: list[float], model: LoadedModel, binary: bool
) -> None:
    result = triton_infer(server.url, rides, binary=binary)
    np.testing.assert_array_equal(result.as_numpy("duration"), np.array(expected))
    assert result.as_numpy("duration").dtype == np.float64
    assert set(result.as_numpy("model_version").astype(str)) == {model.version}
    assert result.get_response()["model_version"] == model.version


def test_tritonclient_versioned_infer_and_outputs(
    server: Server, rides: pd.DataFrame, expected: list[float], model: LoadedModel
) -> None:
    result = triton_infer(server.url, rides.head(5), version=model.version, outputs=["duration"])
    np.testing.assert_array_equal(result.as_numpy("duration"), np.array(expected[:5]))
    assert [o["name"] for o in result.get_response()["outputs"]] == ["duration"]
    with pytest.raises(InferenceServerException) as error:
        triton_infer(server.url, rides.head(5), version="0" * 12)
    assert error.value.status() == "404"
    assert f"has no version '000000000000' here (serving: {model.version})" in error.value.message()


def test_tritonclient_metadata_and_health(server: Server, model: LoadedModel) -> None:
    import tritonclient.http as triton

    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    try:
        assert client.is_server_live()
        assert client.is_server_ready()
        assert client.is_model_ready(MODEL)
        assert client.is_model_ready(MODEL, model.version)
        assert not client.is_model_ready("other-model")
        assert client.get_server_metadata()["extensions"] == ["binary_tensor_data"]
        metadata = client.get_model_metadata(MODEL)
        assert metadata["versions"] == [model.version]
        assert metadata["inputs"] == [
            {"name": "PULocationID", "datatype": "INT64", "shape": [-1]},
            {"name": "DOLocationID", "datatype": "INT64", "shape": [-1]},
            {"name": "trip_distance", "datatype": "FP64", "shape": [-1]},
        ]
        assert metadata["outputs"][0] == {"name": "duration", "datatype": "FP64", "shape": [-1]}
        with pytest.raises(InferenceServerException) as error:
            client.get_model_metadata("other-model")
        assert error.value.status() == "404"
        assert "unknown model 'other-model'" in error.value.message()
    finally:
        client.close()


def _tensors(n: int = 2, **changes: dict | None) -> dict:
    """Two real rides as JSON tensors; a change updates an input (None removes it)."""
    tensors = {
        "PULocationID": {"datatype": "INT64", "shape": [n], "data": [43, 74][:n]},
        "DOLocationID": {"datatype": "INT64", "shape": [n], "data": [151, 75][:n]},
        "trip_distance": {"datatype": "FP64", "shape": [n], "data": [1.5, 0.8][:n]},
    }
    for name, change in changes.items():
        tensors[name] = {**tensors.get(name, {}), **change} if change is not None else {}
    return {"inputs": [{"name": k, **v} for k, v in tensors.items() if v]}


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (_tensors(PULocationID={"datatype": "INT32"}), 400,
         "input 'PULocationID': datatype 'INT32', the model expects INT64"),
        (_tensors(trip_distance={"datatype": "FP32"}), 400,
         "input 'trip_distance': datatype 'FP32', the model expects FP64"),
        (_tensors(DOLocationID={"shape": [3]}), 400,
         "input 'DOLocationID': shape [3] holds 3 elements, the data 2"),
        (_tensors(DOLocationID={"shape": [1], "data": [151]}), 400,
         "the inputs disagree in length: PULocationID 2, DOLocationID 1, trip_distance 2"),
        (_tensors(trip_distance=None), 400, "missing input 'trip_distance'"),
        (_tensors(fare={"datatype": "FP64", "shape": [2], "data": [1, 2]}), 400,
         "unknown input 'fare'"),
        (_tensors(PULocationID={"data": [43, 1.5]}), 400,
         "input 'PULocationID': element 1 is 1.5, not INT64"),
        (_tensors(PULocationID={"data": [43, 266]}), 422,
         "PULocationID[1]: Input should be less than or equal to 265"),
        (_tensors(trip_distance={"data": [1.5, -1]}), 422,
         "trip_distance[1]: Input should be greater than or equal to 0"),
        ({"inputs": "x"}, 400, 'the body must be a JSON object with an "inputs" list'),
        ({**_tensors(), "outputs": [{"name": "eta"}]}, 400, "unknown output 'eta'"),
        ({**_tensors(), "outputs": [{"name": "duration"}, {"name": "duration"}]}, 400,
         "output 'duration' is asked for twice"),
        (_tensors(PULocationID={"data": [[43, 74]]}), 400,
         "input 'PULocationID': data is nested in a way that disagrees with its shape [2]"),
        (_tensors(PULocationID={"shape": [2, 1], "data": [[43, 74], []]}), 400,
         "input 'PULocationID': data is nested in a way that disagrees with its shape [2, 1]"),
    ],
)  # fmt: skip
def test_bad_infer_requests_get_the_v2_error(
    server: Server, body: dict, status: int, message: str
) -> None:
    answer = httpx.post(f"{server.url}/v2/models/{MODEL}/infer", json=body)
    assert answer.status_code == status, answer.text
    assert list(answer.json()) == ["error"]
    assert answer.json()["error"].startswith(message), answer.json()


def test_binary_tensors_that_do_not_fit_are_refused(server: Server) -> None:
    header = json.dumps(
        {"inputs": [
            {"name": "PULocationID", "datatype": "INT64", "shape": [2],
             "parameters": {"binary_data_size": 16}},
            {"name": "DOLocationID", "datatype": "INT64", "shape": [2], "data": [1, 2]},
            {"name": "trip_distance", "datatype": "FP64", "shape": [2],
             "parameters": {"binary_data_size": 16}},
        ]}
    ).encode()  # fmt: skip
    ints = np.array([43, 74], "<i8").tobytes()
    url = f"{server.url}/v2/models/{MODEL}/infer"

    def post(body: bytes, length: int | str) -> httpx.Response:
        return httpx.post(
            url, content=body, headers={"Inference-Header-Content-Length": str(length)}
        )

    floats = np.array([1.5, 0.8], "<f8").tobytes()
    good = post(header + ints + floats, len(header))
    assert good.status_code == 200, good.text
    assert good.json()["outputs"][0]["shape"] == [2]
    short = post(header + ints + floats[:8], len(header))
    assert short.status_code == 400
    assert (
        "binary_data_size 16 does not fit the 8 bytes of binary data left" in short.json()["error"]
    )
    extra = post(header + ints + floats + b"\0" * 8, len(header))
    assert extra.json()["error"] == "8 bytes of binary data belong to no input"
    nan = post(header + ints + np.array([1.5, np.nan], "<f8").tobytes(), len(header))
    assert nan.status_code == 422
    assert nan.json()["error"] == "trip_distance[1]: Input should be a finite number"
    assert post(header, 10**9).status_code == 400


def test_protocol_rides_are_counted_by_route(server: Server) -> None:
    before = httpx.get(f"{server.url}/metrics").text
    httpx.post(f"{server.url}/v2/models/{MODEL}/infer", json=_tensors())
    httpx.post(f"{server.url}/invocations", json={"inputs": [
        {"PULocationID": 43, "DOLocationID": 151, "trip_distance": 1.5}]})  # fmt: skip
    after = httpx.get(f"{server.url}/metrics").text
    name = "duration_rides_predicted_total"
    for route, rides in (("/v2/models/{model_name}/infer", 2), ("/invocations", 1)):
        assert sample(after, name, route=route) - sample(before, name, route=route) == rides


def test_nested_n_by_1_tensors_and_a_null_ride_id_parameter(server: Server) -> None:
    body = _tensors(PULocationID={"shape": [2, 1], "data": [[43], [74]]})
    nested = httpx.post(f"{server.url}/v2/models/{MODEL}/infer", json=body)
    flat = httpx.post(f"{server.url}/v2/models/{MODEL}/infer", json=_tensors())
    assert nested.status_code == 200, nested.text
    assert nested.json()["outputs"] == flat.json()["outputs"]
    one = _tensors(1, ride_id={"datatype": "BYTES", "shape": [1], "data": ["r-1"]})
    answer = httpx.post(
        f"{server.url}/v2/models/{MODEL}/infer", json={**one, "parameters": {"ride_id": None}}
    )
    assert answer.status_code == 200, answer.text


def test_binary_data_size_must_be_a_whole_number(server: Server) -> None:
    header = json.dumps({"inputs": [
        {"name": "PULocationID", "datatype": "INT64", "shape": [1],
         "parameters": {"binary_data_size": "8"}},
        {"name": "DOLocationID", "datatype": "INT64", "shape": [1], "data": [1]},
        {"name": "trip_distance", "datatype": "FP64", "shape": [1], "data": [1.0]},
    ]}).encode()  # fmt: skip
    answer = httpx.post(
        f"{server.url}/v2/models/{MODEL}/infer",
        content=header + np.array([43], "<i8").tobytes(),
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "input 'PULocationID': binary_data_size must be a whole number of bytes, "
        'at least 0 (got "8")'
    }


def test_answers_made_outside_the_routes_speak_the_protocols(server: Server) -> None:
    big = b"[" + b"1," * 2_500_000 + b"1]"  # over the 4 MiB default
    v2 = httpx.post(f"{server.url}/v2/models/{MODEL}/infer", content=big)
    assert v2.status_code == 413
    assert v2.json() == {"error": "request body is larger than the limit of 4,194,304 bytes"}
    mlflow = httpx.post(
        f"{server.url}/invocations", content=big, headers={"Content-Type": "application/json"}
    )
    assert mlflow.status_code == 413
    assert mlflow.json()["error_code"] == "BAD_REQUEST"
    assert mlflow.json()["message"] == "request body is larger than the limit of 4,194,304 bytes"

    def chunks():
        yield from (big[i : i + 65_536] for i in range(0, len(big), 65_536))

    chunked = httpx.post(f"{server.url}/v2/models/{MODEL}/infer", content=chunks())
    assert chunked.status_code == 413
    assert list(chunked.json()) == ["error"]
    for path in ("/v2/models", f"/v2/models/{MODEL}/versions//infer"):
        missing = httpx.post(f"{server.url}{path}", json={})
        assert missing.status_code == 404
        assert missing.json() == {"error": "Not Found"}
    wrong = httpx.get(f"{server.url}/invocations")
    assert wrong.status_code == 405
    assert wrong.json()["error_code"] == "BAD_REQUEST"
    assert wrong.json()["message"] == "Method Not Allowed"
    assert httpx.get(f"{server.url}/predict-nothing").json() == {
        "detail": "Not Found", "errors": [],
    }  # fmt: skip


def test_probes_answer_head_and_omit_nulls(server: Server) -> None:
    for path in ("/ping", "/v2/health/live", "/v2/health/ready"):
        assert httpx.head(f"{server.url}{path}").status_code == 200, path
    assert httpx.get(f"{server.url}/v2/health/ready").json() == {"ready": True}
    assert httpx.get(f"{server.url}/v2/models/{MODEL}/ready").json() == {
        "ready": True, "name": MODEL,
    }  # fmt: skip


def test_a_client_that_hangs_up_mid_body_is_no_internal_error(server: Server) -> None:
    before = httpx.get(f"{server.url}/metrics").text
    host, port = server.url.removeprefix("http://").split(":")
    for path in ("/invocations", f"/v2/models/{MODEL}/infer"):
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                'Content-Length: 1000\r\n\r\n{"inputs":'.encode()
            )
            time.sleep(0.3)
    deadline = time.monotonic() + 10
    name = "duration_errors_total"
    while time.monotonic() < deadline:
        after = httpx.get(f"{server.url}/metrics").text
        if (
            sample(after, name, kind="client_disconnected")
            - sample(before, name, kind="client_disconnected")
            >= 2
        ):
            break
        time.sleep(0.1)
    assert (
        sample(after, name, kind="client_disconnected")
        - sample(before, name, kind="client_disconnected")
        == 2
    )
    assert sample(after, name, kind="internal") == sample(before, name, kind="internal")
    assert "Traceback" not in server.log.read_text()
