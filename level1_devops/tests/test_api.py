"""Unit tests of the app with FastAPI's TestClient: answers, every bad input, ops routes."""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import pytest

from duration_core import LoadedModel
from ladder_testing.programs import promtool_problems
from ladder_testing.prometheus import sample

RIDE = {"PULocationID": 43, "DOLocationID": 151, "trip_distance": 1.5}


# --- predictions -------------------------------------------------------------------------


def test_predict_equals_the_pipeline_in_process(client, model: LoadedModel) -> None:
    response = client.post("/predict", json={**RIDE, "ride_id": "r-1"})
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "duration": pytest.approx(float(model.pipeline.predict([RIDE])[0]), rel=1e-12),
        "model_version": model.version,
        "ride_id": "r-1",
    }
    assert body["duration"] == pytest.approx(4.4039, abs=1e-3)  # the course model, 43 -> 151
    assert type(body["duration"]) is float


def test_whole_float_zone_ids_are_the_same_zone(client) -> None:
    as_int = client.post("/predict", json=RIDE).json()
    as_float = client.post("/predict", json={**RIDE, "PULocationID": 43.0}).json()
    assert as_int == as_float


def test_integer_and_float_distance_give_the_same_prediction(client) -> None:
    as_int = client.post("/predict", json={**RIDE, "trip_distance": 3}).json()
    as_float = client.post("/predict", json={**RIDE, "trip_distance": 3.0}).json()
    assert as_int["duration"] == as_float["duration"]
    assert as_int["ride_id"] is None


def test_batch_answers_in_order(client, model: LoadedModel) -> None:
    rides = [
        {"PULocationID": 43, "DOLocationID": 151, "trip_distance": 1.5, "ride_id": "a"},
        {"PULocationID": 74, "DOLocationID": 75, "trip_distance": 0.8},
        {"PULocationID": 265, "DOLocationID": 1, "trip_distance": 0.0, "ride_id": "c"},
    ]
    response = client.post("/predict/batch", json={"rides": rides})
    assert response.status_code == 200
    body = response.json()
    expected = model.pipeline.predict([{k: r[k] for k in RIDE} for r in rides])
    assert [p["duration"] for p in body["predictions"]] == pytest.approx(expected.tolist())
    assert [p["ride_id"] for p in body["predictions"]] == ["a", None, "c"]
    assert body["count"] == 3
    assert body["model_version"] == model.version


