"""The Open Inference Protocol V2 (KServe's V2 protocol; Seldon Core 2, MLServer, Triton):
request and answer bodies of ``POST /v2/models/{name}[/versions/{v}]/infer`` and the metadata
routes, with Triton's binary tensor data extension, which ``tritonclient`` uses by default.

Source: the KServe "Open Inference Protocol (V2 Inference Protocol)" REST specification and
Triton's ``binary_data`` extension: a body whose first ``Inference-Header-Content-Length``
bytes are the JSON request and whose rest holds each input marked
``"parameters": {"binary_data_size": n}``, in order, as little-endian values (``BYTES``: each
element a 4-byte little-endian length, then the bytes). Answers are JSON tensors (a client asking
for binary outputs reads them: the answer carries no binary header).

Inputs: ``PULocationID`` INT64, ``DOLocationID`` INT64, ``trip_distance`` FP64, each of shape
``[n]`` (or ``[n, 1]``), and optionally ``ride_id`` BYTES ``[n]``. Outputs: ``duration`` FP64
(minutes), ``model_version`` BYTES, and on the router ``variant`` BYTES, each ``[n]``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from duration_service.protocols.rides import ProtocolError, apply_ride_id, validate_rides
from duration_service.protocols.scoring import Scored
from duration_service.schemas import Ride

#: Triton's binary extension: the length of the JSON part of the body.
BINARY_HEADER = "Inference-Header-Content-Length"
#: The model's inputs (name -> V2 datatype), and the optional sticky key.
INPUTS = {"PULocationID": "INT64", "DOLocationID": "INT64", "trip_distance": "FP64"}
OPTIONAL_INPUTS = {"ride_id": "BYTES"}
#: The outputs, always; the router adds :data:`ROUTER_OUTPUTS`.
OUTPUTS = {"duration": "FP64", "model_version": "BYTES"}
ROUTER_OUTPUTS = {"variant": "BYTES"}
#: Little-endian numpy dtypes of the binary datatypes this model reads.
_BINARY_DTYPES = {"INT64": "<i8", "FP64": "<f8"}
#: Server extensions advertised by ``GET /v2``.
EXTENSIONS = ["binary_tensor_data"]


@dataclass(frozen=True)
class InferRequest:
    """A parsed inference request.

    Attributes:
        id: The request's ``id``, echoed in the answer.
        rides: The rides, validated like ``/predict``'s.
        outputs: The output names asked for; None for all of them.
    """

    id: str | None
    rides: list[Ride]
    outputs: list[str] | None


def parse_infer(
    body: bytes, header_length: str | None, max_rides: int, *, routed: bool = False
) -> InferRequest:
    """An inference request from a body, JSON or with binary tensors.

    Args:
        body: The request body.
        header_length: The :data:`BINARY_HEADER` header's value, None without one.
        max_rides: The most rides one request may hold.
        routed: The router's outputs (with ``variant``) may be asked for.

    Raises:
        ProtocolError: 400 for a body that does not parse, a missing, unknown or repeated
            input, a wrong datatype, a shape that disagrees with the data or with the other
            inputs, binary data that is missing or too long, an unknown output; 422 for bad
            values (``PULocationID[3]: Input should be less than or equal to 265``).
    """
    document, binary = _split_body(body, header_length)
    if not isinstance(document, dict) or not isinstance(document.get("inputs"), list):
        raise ProtocolError(400, 'the body must be a JSON object with an "inputs" list')
    request_id = document.get("id")
    if "id" in document and not isinstance(request_id, str):
        raise ProtocolError(400, "id must be a string")
    columns: dict[str, list[Any]] = {}
    offset = 0
    for i, tensor in enumerate(document["inputs"]):
        name, values, offset = _read_input(i, tensor, binary, offset)
        if name in columns:
            raise ProtocolError(400, f"input {name!r} is given twice")
        columns[name] = values
    if offset != len(binary):
        raise ProtocolError(
            400, f"{len(binary) - offset:,} bytes of binary data belong to no input"
        )
    missing = [name for name in INPUTS if name not in columns]
    if missing:
        raise ProtocolError(400, f"missing input {missing[0]!r} ({_expected()})")
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        sizes = ", ".join(f"{name} {n:,}" for name, n in lengths.items())
        raise ProtocolError(400, f"the inputs disagree in length: {sizes}")
    rows = [
        dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)
    ]
    parameters = document.get("parameters", {})
    if not isinstance(parameters, dict):
        raise ProtocolError(400, "parameters must be an object")
    if parameters.get("ride_id") is not None:  # other parameters (Triton's) are not ours
        apply_ride_id(parameters["ride_id"], "parameters.ride_id", rows)
    outputs = _requested(document, routed)
    rides = validate_rides(rows, max_rides, lambda row, field: f"{field or 'inputs'}[{row}]")
    return InferRequest(id=request_id, rides=rides, outputs=outputs)


def infer_body(
    model_name: str, version: str | None, request: InferRequest, scored: Scored
) -> dict[str, Any]:
    """The inference answer: one JSON tensor of shape ``[n]`` per output asked for."""
    n = len(scored.minutes)
    tensors: dict[str, tuple[str, list[Any]]] = {
        "duration": ("FP64", scored.minutes),
        "model_version": ("BYTES", scored.model_versions),
    }
    if scored.variants is not None:
        tensors["variant"] = ("BYTES", scored.variants)
    names = [name for name in request.outputs or tensors if name in tensors]
    versions = sorted(set(scored.model_versions))
    body: dict[str, Any] = {
        "model_name": model_name,
        "model_version": version or (versions[0] if len(versions) == 1 else ""),
        "outputs": [
            {"name": name, "datatype": tensors[name][0], "shape": [n], "data": tensors[name][1]}
            for name in names
        ],
    }
    if request.id is not None:
        body["id"] = request.id
    return body


def server_metadata(name: str, version: str) -> dict[str, Any]:
    """``GET /v2``: the server's name, version and extensions."""
    return {"name": name, "version": version, "extensions": EXTENSIONS}


