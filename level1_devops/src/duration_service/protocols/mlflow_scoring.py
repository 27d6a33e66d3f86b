"""MLflow's scoring protocol: the body ``mlflow models serve`` takes on ``POST /invocations``
and the answer it gives, so a client written for an MLflow model server works unchanged.

Request (one of, as documented in MLflow's "Deploy MLflow models: local inference server"):

- ``{"dataframe_split": {"columns": [...], "data": [[...], ...], "index": [...]}}``
  (``pandas.DataFrame.to_dict(orient="split")``; ``index`` is ignored);
- ``{"dataframe_records": [{...}, ...]}`` (``orient="records"``);
- ``{"inputs": ...}`` or ``{"instances": ...}``: a list of records or a dict of columns.

Columns are the model signature's ``PULocationID``, ``DOLocationID``, ``trip_distance``, and
optionally ``ride_id`` (the router's sticky key). ``"params": {"ride_id": ...}`` gives the
ride id of a one-ride request. Answer: ``{"predictions": [minutes, ...]}``, what MLflow's
server answers for this model; the services add which model version (and, on the router,
which variant) answered each ride. Errors answer MLflow's ``{"error_code", "message"}`` plus the
services' own ``detail`` and ``errors``, with ``/predict``'s statuses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from duration_core import RIDE_FIELDS
from duration_service.protocols.rides import ProtocolError, apply_ride_id, validate_rides
from duration_service.protocols.scoring import Scored
from duration_service.schemas import Ride

#: The input formats MLflow's scoring server takes.
FORMATS = ("dataframe_split", "dataframe_records", "inputs", "instances")
#: The model signature's columns, and the optional sticky key.
COLUMNS: tuple[str, ...] = RIDE_FIELDS
OPTIONAL_COLUMNS = ("ride_id",)
#: MLflow's error codes (``mlflow.protos.databricks_pb2``) by the status answered.
ERROR_CODES = {
    400: "BAD_REQUEST",
    404: "RESOURCE_DOES_NOT_EXIST",
    405: "BAD_REQUEST",
    409: "RESOURCE_CONFLICT",
    413: "BAD_REQUEST",
    415: "BAD_REQUEST",
    422: "INVALID_PARAMETER_VALUE",
    503: "TEMPORARILY_UNAVAILABLE",
}


def parse_invocation(document: Any, max_rides: int) -> list[Ride]:
    """The rides of an ``/invocations`` body (already parsed JSON).

    Raises:
        ProtocolError: 400 when the body is not one of the formats or its parts have the
            wrong shape (rows longer than the columns, unknown keys), 422 when a column is
            missing or unknown or a value is bad (named as ``dataframe_records[3].PULocationID``
            or ``dataframe_split.data[3].PULocationID``).
    """
    if not isinstance(document, dict):
        raise ProtocolError(400, f"the body must be a JSON object with {_one_of()}")
    formats = [key for key in document if key in FORMATS]
    unknown = sorted(set(document) - set(FORMATS) - {"params"})
    if len(formats) != 1 or unknown:
        extra = f" (unknown: {', '.join(unknown)})" if unknown else ""
        raise ProtocolError(400, f"the body must be a JSON object with {_one_of()}{extra}")
    name = formats[0]
    data = document[name]
    if name == "dataframe_split":
        rows = _split_rows(data)
        where = _located("dataframe_split.data")
    elif isinstance(data, dict):  # inputs / instances as a dict of columns
        rows = _column_rows(name, data)
        where = _located(name)
    elif isinstance(data, list):
        rows = data
        where = _located(name)
    else:
        raise ProtocolError(
            400, f"{name} must be a list of records" + ("" if name == "dataframe_records"
                                                         else " or an object of columns")
        )  # fmt: skip
    if "params" in document:
        params = document["params"]
        if not isinstance(params, dict):
            raise ProtocolError(400, "params must be an object")
        unknown = sorted(set(params) - {"ride_id"})
        if unknown:
            raise ProtocolError(
                400, f"params.{unknown[0][:100]}: unknown parameter (known: ride_id)"
            )
        if params.get("ride_id") is not None:  # null: no request-level ride id
            rows = list(rows)
            apply_ride_id(params["ride_id"], "params.ride_id", rows)
    return validate_rides(rows, max_rides, where)


def predictions_body(scored: Scored, *, routed: bool) -> dict[str, Any]:
    """``{"predictions": [...]}`` plus the model version(s) that answered.

    Level 1 (one model) adds ``model_version``; the router (``routed``) adds
    ``model_versions`` and ``variants``, one per ride.
    """
    body: dict[str, Any] = {"predictions": scored.minutes}
    if routed:
        body["model_versions"] = scored.model_versions
        body["variants"] = scored.variants or []
    elif scored.model_versions:
        body["model_version"] = scored.model_versions[0]
    return body


def error_body(error: ProtocolError) -> dict[str, Any]:
    """MLflow's error answer for ``error``, with the services' ``detail`` and ``errors``."""
    return {
        "error_code": ERROR_CODES.get(error.status, "INTERNAL_ERROR"),
        "message": error.message,
        "detail": error.message,
        "errors": error.errors,
    }


def _one_of() -> str:
    return "exactly one of the input fields " + ", ".join(FORMATS) + " (and optionally params)"


def _located(prefix: str) -> Any:
    def where(row: int, field: str) -> str:
        return f"{prefix}[{row}].{field}" if field else f"{prefix}[{row}]"

    return where


def _check_columns(where: str, columns: Sequence[Any]) -> None:
    """422 naming a missing, unknown or repeated column."""
    names = [c for c in columns if isinstance(c, str)]
    if len(names) != len(columns):
        raise ProtocolError(400, f"{where}: column names must be strings")
    missing = [c for c in COLUMNS if c not in names]
    unknown = [c for c in names if c not in COLUMNS + OPTIONAL_COLUMNS]
    repeated = sorted({c for c in names if names.count(c) > 1})
    problem = (
        f"missing column {missing[0]!r}" if missing
        else f"unknown column {unknown[0][:100]!r}" if unknown
        else f"column {repeated[0]!r} is given twice" if repeated
        else None
    )  # fmt: skip
    if problem is not None:
        message = f"{where}: {problem} (the model takes {', '.join(COLUMNS)}; optional ride_id)"
        raise ProtocolError(
            422, message, errors=[{"field": where, "message": message, "type": "columns"}]
        )


def _split_rows(data: Any) -> list[dict[str, Any]]:
    """``{"columns": [...], "data": [[...]]}`` -> one dict per row."""
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("columns"), list)
        or not (isinstance(data.get("data"), list))
    ):
        raise ProtocolError(
            400, 'dataframe_split must be an object with "columns" and "data" lists'
        )
    unknown = sorted(set(data) - {"columns", "data", "index"})
    if unknown:
        raise ProtocolError(400, f"dataframe_split: unknown key {unknown[0][:100]!r}")
    columns: list[Any] = data["columns"]
    _check_columns("dataframe_split.columns", columns)
    rows = []
    for i, row in enumerate(data["data"]):
        if not isinstance(row, list) or len(row) != len(columns):
            raise ProtocolError(
                400, f"dataframe_split.data[{i}] must be a list of {len(columns)} values, "
                "one per column",
            )  # fmt: skip
        rows.append(dict(zip(columns, row, strict=True)))
    return rows


def _column_rows(name: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    """``{"PULocationID": [...], ...}`` -> one dict per row (columns of equal length)."""
    _check_columns(name, list(data))
    lengths = {column: len(v) for column, v in data.items() if isinstance(v, list)}
    if len(lengths) != len(data) or len(set(lengths.values())) > 1:
        sizes = ", ".join(f"{c} {n}" for c, n in lengths.items())
        raise ProtocolError(
            400, f"{name}: every column must be a list, all of one length (got {sizes or 'none'})"
        )
    columns = list(data)
    return [dict(zip(columns, values, strict=True)) for values in zip(*data.values(), strict=True)]