# --- bad input: status code and the field named -----------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"DOLocationID": 151, "trip_distance": 1.5}, "PULocationID", "Field required"),
        ({**RIDE, "PULocationID": 0}, "PULocationID", "greater than or equal to 1"),
        ({**RIDE, "DOLocationID": 266}, "DOLocationID", "less than or equal to 265"),
        ({**RIDE, "PULocationID": "43"}, "PULocationID", "valid integer"),
        ({**RIDE, "PULocationID": 43.5}, "PULocationID", "valid integer"),
        ({**RIDE, "PULocationID": 1e300}, "PULocationID", "less than or equal to 265"),
        ({**RIDE, "PULocationID": True}, "PULocationID", "valid integer"),
        ({**RIDE, "PULocationID": None}, "PULocationID", "valid integer"),
        ({**RIDE, "trip_distance": -0.1}, "trip_distance", "greater than or equal to 0"),
        ({**RIDE, "trip_distance": 501}, "trip_distance", "less than or equal to 500"),
        ({**RIDE, "trip_distance": "far"}, "trip_distance", "valid number"),
        ({**RIDE, "trip_distance": "1.5"}, "trip_distance", "valid number"),
        ({**RIDE, "trip_distance": [1.5]}, "trip_distance", "valid number"),
        ({**RIDE, "ride_id": ""}, "ride_id", "at least 1 character"),
        ({**RIDE, "ride_id": 7}, "ride_id", "valid string"),
        ({**RIDE, "fare_amount": 9.5}, "fare_amount", "Extra inputs are not permitted"),
    ],
)
def test_bad_ride_is_422_naming_the_field(client, body, field: str, message: str) -> None:
    response = client.post("/predict", json=body)
    assert response.status_code == 422
    error = response.json()
    assert error["errors"][0]["field"] == field
    assert message in error["errors"][0]["message"]
    assert error["detail"].startswith(f"{field}: ")


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_422(client, token: str) -> None:
    content = f'{{"PULocationID": 43, "DOLocationID": 151, "trip_distance": {token}}}'
    response = client.post(
        "/predict", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"] == "trip_distance: Input should be a finite number"


def test_several_errors_are_all_named(client) -> None:
    response = client.post("/predict", json={"PULocationID": 300, "trip_distance": -1})
    assert response.status_code == 422
    fields = [e["field"] for e in response.json()["errors"]]
    assert fields == ["PULocationID", "DOLocationID", "trip_distance"]


def test_empty_host_is_refused() -> None:
    from pydantic import ValidationError

    from duration_service import Settings

    with pytest.raises(ValidationError, match="host"):
        Settings(host="")


def test_non_json_body_is_400(client) -> None:
    response = client.post(
        "/predict", content=b"PULocationID=43", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["detail"].startswith("request body is not valid JSON")


@pytest.mark.parametrize("content", [b"", b"[1, 2]", b'"ride"', b"null"])
def test_body_that_is_not_an_object_is_422(client, content: bytes) -> None:
    response = client.post(
        "/predict", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body"


def test_empty_batch_is_422(client) -> None:
    response = client.post("/predict/batch", json={"rides": []})
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "rides: List should have at least 1 item after validation, not 0"
    )


def test_oversized_batch_is_422_with_the_limit(client) -> None:
    response = client.post("/predict/batch", json={"rides": [RIDE] * 6})  # limit is 5 here
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "rides: List should have at most 5 items after validation, not 6"
    )


def test_batch_limit_is_in_the_openapi_document(client) -> None:
    schema = client.get("/openapi.json").json()["components"]["schemas"]["BatchRequest"]
    assert schema["properties"]["rides"]["maxItems"] == 5


def test_errors_of_many_bad_rides_are_capped(make_client, model_path: Path) -> None:
    with make_client(model_path=model_path, max_batch_size=1000) as client:
        bad = {"PULocationID": 0, "DOLocationID": 0, "trip_distance": -1}
        response = client.post("/predict/batch", json={"rides": [bad] * 500})
    assert response.status_code == 422
    body = response.json()
    assert len(body["errors"]) == 100
    assert body["detail"].endswith("; and 1,495 more")


def test_bad_ride_inside_a_batch_names_its_position(client) -> None:
    rides = [RIDE, {**RIDE, "DOLocationID": 0}]
    response = client.post("/predict/batch", json={"rides": rides})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "rides[1].DOLocationID"


def test_body_over_the_byte_limit_is_413_json(client) -> None:
    response = client.post(
        "/predict/batch",
        content=b"{" + b" " * 5000 + b"}",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/json"
    assert response.json()["detail"] == "request body is larger than the limit of 4,096 bytes"


def test_chunked_body_over_the_byte_limit_is_413_json(client) -> None:
    def chunks():
        yield b'{"rides": ['
        for _ in range(100):
            yield b" " * 100

    response = client.post(
        "/predict/batch", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["detail"] == "request body is larger than the limit of 4,096 bytes"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_json_sent_without_the_json_content_type_is_415(client, content_type) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = client.post(
        "/predict",
        content=b'{"PULocationID": 43, "DOLocationID": 151, "trip_distance": 1.5}',
        headers=headers,
    )
    assert response.status_code == 415
    assert response.json()["detail"] == (
        "the body must be JSON, sent with Content-Type: application/json"
    )


def test_json_error_says_where(client) -> None:
    response = client.post(
        "/predict", content=b'{"PULocationID": 43,', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["detail"].startswith("request body is not valid JSON: ")
    assert "(at character 20)" in response.json()["detail"]


def test_head_probes_and_trailing_slash(client) -> None:
    assert client.head("/health").status_code == 200
    assert client.head("/ready").status_code == 200
    assert client.post("/predict/", json=RIDE).status_code == 404


def test_unknown_route_and_wrong_method(client) -> None:
    assert client.get("/nope").status_code == 404
    response = client.get("/predict")
    assert response.status_code == 405
    assert response.json()["detail"] == "Method Not Allowed"


# --- operations routes ----------------------------------------------------------------------


def test_health_ready_and_model(client, model: LoadedModel) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {
        "status": "ready",
        "model_version": model.version,
        "reason": None,
    }
    info = client.get("/model").json()
    assert info["model_version"] == model.version
    assert info["sha256"] == model.sha256
    assert info["metadata"]["train_rows"] == 73_908
    assert info["metadata"]["metrics"]["val_rmse"] == pytest.approx(7.7587, abs=1e-3)


def test_metrics_count_requests_predictions_and_errors(
    make_client, model_path: Path, model
) -> None:
    with make_client(model_path=model_path) as fresh:
        for _ in range(3):
            fresh.post("/predict", json=RIDE)
        fresh.post("/predict/batch", json={"rides": [RIDE, RIDE]})
        fresh.post("/predict", json={**RIDE, "PULocationID": 0})
        text = fresh.get("/metrics").text
    assert sample(text, "duration_http_requests_total", route="/predict", status="200") == 3
    assert sample(text, "duration_http_requests_total", route="/predict", status="422") == 1
    assert sample(text, "duration_http_requests_total", route="/predict/batch", status="200") == 1
    assert sample(text, "duration_http_request_duration_seconds_count", route="/predict") == 4
    assert sample(text, "duration_predicted_trip_duration_seconds_count") == 5
    assert sample(text, "duration_rides_predicted_total", route="/predict/batch") == 2
    assert sample(text, "duration_errors_total", kind="validation") == 1
    assert sample(text, "duration_model_info", version=model.version, model="linear") == 1


def test_every_error_answer_is_counted_once(make_client, model_path: Path) -> None:
    with make_client(model_path=model_path, max_batch_size=2, max_body_bytes=2048) as fresh:
        as_json = {"content-type": "application/json"}
        statuses = [
            fresh.post("/predict", json={**RIDE, "PULocationID": 0}).status_code,  # 422
            fresh.post("/predict/batch", json={"rides": [RIDE] * 3}).status_code,  # 422
            fresh.post("/predict", content=b"{", headers=as_json).status_code,
            fresh.post("/predict", content=b"x" * 3000, headers=as_json).status_code,
            fresh.post(
                "/predict", content=b"{}", headers={"content-type": "text/plain"}
            ).status_code,
            fresh.get("/nope").status_code,
            fresh.put("/predict").status_code,
        ]
        text = fresh.get("/metrics").text
    assert statuses == [422, 422, 400, 413, 415, 404, 405]
    kinds = {
        "validation": 2, "bad_json": 1, "payload_too_large": 1, "unsupported_media_type": 1,
        "not_found": 1, "method_not_allowed": 1,
    }  # fmt: skip
    for kind, count in kinds.items():
        assert sample(text, "duration_errors_total", kind=kind) == count, kind
    total = sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("duration_errors_total{")
    )
    assert total == len(statuses)


# --- a model that cannot be served -----------------------------------------------------------


def assert_unavailable(client, reason: str) -> None:
    assert client.get("/health").status_code == 200
    ready = client.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["status"] == "not ready"
    assert reason in ready.json()["reason"]
    for route, body in [("/predict", RIDE), ("/predict/batch", {"rides": [RIDE]})]:
        response = client.post(route, json=body)
        assert response.status_code == 503
        assert response.json()["detail"] == f"model not loaded: {ready.json()['reason']}"
    assert client.get("/model").status_code == 503
    # /ready, /predict, /predict/batch and /model each answered 503 once
    assert 'duration_errors_total{kind="model_unavailable"} 4.0' in client.get("/metrics").text


def test_missing_model_answers_503_with_the_reason(make_client, tmp_path: Path) -> None:
    with make_client(model_path=tmp_path / "absent.zip") as client:
        assert_unavailable(client, "model file not found")


def test_corrupt_model_answers_503(make_client, tmp_path: Path) -> None:
    path = tmp_path / "corrupt.zip"
    path.write_bytes(b"not a zip at all")
    with make_client(model_path=path) as client:
        assert_unavailable(client, "not a duration-core model artifact")


def test_tampered_model_answers_503(make_client, model_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "tampered.zip"
    with zipfile.ZipFile(model_path) as src, zipfile.ZipFile(path, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "pipeline.pkl":  # one flipped byte in the middle of the pickle
                middle = len(data) // 2
                data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
            dst.writestr(name, data)
    with make_client(model_path=path) as client:
        assert_unavailable(client, "damaged or was altered")


def test_unexpected_sha256_answers_503(make_client, model_path: Path) -> None:
    with make_client(model_path=model_path, model_sha256="0" * 12) as client:
        assert_unavailable(client, "does not match the expected 000000000000")


# --- the OpenAPI document -------------------------------------------------------------------


def test_every_route_has_examples(client) -> None:
    schema = client.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if "requestBody" in operation:
                body = operation["requestBody"]["content"]["application/json"]["schema"]
                if "$ref" in body:  # a model's schema, else an inline one (the protocols')
                    body = components[body["$ref"].rsplit("/", 1)[1]]
                assert body.get("examples"), (method, path)
            content = operation["responses"]["200"]["content"]
            media = next(iter(content.values()))
            ref = media.get("schema", {}).get("$ref")
            has_example = "example" in media or (
                ref and components[ref.rsplit("/", 1)[1]].get("examples")
            )
            assert has_example, (method, path)


def test_predictions_are_finite_for_every_zone_pair_corner(make_client, model_path) -> None:
    rides = [
        {"PULocationID": pu, "DOLocationID": do, "trip_distance": d}
        for pu in (1, 264, 265)
        for do in (1, 265)
        for d in (0.0, 500.0)
    ]
    with make_client(model_path=model_path) as client:
        response = client.post("/predict/batch", json={"rides": rides})
    assert response.status_code == 200
    durations = [p["duration"] for p in response.json()["predictions"]]
    assert len(durations) == 12
    assert all(math.isfinite(d) for d in durations)


def test_metrics_pass_promtool(client) -> None:
    """Prometheus' own linter accepts the exposition (base units, _total counters, help)."""
    assert client.post("/predict", json=RIDE).status_code == 200
    assert client.post("/predict", json={}).status_code == 422
    text = client.get("/metrics").text
    assert "duration_predicted_trip_duration_seconds_bucket" in text
    assert promtool_problems(text) == ""
