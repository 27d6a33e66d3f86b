"""The protocols' bodies as OpenAPI documents them (pydantic models for the answers, JSON
Schemas for the requests, whose routes read raw bytes: Triton's binary bodies are not JSON).

Request schemas describe the JSON forms; they cannot say that a row holds one value per
column or that a tensor's shape matches its data, which the routes check (400).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from duration_core import RIDE_FIELDS
from duration_service.schemas import RIDE_EXAMPLE, Ride

#: One ride as ``/predict`` takes it: the request schemas are built from its own schema.
_RIDE = Ride.model_json_schema()
_RECORD = {k: v for k, v in _RIDE.items() if k in ("type", "properties", "required",
                                                   "additionalProperties")}  # fmt: skip
_COLUMNS = {name: _RIDE["properties"][name] for name in RIDE_FIELDS}
_RIDE_ID = _RIDE["properties"]["ride_id"]
_VALUE = {"anyOf": [*_COLUMNS.values(), _RIDE_ID]}


def invocations_schema(max_rides: int) -> dict[str, Any]:
    """JSON Schema of an ``/invocations`` body (MLflow's three input formats)."""
    rows = {"type": "array", "minItems": 1, "maxItems": max_rides}
    params = {"type": "object", "properties": {"ride_id": _RIDE_ID}, "additionalProperties": False}
    return {
        "oneOf": [
            {
                "type": "object",
                "title": "dataframe_split",
                "properties": {
                    "dataframe_split": {
                        "type": "object",
                        "properties": {
                            "columns": {"type": "array", "items": {"enum": [*_COLUMNS, "ride_id"]},
                                        "minItems": 3, "maxItems": 4, "uniqueItems": True},
                            "data": {**rows, "items": {"type": "array", "items": _VALUE}},
                            "index": {"type": "array"},
                        },
                        "required": ["columns", "data"],
                        "additionalProperties": False,
                    },
                    "params": params,
                },
                "required": ["dataframe_split"],
                "additionalProperties": False,
            },
            *(
                {
                    "type": "object",
                    "title": key,
                    "properties": {key: {**rows, "items": _RECORD}, "params": params},
                    "required": [key],
                    "additionalProperties": False,
                }
                for key in ("dataframe_records", "inputs", "instances")
            ),
        ],
        "examples": [
            {
                "dataframe_split": {
                    "columns": list(_COLUMNS),
                    "data": [[43, 151, 1.5], [74, 75, 0.8]],
                }
            },
            {"dataframe_records": [RIDE_EXAMPLE]},
        ],
    }  # fmt: skip


def infer_schema(max_rides: int) -> dict[str, Any]:
    """JSON Schema of a V2 inference request in its JSON form."""
    tensor = {
        "type": "object",
        "properties": {
            "name": {"enum": [*_COLUMNS, "ride_id"]},
            "datatype": {"enum": ["INT64", "FP64", "BYTES"]},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0},
                      "minItems": 1, "maxItems": 2},
            "data": {"type": "array", "maxItems": max_rides},
            "parameters": {"type": "object"},
        },
        "required": ["name", "datatype", "shape"],
    }  # fmt: skip
    return {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "parameters": {"type": "object"},
            "inputs": {"type": "array", "items": tensor, "minItems": 3, "maxItems": 4},
            "outputs": {
                "type": "array",
                "items": {"type": "object", "properties": {"name": {"type": "string"}},
                          "required": ["name"]},
            },
        },
        "required": ["inputs"],
        "examples": [
            {
                "inputs": [
                    {"name": "PULocationID", "datatype": "INT64", "shape": [2], "data": [43, 74]},
                    {"name": "DOLocationID", "datatype": "INT64", "shape": [2], "data": [151, 75]},
                    {"name": "trip_distance", "datatype": "FP64", "shape": [2], "data": [1.5, 0.8]},
                ]
            }
        ],
    }  # fmt: skip


def request_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    """``openapi_extra`` of a route that reads its body itself."""
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": {"schema": schema}},
        }
    }


class MlflowPredictions(BaseModel):
    """MLflow's scoring answer, with the model version(s) that answered."""

    model_config = ConfigDict(
        protected_namespaces=(),
        json_schema_extra={"examples": [{"predictions": [4.4038, 5.9611], "model_version": "1"}]},
    )

    predictions: list[float] = Field(description="predicted trip durations, minutes")
    model_version: str | None = Field(default=None, description="level 1: the served version")
    model_versions: list[str] | None = Field(default=None, description="router: per ride")
    variants: list[str] | None = Field(default=None, description="router: per ride")


class MlflowError(BaseModel):
    """MLflow's error answer, with the services' ``detail`` and field ``errors``."""

    error_code: str = Field(description="e.g. BAD_REQUEST, INVALID_PARAMETER_VALUE")
    message: str
    detail: str
    errors: list[dict[str, str]] = Field(default_factory=list)


class V2Error(BaseModel):
    """The Open Inference Protocol's error answer."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"error": "unknown model 'x'"}]})

    error: str


class V2Tensor(BaseModel):
    """One tensor of an answer (row-major ``data``)."""

    name: str
    datatype: str
    shape: list[int]
    data: list[Any]


class V2InferResponse(BaseModel):
    """The answer of ``.../infer``."""

    model_config = ConfigDict(
        protected_namespaces=(),
        json_schema_extra={
            "examples": [
                {
                    "model_name": "nyc-taxi-duration",
                    "model_version": "1",
                    "outputs": [
                        {"name": "duration", "datatype": "FP64", "shape": [2],
                         "data": [4.4038, 5.9611]},
                        {"name": "model_version", "datatype": "BYTES", "shape": [2],
                         "data": ["1", "1"]},
                    ],
                }
            ]
        },
    )  # fmt: skip

    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[V2Tensor]


class V2TensorMetadata(BaseModel):
    """An input or output of the model (``-1``: any number of rides)."""

    name: str
    datatype: str
    shape: list[int]


class V2ModelMetadata(BaseModel):
    """``GET /v2/models/{name}``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "nyc-taxi-duration",
                    "versions": ["1"],
                    "platform": "scikit-learn",
                    "inputs": [
                        {"name": "PULocationID", "datatype": "INT64", "shape": [-1]},
                        {"name": "DOLocationID", "datatype": "INT64", "shape": [-1]},
                        {"name": "trip_distance", "datatype": "FP64", "shape": [-1]},
                    ],
                    "outputs": [{"name": "duration", "datatype": "FP64", "shape": [-1]}],
                }
            ]
        }
    )

    name: str
    versions: list[str]
    platform: str
    inputs: list[V2TensorMetadata]
    outputs: list[V2TensorMetadata]


class V2ServerMetadata(BaseModel):
    """``GET /v2``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"name": "duration-serve", "version": "0.1.0", "extensions": ["binary_tensor_data"]}
            ]
        }
    )

    name: str
    version: str
    extensions: list[str]


class V2Live(BaseModel):
    """``GET /v2/health/live``."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"live": True}]})

    live: bool


class V2Ready(BaseModel):
    """``GET /v2/health/ready`` and ``.../ready``."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"ready": True, "name": "nyc-taxi-duration"}]}
    )

    ready: bool
    name: str | None = None
    reason: str | None = None
