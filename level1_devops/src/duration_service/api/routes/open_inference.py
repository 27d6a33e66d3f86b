"""The Open Inference Protocol V2 REST routes (KServe, Seldon Core 2, MLServer, Triton
clients): health, server and model metadata, readiness and inference, for the model named by
the service's ``model_name`` (:mod:`duration_service.protocols.open_inference`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from duration_service.api.deps import ScorerDep
from duration_service.metrics import tag_error
from duration_service.protocols import open_inference as v2
from duration_service.protocols.documents import (
    V2Error,
    V2InferResponse,
    V2Live,
    V2ModelMetadata,
    V2Ready,
    V2ServerMetadata,
    infer_schema,
    request_body,
)
from duration_service.protocols.rides import ProtocolError, read_body
from duration_service.protocols.scoring import Scorer

MODEL = "/v2/models/{model_name}"
VERSION = "/v2/models/{model_name}/versions/{model_version}"


def _error(request: Request, exc: ProtocolError) -> JSONResponse:
    tag_error(request, exc.kind)
    return JSONResponse(status_code=exc.status, content=v2.error_body(exc))


def _check(scorer: Scorer, model_name: str, model_version: str | None) -> None:
    """404 unless the path names the served model (and a served version)."""
    if model_name != scorer.model_name:
        raise ProtocolError(
            404, f"unknown model {model_name[:100]!r} (this server serves {scorer.model_name!r})"
        )
    versions = scorer.versions()
    if model_version is not None and model_version not in versions:
        served = ", ".join(versions) or "none"
        raise ProtocolError(
            404, f"model {model_name!r} has no version {model_version[:100]!r} here "
            f"(serving: {served})",
        )  # fmt: skip


def build_router(server_name: str, max_batch_size: int, *, routed: bool = False) -> APIRouter:
    """The V2 routes; ``server_name`` answers ``GET /v2``, ``routed`` adds the router's
    ``variant`` output."""
    router = APIRouter(tags=["Open Inference Protocol V2"])
    errors: dict[int | str, dict[str, Any]] = {
        404: {"model": V2Error, "description": "unknown model or version"},
        503: {"model": V2Error, "description": "no model to score with"},
    }
    infer_errors: dict[int | str, dict[str, Any]] = {
        **errors,
        400: {"model": V2Error, "description": "bad JSON, input, datatype or shape"},
        413: {"model": V2Error, "description": "body larger than max_body_bytes"},
        422: {"model": V2Error, "description": "a bad value (zone, distance, ride id)"},
    }
    if routed:
        infer_errors[409] = {"model": V2Error, "description": "X-Model-Variant names no variant"}

    @router.api_route("/v2/health/live", methods=["GET", "HEAD"], response_model=V2Live)
    async def live() -> V2Live:
        """Liveness: the server answers."""
        return V2Live(live=True)

    @router.api_route(
        "/v2/health/ready",
        methods=["GET", "HEAD"],
        response_model=V2Ready,
        response_model_exclude_none=True,
        responses={503: {"model": V2Ready}},
    )
    async def ready(scorer: ScorerDep) -> V2Ready | JSONResponse:
        """Readiness: 200 when the model can be scored, else 503 with the reason."""
        reason = scorer.unavailable()
        if reason is not None:
            return JSONResponse(status_code=503, content={"ready": False, "reason": reason})
        return V2Ready(ready=True)

    @router.get("/v2", response_model=V2ServerMetadata)
    async def server_metadata(request: Request) -> dict[str, Any]:
        """The server's name, version and protocol extensions."""
        return v2.server_metadata(server_name, str(request.app.version))

    async def metadata(
        request: Request, scorer: Scorer, model_name: str, model_version: str | None
    ) -> dict[str, Any] | JSONResponse:
        try:
            _check(scorer, model_name, model_version)
        except ProtocolError as exc:
            return _error(request, exc)
        versions = [model_version] if model_version else scorer.versions()
        return v2.model_metadata(model_name, versions, routed=routed)

    async def model_ready(
        request: Request, scorer: Scorer, model_name: str, model_version: str | None
    ) -> V2Ready | JSONResponse:
        try:
            _check(scorer, model_name, model_version)
        except ProtocolError as exc:
            return _error(request, exc)
        reason = scorer.unavailable()
        if reason is not None:
            body = {"name": model_name, "ready": False, "reason": reason}
            return JSONResponse(status_code=503, content=body)
        return V2Ready(name=model_name, ready=True)

    async def infer(
        request: Request, scorer: Scorer, model_name: str, model_version: str | None
    ) -> JSONResponse:
        try:
            _check(scorer, model_name, model_version)
            parsed = v2.parse_infer(
                await read_body(request), request.headers.get(v2.BINARY_HEADER), max_batch_size,
                routed=routed,
            )  # fmt: skip
            route = (VERSION if model_version else MODEL) + "/infer"
            scored = await scorer.score(
                parsed.rides, version=model_version, route=route, headers=request.headers
            )
        except ProtocolError as exc:
            return _error(request, exc)
        return JSONResponse(v2.infer_body(model_name, model_version, parsed, scored))

    infer_doc = request_body(
        infer_schema(max_batch_size),
        "one tensor per input (JSON, or Triton's binary tensor extension with the "
        f"{v2.BINARY_HEADER} header)",
    )

    @router.get(MODEL, response_model=V2ModelMetadata, responses=errors)
    async def model_metadata(
        request: Request, scorer: ScorerDep, model_name: str
    ) -> dict[str, Any] | JSONResponse:
        """The model's versions, inputs and outputs (datatypes, shapes)."""
        return await metadata(request, scorer, model_name, None)

    @router.get(VERSION, response_model=V2ModelMetadata, responses=errors)
    async def version_metadata(
        request: Request, scorer: ScorerDep, model_name: str, model_version: str
    ) -> dict[str, Any] | JSONResponse:
        """One served version's inputs and outputs."""
        return await metadata(request, scorer, model_name, model_version)

    @router.get(MODEL + "/ready", response_model=V2Ready, response_model_exclude_none=True,
                responses=errors)  # fmt: skip
    async def ready_model(
        request: Request, scorer: ScorerDep, model_name: str
    ) -> V2Ready | JSONResponse:
        """200 when the model can be scored."""
        return await model_ready(request, scorer, model_name, None)

    @router.get(VERSION + "/ready", response_model=V2Ready, response_model_exclude_none=True,
                responses=errors)  # fmt: skip
    async def ready_version(
        request: Request, scorer: ScorerDep, model_name: str, model_version: str
    ) -> V2Ready | JSONResponse:
        """200 when that version is served and can be scored."""
        return await model_ready(request, scorer, model_name, model_version)

    @router.post(MODEL + "/infer", response_model=V2InferResponse, responses=infer_errors,
                 openapi_extra=infer_doc)  # fmt: skip
    async def infer_model(request: Request, scorer: ScorerDep, model_name: str) -> JSONResponse:
        """Predict the duration (minutes) of each ride, one element per ride of each input."""
        return await infer(request, scorer, model_name, None)

    @router.post(VERSION + "/infer", response_model=V2InferResponse, responses=infer_errors,
                 openapi_extra=infer_doc)  # fmt: skip
    async def infer_version(
        request: Request, scorer: ScorerDep, model_name: str, model_version: str
    ) -> JSONResponse:
        """Predict with that model version (on the router: the variant serving it)."""
        return await infer(request, scorer, model_name, model_version)

    return router
