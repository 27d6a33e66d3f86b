"""Clients of the standard inference protocols, as people point them at a service: MLflow's
documented scoring payloads and ``tritonclient``'s Open Inference Protocol V2 client.

``tritonclient`` is imported when called: only the levels that serve a model install it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: The model's inputs, in the signature's order, with their numpy dtypes.
INPUTS = {"PULocationID": np.int64, "DOLocationID": np.int64, "trip_distance": np.float64}


def ride_frame(rides: list[dict[str, Any]]) -> pd.DataFrame:
    """The rides as a frame of the signature's columns (and ``ride_id`` when they have one)."""
    frame = pd.DataFrame(rides)
    return frame.astype(dict(INPUTS))


def mlflow_payloads(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """The same rides in each of MLflow's scoring formats (``pandas.DataFrame.to_dict``, as
    MLflow's docs build them)."""
    return {
        "dataframe_split": {"dataframe_split": frame.to_dict(orient="split", index=False)},
        "dataframe_records": {"dataframe_records": frame.to_dict(orient="records")},
        "inputs": {"inputs": frame.to_dict(orient="list")},
    }


def triton_infer(
    url: str,
    frame: pd.DataFrame,
    *,
    model: str = "nyc-taxi-duration",
    version: str = "",
    binary: bool = True,
    outputs: list[str] | None = None,
) -> Any:
    """``tritonclient.http.InferenceServerClient.infer`` of the frame's rides (binary tensors by
    default, as the client sends them); a ``ride_id`` column is sent as a BYTES input.

    Returns:
        The client's ``InferResult`` (``as_numpy("duration")``).
    """
    import tritonclient.http as triton

    client = triton.InferenceServerClient(url.removeprefix("http://"), network_timeout=60)
    try:
        inputs = []
        for name, dtype in INPUTS.items():
            tensor = triton.InferInput(name, [len(frame)], "INT64" if dtype is np.int64 else "FP64")
            tensor.set_data_from_numpy(frame[name].to_numpy(dtype), binary_data=binary)
            inputs.append(tensor)
        if "ride_id" in frame:
            tensor = triton.InferInput("ride_id", [len(frame)], "BYTES")
            tensor.set_data_from_numpy(frame["ride_id"].to_numpy(object), binary_data=binary)
            inputs.append(tensor)
        requested = [triton.InferRequestedOutput(n, binary_data=binary) for n in outputs or []]
        return client.infer(model, inputs, model_version=version, outputs=requested or None)
    finally:
        client.close()
