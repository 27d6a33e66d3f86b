"""The error answers each group of routes documents in the OpenAPI schema (one source)."""

from __future__ import annotations

from typing import Any

from duration_service.schemas import ErrorResponse

Responses = dict[int | str, dict[str, Any]]

_ERROR_JSON = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}

PREDICTION_ERRORS: Responses = {
    400: {"model": ErrorResponse, "description": "the body is not valid JSON"},
    409: {"model": ErrorResponse, "description": "X-Model-Variant names no live variant"},
    413: {"model": ErrorResponse, "description": "body larger than max_body_bytes"},
    415: {"model": ErrorResponse, "description": "the body is not application/json"},
    422: {
        "model": ErrorResponse,
        "description": "a field is missing, of the wrong type or out of range",
    },
    503: {"model": ErrorResponse, "description": "no model is deployed, or every variant failed"},
}
CONTROL_ERRORS: Responses = {
    400: {"model": ErrorResponse, "description": "the body is not valid JSON"},
    401: {"model": ErrorResponse, "description": "no bearer token"},
    403: {"model": ErrorResponse, "description": "wrong bearer token"},
    404: {
        "model": ErrorResponse,
        "description": "no such variant, or no such model version or alias in the registry",
    },
    409: {"model": ErrorResponse, "description": "the table cannot take this change"},
    413: {"model": ErrorResponse, "description": "body larger than max_body_bytes"},
    415: {"model": ErrorResponse, "description": "the body is not application/json"},
    422: {
        "model": ErrorResponse,
        "description": "bad request, or the model was refused (smoke test, digest, version)",
    },
    503: {
        "model": ErrorResponse,
        "description": "the model registry is unreachable (its URI is named)",
    },
}
REPORT_ERRORS: Responses = {
    422: {"model": ErrorResponse, "description": "a bad challenger name, or the champion"},
    503: {"model": ErrorResponse, "description": "the prediction log database is unavailable"},
}
#: The HTML pages' errors: JSON, like every other error of the router.
PAGE_ERRORS: Responses = {
    status: {"description": answer["description"], "content": _ERROR_JSON}
    for status, answer in REPORT_ERRORS.items()
}