def model_metadata(name: str, versions: list[str], *, routed: bool) -> dict[str, Any]:
    """``GET /v2/models/{name}``: versions served, inputs and outputs with datatypes and shapes
    (``-1``: any number of rides). The optional ``ride_id`` input is not listed: V2 metadata
    cannot mark an input optional, and clients send every input listed."""
    outputs = {**OUTPUTS, **(ROUTER_OUTPUTS if routed else {})}
    return {
        "name": name,
        "versions": versions,
        "platform": "scikit-learn",
        "inputs": [{"name": n, "datatype": d, "shape": [-1]} for n, d in INPUTS.items()],
        "outputs": [{"name": n, "datatype": d, "shape": [-1]} for n, d in outputs.items()],
    }


def error_body(error: ProtocolError) -> dict[str, str]:
    """The V2 error answer: ``{"error": "<message>"}``."""
    return {"error": error.message}


# -- reading ---------------------------------------------------------------------------------


def _expected() -> str:
    wanted = ", ".join(f"{n} {d}" for n, d in INPUTS.items())
    return f"the model takes {wanted}, each of shape [n]; optional ride_id BYTES"


def _split_body(body: bytes, header_length: str | None) -> tuple[Any, bytes]:
    """(the JSON document, the binary part) of a body."""
    size = len(body)
    if header_length is not None:
        try:
            size = int(header_length)
        except ValueError:
            size = -1
        if not 0 <= size <= len(body):
            raise ProtocolError(
                400, f"{BINARY_HEADER} must be a whole number of bytes, at most the body's "
                f"{len(body):,} (got {header_length[:40]!r})",
            )  # fmt: skip
    try:
        return json.loads(body[:size]), body[size:]
    except json.JSONDecodeError as exc:
        raise ProtocolError(
            400, f"request body is not valid JSON: {exc.msg} (at character {exc.pos})",
            kind="bad_json",
        ) from None  # fmt: skip
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(
            400, f"request body is not valid JSON: {exc}"[:300], kind="bad_json"
        ) from None


def _read_input(i: int, tensor: Any, binary: bytes, offset: int) -> tuple[str, list[Any], int]:
    """(name, flat values, next binary offset) of ``inputs[i]``."""
    if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
        raise ProtocolError(
            400, f"inputs[{i}] must be an object with a name, datatype, shape and data"
        )
    name = tensor["name"]
    expected = {**INPUTS, **OPTIONAL_INPUTS}.get(name)
    if expected is None:
        raise ProtocolError(400, f"unknown input {name[:100]!r} ({_expected()})")
    datatype = tensor.get("datatype")
    if datatype != expected:
        raise ProtocolError(
            400, f"input {name!r}: datatype {datatype!r}, the model expects {expected}"
        )
    shape = tensor.get("shape")
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= 2
        or not all(type(d) is int and d >= 0 for d in shape)
        or (len(shape) == 2 and shape[1] != 1)
    ):
        raise ProtocolError(
            400, f"input {name!r}: shape must be [n] or [n, 1] (got {str(shape)[:60]})"
        )
    count = shape[0]
    parameters = tensor.get("parameters", {})
    if not isinstance(parameters, dict):
        raise ProtocolError(400, f"input {name!r}: parameters must be an object")
    if "binary_data_size" in parameters:
        if "data" in tensor:
            raise ProtocolError(400, f"input {name!r}: has both data and binary_data_size")
        values, offset = _binary_values(
            name, datatype, count, parameters["binary_data_size"], binary, offset
        )
    else:
        values = _json_values(name, datatype, shape, tensor.get("data"))
    if len(values) != count:
        raise ProtocolError(
            400, f"input {name!r}: shape {shape} holds {count:,} elements, the data {len(values):,}"
        )
    return name, values, offset


