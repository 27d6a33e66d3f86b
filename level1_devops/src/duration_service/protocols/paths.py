"""The error body a protocol's client expects on answers made outside its routes: a 404 or
405 from routing, a 413 from the body size limit. ``/v2/...`` answers the Open Inference
Protocol's ``{"error"}``, ``/invocations`` MLflow's ``{"error_code", "message"}``; other paths
the services' own ``{"detail", "errors"}``."""

from __future__ import annotations

from typing import Any

from duration_service.protocols import mlflow_scoring, open_inference
from duration_service.protocols.rides import ProtocolError


def error_body_for(path: str, status: int, message: str) -> dict[str, Any] | None:
    """The protocol error body for ``path`` (None: not a protocol's path)."""
    error = ProtocolError(status, message)
    if path == "/v2" or path.startswith("/v2/"):
        return open_inference.error_body(error)
    if path == "/invocations" or path.startswith("/invocations/"):
        return mlflow_scoring.error_body(error)
    return None