def _json_values(name: str, datatype: str, shape: list[int], data: Any) -> list[Any]:
    """The flat (row-major) values of a JSON tensor, each of the datatype's JSON type: flat
    for any shape (the protocol's row-major form), or for ``[n, 1]`` also nested as ``n``
    lists of one element."""
    if not isinstance(data, list):
        raise ProtocolError(400, f"input {name!r}: data must be a list")
    flat: list[Any] = data
    if any(isinstance(item, list) for item in data):
        if len(shape) != 2 or not all(isinstance(i, list) and len(i) == 1 for i in data):
            raise ProtocolError(
                400, f"input {name!r}: data is nested in a way that disagrees with its shape "
                f"{shape} (send it flat, row-major)",
            )  # fmt: skip
        flat = [item[0] for item in data]
    for j, value in enumerate(flat):
        ok = (
            type(value) is int if datatype == "INT64"
            else type(value) in (int, float) if datatype == "FP64"
            else isinstance(value, str)
        )  # fmt: skip
        if not ok:
            raise ProtocolError(
                400, f"input {name!r}: element {j} is {json.dumps(value)[:40]}, not {datatype}"
            )
    return flat


def _binary_values(
    name: str, datatype: str, count: int, size: Any, binary: bytes, offset: int
) -> tuple[list[Any], int]:
    """(values, next offset) of a binary tensor of ``size`` bytes at ``offset``."""
    if type(size) is not int or size < 0:
        raise ProtocolError(
            400, f"input {name!r}: binary_data_size must be a whole number of bytes, at least 0 "
            f"(got {json.dumps(size)[:40]})",
        )  # fmt: skip
    if offset + size > len(binary):
        raise ProtocolError(
            400, f"input {name!r}: binary_data_size {str(size)[:40]} does not fit the "
            f"{len(binary) - offset:,} bytes of binary data left",
        )  # fmt: skip
    chunk = binary[offset : offset + size]
    if datatype == "BYTES":
        return _bytes_elements(name, chunk), offset + size
    dtype = np.dtype(_BINARY_DTYPES[datatype])
    if size != count * dtype.itemsize:
        raise ProtocolError(
            400, f"input {name!r}: {size:,} bytes for {count:,} {datatype} elements "
            f"(expected {count * dtype.itemsize:,})",
        )  # fmt: skip
    values: list[Any] = np.frombuffer(chunk, dtype=dtype).tolist()
    return values, offset + size  # a NaN or infinity is refused with the rides' rule


def _bytes_elements(name: str, chunk: bytes) -> list[str]:
    """Triton's BYTES serialization: each element a 4-byte little-endian length, its bytes."""
    out: list[str] = []
    at = 0
    while at < len(chunk):
        if at + 4 > len(chunk):
            raise ProtocolError(400, f"input {name!r}: binary BYTES data ends inside a length")
        length = int.from_bytes(chunk[at : at + 4], "little")
        at += 4
        if at + length > len(chunk):
            raise ProtocolError(400, f"input {name!r}: binary BYTES element longer than its data")
        try:
            out.append(chunk[at : at + length].decode("utf-8"))
        except UnicodeDecodeError:
            raise ProtocolError(400, f"input {name!r}: element {len(out)} is not UTF-8") from None
        at += length
    return out


def _requested(document: dict[str, Any], routed: bool) -> list[str] | None:
    """The output names the request asks for (None: all).

    Raises:
        ProtocolError: 400 for a malformed list or an output the model does not have.
    """
    if "outputs" not in document:
        return None
    outputs = document["outputs"]
    if not isinstance(outputs, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs
    ):
        raise ProtocolError(400, 'outputs must be a list of objects with a "name"')
    known = {**OUTPUTS, **(ROUTER_OUTPUTS if routed else {})}
    names = [o["name"] for o in outputs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ProtocolError(400, f"output {repeated[0][:100]!r} is asked for twice")
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ProtocolError(
            400, f"unknown output {unknown[0][:100]!r} (outputs: {', '.join(known)})"
        )
    return names or None
