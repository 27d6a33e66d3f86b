"""The router app: ``create_app(settings)``; variants deploy at start-up (its lifespan).

Prediction routes take level 1's request bodies and answer with the variant and model version
that predicted. Control routes (deploy, weight, remove, promote, rollback, feedback) need the
bearer token. Reports and ``/metrics`` are read-only and open, like level 1's ``/metrics``.

No ``from __future__ import annotations`` here: FastAPI must see the dependency and body types
that the route factories build at run time, not their names as strings.
"""

import asyncio
import dataclasses
import gc
import hmac
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Annotated, Any

import anyio
import anyio.to_thread
import pandas as pd
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi import Path as FastAPIPath
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import SQLAlchemyError

from duration_core import drift_report
from duration_core.profile import MIN_WINDOW_ROWS
from duration_deployment import analysis, report_html
from duration_deployment.config import RouterSettings
from duration_deployment.manager import DeploymentManager
from duration_deployment.metrics import RouterMetrics
from duration_deployment.prediction_log import PredictionLog
from duration_deployment.registry import DeploymentError, Registry
from duration_deployment.routing import CHALLENGER, CHAMPION, VARIANT_NAME, RoutingTable, Variant
from duration_deployment.schemas import (
    ControlResult,
    DeployRequest,
    FeedbackRequest,
    FeedbackResult,
    PromoteRequest,
    RoutedBatch,
    RoutedPrediction,
    WeightRequest,
)
from duration_service.main import add_error_handlers
from duration_service.metrics import BodySizeLimitMiddleware, MetricsMiddleware, tag_error
from duration_service.model_state import predict_minutes
from duration_service.schemas import ErrorResponse, Ride, batch_request_model

logger = logging.getLogger(__name__)

DESCRIPTION = """
Level 3 of the MLOps maturity ladder: registered versions of the NYC taxi trip-duration model
(minutes) behind one API, split by weight with sticky assignment by `ride_id`, shadow variants,
a prediction log, A/B analysis, guardrails and drift monitoring. Control routes need
`Authorization: Bearer <token>`.
"""

#: Header that forces a live variant for a request (tests, debugging, a canary by hand).
VARIANT_HEADER = "X-Model-Variant"
#: Optional header naming who made a control call, recorded in the history.
ACTOR_HEADER = "X-Actor"
#: Rides fewer than this in a variant's window give no drift figures: zone PSIs of a small
#: window are mostly sampling noise (about (zones - 1) / rows, 0.26 at 1,000 rides).
MIN_DRIFT_ROWS = 1_000

ERRORS = {
    400: {"model": ErrorResponse, "description": "bad JSON, or an unknown X-Model-Variant"},
    413: {"model": ErrorResponse, "description": "body larger than max_body_bytes"},
    415: {"model": ErrorResponse, "description": "the body is not application/json"},
    422: {
        "model": ErrorResponse,
        "description": "a field is missing, of the wrong type or out of range",
    },
    503: {"model": ErrorResponse, "description": "no model is deployed, or every variant failed"},
}
CONTROL_ERRORS = {
    401: {"model": ErrorResponse, "description": "no bearer token"},
    403: {"model": ErrorResponse, "description": "wrong bearer token"},
    404: {"model": ErrorResponse, "description": "no such variant"},
    409: {"model": ErrorResponse, "description": "the table cannot take this change"},
    422: {
        "model": ErrorResponse,
        "description": "bad request, or the model was refused (smoke test, digest, version)",
    },
    503: {
        "model": ErrorResponse,
        "description": "the model registry is unreachable (its URI is named)",
    },
}


def create_app(settings: RouterSettings, *, registry: Registry | None = None) -> FastAPI:
    """Build the router. Nothing is opened or loaded until the app starts (its lifespan).

    Args:
        settings: Router settings (token, registry, prediction log, limits).
        registry: A registry to use instead of the one ``settings`` names (tests).
    """
    metrics = RouterMetrics()
    log = PredictionLog(
        settings.prediction_log_url,
        batch_rows=settings.log_batch_rows,
        flush_seconds=settings.log_flush_seconds,
        max_pending=settings.log_max_pending,
    )
    metrics.attach_log(log)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(log.open)
        reg = registry or Registry(
            settings.tracking_uri,
            settings.model_name,
            settings.model_cache_dir,
            allow_version_mismatch=settings.allow_version_mismatch,
        )
        manager = DeploymentManager(settings, reg, log, metrics)
        app.state.manager = manager
        app.state.batch_limiter = anyio.CapacityLimiter(1)
        app.state.shadow_tasks = set()
        if settings.deploy_on_start:
            await manager.start()
        gc.collect()
        gc.freeze()  # loaded models out of the collector's way (level 1: p99 88 -> 17 ms)
        try:
            yield
        finally:
            await manager.aclose()
            tasks = list(app.state.shadow_tasks)
            if tasks:
                with suppress(Exception):
                    await asyncio.wait(tasks, timeout=5)
            await anyio.to_thread.run_sync(log.close)

    from duration_deployment import __version__

    app = FastAPI(
        title="NYC taxi trip duration router",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.log = log
    app.include_router(_prediction_routes(settings, metrics, log))
    app.include_router(_control_routes(settings, log))
    app.include_router(_report_routes(settings, metrics, log))
    app.include_router(_ops_routes(metrics))
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    add_error_handlers(app)

    @app.exception_handler(SQLAlchemyError)
    async def log_unavailable(request: Request, exc: SQLAlchemyError) -> JSONResponse:
        tag_error(request, "log_unavailable")
        where = log.engine.url.render_as_string(hide_password=True) if log.engine else log.url
        reason = str(getattr(exc, "orig", exc) or exc).splitlines()[0][:200]
        logger.error("prediction log %s: %s", where, reason)
        detail = f"the prediction log database {where} is unavailable: {reason}"
        return JSONResponse(status_code=503, content={"detail": detail, "errors": []})

    @app.exception_handler(DeploymentError)
    async def deployment_error(request: Request, exc: DeploymentError) -> JSONResponse:
        tag_error(request, "registry_unavailable" if exc.status == 503 else "deployment")
        return JSONResponse(status_code=exc.status, content={"detail": str(exc), "errors": []})

    return app


# -- predictions ------------------------------------------------------------------------------


async def _manager(request: Request) -> DeploymentManager:
    # async: FastAPI runs a plain def dependency in a worker thread, a hop that cost the
    # router a third of its throughput (and shrank the micro-batches) in bench_router.py.
    return request.app.state.manager  # type: ignore[no-any-return]


ManagerDep = Annotated[DeploymentManager, Depends(_manager)]
VariantPath = Annotated[str, FastAPIPath(pattern=VARIANT_NAME, description="a variant's name")]
VariantHeader = Annotated[
    str | None,
    Header(
        alias=VARIANT_HEADER,
        max_length=40,
        description="force this live variant (e.g. challenger) instead of the traffic split",
    ),
]


def _pick(table: RoutingTable, ride_id: str | None, forced: str | None) -> Variant:
    if not table.live:
        raise HTTPException(503, detail="no model is deployed: POST /deployments first")
    if forced is None:
        return table.choose(ride_id)
    variant = table.get(forced)
    if variant is None or variant.shadow:
        live = ", ".join(v.name for v in table.live)
        raise HTTPException(
            400, detail=f"{VARIANT_HEADER}: no live variant named {forced!r} (live: {live})"
        )
    return variant


def _row(
    request_id: str,
    ride: Ride,
    variant: Variant,
    minutes: float | None,
    latency_ms: float,
    error: str | None,
    *,
    shadow: bool = False,
    forced: bool = False,
) -> dict[str, Any]:
    return {
        "at": time.time(),
        "request_id": request_id,
        "ride_id": ride.ride_id,
        "variant": variant.name,
        "model_version": variant.model.version,
        "shadow": shadow,
        "forced": forced,
        "pu_location_id": ride.PULocationID,
        "do_location_id": ride.DOLocationID,
        "trip_distance": ride.trip_distance,
        "prediction": minutes,
        "latency_ms": latency_ms,
        "error": error,
    }


def _prediction_routes(
    settings: RouterSettings, metrics: RouterMetrics, log: PredictionLog
) -> APIRouter:
    router = APIRouter(tags=["predict"])
    batch_model = batch_request_model(settings.max_batch_size)

    def account(
        variant: Variant,
        minutes: Sequence[float | None],
        latency_ms: float,
        manager: DeploymentManager,
        *,
        shadow: bool = False,
    ) -> None:
        metrics.observe_variant(
            variant.name, variant.model.version, minutes, latency_ms, shadow=shadow
        )
        # A batch's time grows with its size, and a shadow's copy waits behind the answers:
        # only single live rides feed the latency guardrail (every ride feeds the error rate).
        timed = latency_ms if len(minutes) == 1 and not shadow else None
        for value in minutes:
            manager.observe(variant, error=value is None, latency_ms=timed)

    async def predict_single(
        variant: Variant, record: dict[str, Any], manager: DeploymentManager
    ) -> tuple[float | None, float, str | None]:
        start = time.perf_counter()
        try:
            minutes: float | None = await manager.batcher(variant.model).predict(record)
            error = (
                None
                if minutes is not None and math.isfinite(minutes)
                else f"prediction {minutes!r}"
            )
        except Exception as exc:  # a model that fails on some input: counted, not a 500
            minutes, error = None, f"{type(exc).__name__}: {exc}"[:500]
        if error is not None:
            minutes = None
        return minutes, (time.perf_counter() - start) * 1000, error

    async def shadow_copy(
        variant: Variant,
        rides: Sequence[Ride],
        request_id: str,
        manager: DeploymentManager,
        limiter: anyio.CapacityLimiter,
    ) -> None:
        """Predict a copy of the rides with a shadow variant and log it, after the answer."""
        if len(rides) == 1:
            minutes, latency_ms, error = await predict_single(variant, rides[0].record(), manager)
            values: list[float | None] = [minutes]
        else:  # a batch is predicted as a batch, off the event loop
            values, latency_ms, error = await predict_group(variant, list(rides), limiter)
        log.record_many(
            _row(request_id, ride, variant, value, latency_ms, None if value is not None else error,
                 shadow=True)
            for ride, value in zip(rides, values, strict=True)
        )  # fmt: skip
        account(variant, values, latency_ms, manager, shadow=True)

    def spawn_shadows(
        request: Request,
        table: RoutingTable,
        rides: Sequence[Ride],
        request_id: str,
        manager: DeploymentManager,
    ) -> None:
        tasks: set[asyncio.Task[None]] = request.app.state.shadow_tasks
        limiter = request.app.state.batch_limiter
        for variant in table.shadows:
            task = asyncio.get_running_loop().create_task(
                shadow_copy(variant, rides, request_id, manager, limiter)
            )
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    @router.post("/predict", response_model=RoutedPrediction, responses=ERRORS)
    async def predict(
        ride: Ride, request: Request, manager: ManagerDep, forced: VariantHeader = None
    ) -> RoutedPrediction:
        """Predict the duration (minutes) of one ride with the variant the traffic split (or
        ``X-Model-Variant``) picks; a failing non-champion variant is replaced by the champion."""
        table = manager.table
        variant = _pick(table, ride.ride_id, forced)
        chosen = forced is not None  # logged: the A/B test leaves forced rides out
        request_id = uuid.uuid4().hex
        record = ride.record()
        minutes, latency_ms, error = await predict_single(variant, record, manager)
        if error is not None:
            log.record(_row(request_id, ride, variant, None, latency_ms, error, forced=chosen))
            account(variant, [None], latency_ms, manager)
            fallback = table.get(CHAMPION) or table.live[0]
            if fallback is variant:
                raise HTTPException(
                    503,
                    detail=f"{variant.name} v{variant.model.version} failed to predict: {error}",
                )
            variant = fallback
            minutes, latency_ms, error = await predict_single(variant, record, manager)
            if error is not None:
                log.record(_row(request_id, ride, variant, None, latency_ms, error, forced=chosen))
                account(variant, [None], latency_ms, manager)
                raise HTTPException(
                    503,
                    detail=f"{variant.name} v{variant.model.version} failed to predict: {error}",
                )
        log.record(_row(request_id, ride, variant, minutes, latency_ms, None, forced=chosen))
        account(variant, [minutes], latency_ms, manager)
        metrics.observe_predictions("/predict", (minutes,))  # type: ignore[arg-type]
        if table.shadows:
            spawn_shadows(request, table, [ride], request_id, manager)
        return RoutedPrediction(
            duration=minutes,  # type: ignore[arg-type]
            variant=variant.name,
            model_version=variant.model.version,
            ride_id=ride.ride_id,
        )

    async def predict_group(
        variant: Variant,
        rides: list[Ride],
        limiter: anyio.CapacityLimiter,
    ) -> tuple[list[float | None], float, str | None]:
        start = time.perf_counter()
        records = [r.record() for r in rides]
        try:
            minutes = await anyio.to_thread.run_sync(
                predict_minutes, variant.model, records, limiter=limiter
            )
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
            return [None] * len(rides), (time.perf_counter() - start) * 1000, error
        latency_ms = (time.perf_counter() - start) * 1000
        out = [m if math.isfinite(m) else None for m in minutes]
        return out, latency_ms, None if all(m is not None for m in out) else "prediction not finite"

    @router.post("/predict/batch", response_model=RoutedBatch, responses=ERRORS)
    async def predict_batch(
        batch: batch_model,
        request: Request,
        manager: ManagerDep,  # type: ignore[valid-type]
        forced: VariantHeader = None,
    ) -> RoutedBatch:
        """Predict each ride (minutes), each with its own variant; the answer keeps the order."""
        table = manager.table
        rides: list[Ride] = batch.rides  # type: ignore[attr-defined]
        picked = [_pick(table, r.ride_id, forced) for r in rides]
        chosen = forced is not None  # logged: the A/B test leaves forced rides out
        request_id = uuid.uuid4().hex
        limiter = request.app.state.batch_limiter
        answers: list[tuple[Variant, float, float] | None] = [None] * len(rides)
        retry: list[int] = []
        for variant in {id(v): v for v in picked}.values():
            index = [i for i, v in enumerate(picked) if v is variant]
            minutes, latency_ms, error = await predict_group(
                variant, [rides[i] for i in index], limiter
            )
            account(variant, minutes, latency_ms, manager)
            for i, value in zip(index, minutes, strict=True):
                if value is None:
                    log.record(
                        _row(request_id, rides[i], variant, None, latency_ms, error, forced=chosen)
                    )
                    retry.append(i)
                else:
                    answers[i] = (variant, value, latency_ms)
        if retry:
            fallback = table.get(CHAMPION) or table.live[0]
            usable = [i for i in retry if picked[i] is not fallback]
            if len(usable) < len(retry):
                failed = picked[next(i for i in retry if picked[i] is fallback)]
                raise HTTPException(
                    503, detail=f"{failed.name} v{failed.model.version} failed to predict"
                )
            minutes, latency_ms, error = await predict_group(
                fallback, [rides[i] for i in usable], limiter
            )
            account(fallback, minutes, latency_ms, manager)
            if error is not None:
                raise HTTPException(
                    503,
                    detail=f"{fallback.name} v{fallback.model.version} failed to predict: {error}",
                )
            for i, value in zip(usable, minutes, strict=True):
                answers[i] = (fallback, value, latency_ms)  # type: ignore[assignment]
        log.record_many(
            _row(request_id, ride, variant, value, latency_ms, None, forced=chosen)
            for ride, (variant, value, latency_ms) in zip(rides, answers, strict=True)  # type: ignore[misc]
        )
        metrics.observe_predictions("/predict/batch", [a[1] for a in answers])  # type: ignore[index]
        if table.shadows:
            spawn_shadows(request, table, rides, request_id, manager)
        return RoutedBatch(
            predictions=[
                RoutedPrediction(
                    duration=value,
                    variant=variant.name,
                    model_version=variant.model.version,
                    ride_id=ride.ride_id,
                )
                for ride, (variant, value, _) in zip(rides, answers, strict=True)  # type: ignore[misc]
            ],
            count=len(rides),
        )

    return router


# -- control ----------------------------------------------------------------------------------


def _control_routes(settings: RouterSettings, log: PredictionLog) -> APIRouter:
    bearer = HTTPBearer(auto_error=False, description="the router's control token")
    token = settings.token.get_secret_value().encode()

    async def require_token(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        if credentials is None:
            tag_error(request, "unauthorized")
            raise HTTPException(
                401,
                detail="this route needs the control token: send Authorization: Bearer <token>",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not hmac.compare_digest(credentials.credentials.encode(), token):
            tag_error(request, "forbidden")
            raise HTTPException(403, detail="the bearer token is not the control token")

    router = APIRouter(
        tags=["control"], dependencies=[Depends(require_token)], responses=CONTROL_ERRORS
    )
    Actor = Annotated[
        str, Header(alias=ACTOR_HEADER, max_length=100, description="who is calling (history)")
    ]

    @router.get("/deployments")
    async def deployments(
        manager: ManagerDep, history: Annotated[int, Query(ge=0, le=1000)] = 50
    ) -> dict[str, Any]:
        """The routing table, the MLflow aliases and the history of changes."""
        return await anyio.to_thread.run_sync(manager.state, history)

    @router.post("/deployments", response_model=ControlResult, status_code=201)
    async def deploy(
        body: DeployRequest, manager: ManagerDep, actor: Actor = "api"
    ) -> dict[str, Any]:
        """The one call: resolve ``model_uri`` in the registry, download, verify (sha256,
        scikit-learn version), load, smoke-test, then swap the new table in."""
        return await manager.deploy(
            body.model_uri,
            variant=body.variant,
            weight=body.weight,
            shadow=body.shadow,
            actor=actor,
        )

    @router.patch("/deployments/{variant}", response_model=ControlResult)
    async def set_weight(
        variant: VariantPath, body: WeightRequest, manager: ManagerDep, actor: Actor = "api"
    ) -> dict[str, Any]:
        """Give a variant a new share of the live traffic; the others share the rest."""
        return await manager.set_weight(variant, body.weight, actor=actor)

    @router.delete("/deployments/{variant}", response_model=ControlResult)
    async def remove(
        variant: VariantPath, manager: ManagerDep, actor: Actor = "api"
    ) -> dict[str, Any]:
        """Take a variant out of the table (its champion/challenger alias is deleted)."""
        return await manager.remove(variant, actor=actor)

    @router.post("/promote", response_model=ControlResult)
    async def promote(
        manager: ManagerDep, body: PromoteRequest | None = None, actor: Actor = "api"
    ) -> dict[str, Any]:
        """The challenger (or the named variant) becomes champion with all the traffic; the
        MLflow alias ``champion`` moves to its version."""
        return await manager.promote((body or PromoteRequest()).variant, actor=actor)

    @router.post("/rollback", response_model=ControlResult)
    async def rollback(manager: ManagerDep, actor: Actor = "api") -> dict[str, Any]:
        """Restore the table before the last change, and the MLflow aliases with it."""
        return await manager.rollback(actor=actor)

    @router.post("/feedback", response_model=FeedbackResult)
    async def post_feedback(body: FeedbackRequest) -> FeedbackResult:
        """Actual durations (minutes) by ride id; unknown ride ids are counted, not errors."""
        actuals = {a.ride_id: a.duration for a in body.actuals}
        matched, unknown = await anyio.to_thread.run_sync(log.add_feedback, actuals)
        return FeedbackResult(
            received=len(body.actuals),
            matched=matched,
            unknown=len(unknown),
            unknown_examples=unknown[:10],
        )

    return router


# -- reports ----------------------------------------------------------------------------------


def _experiment_start(log: PredictionLog) -> tuple[int, dict[str, Any] | None]:
    """Where the current experiment began: the oldest of the latest run of history entries
    that all have today's champion and challenger versions (weight changes do not start a new
    experiment; a new version of either does, and so do a promote and its rollback).

    Returns:
        (log position: predictions with a higher id belong to it, the history entry).
    """

    def versions(event: dict[str, Any]) -> tuple[Any, Any]:
        table = event["table_after"]
        return (
            table.get(CHAMPION, {}).get("model_version"),
            table.get(CHALLENGER, {}).get("model_version"),
        )

    events = log.history(1000)
    if not events:
        return 0, None
    current = versions(events[-1])
    first = events[-1]
    for event in reversed(events):
        if versions(event) != current:
            break
        first = event
    return int(first["log_position"]), first


def ab_report(
    settings: RouterSettings, log: PredictionLog, challenger: str = CHALLENGER
) -> tuple[analysis.ABReport, Any]:
    """The A/B report of ``challenger`` against the champion since the experiment began, and
    the logged predictions it was computed from."""
    start, event = _experiment_start(log)
    frame, dropped = _one_prediction_per_ride(log.frame(after_id=start))
    report = analysis.ab_report(
        frame,
        champion=CHAMPION,
        challenger=challenger,
        alpha=settings.ab_alpha,
        min_detectable_effect=settings.ab_min_detectable_effect,
    )
    if event is not None:
        since = (
            f"experiment since {event['at_iso']} (history revision {event['revision']}, "
            f"{event['action']}): a new one starts whenever the champion's or the "
            "challenger's model version changes"
        )
        report = dataclasses.replace(report, notes=[since, *report.notes])
    if dropped:
        left_out = (
            f"left out: {dropped['forced']:,} predictions forced with {VARIANT_HEADER} (not "
            f"randomised) and {dropped['repeated']:,} repeated predictions of a ride already "
            "predicted (only a ride's first assignment counts)"
        )
        report = dataclasses.replace(report, notes=[*report.notes, left_out])
    return report, frame


def _one_prediction_per_ride(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """The rows an A/B test may use: not forced, and per ride id only the first live
    prediction (and the first of each shadow variant). Otherwise anyone could re-send known
    rides to a variant of their choice and weigh the test."""
    forced = frame["forced"]
    kept = frame[~forced]
    live, shadow = kept[~kept["shadow"]], kept[kept["shadow"]]
    live = live[live["ride_id"].isna() | ~live.duplicated("ride_id")]
    shadow = shadow[shadow["ride_id"].isna() | ~shadow.duplicated(["ride_id", "variant"])]
    repeated = len(kept) - len(live) - len(shadow)
    kept = pd.concat([live, shadow]).sort_values("id").reset_index(drop=True)
    dropped = {"forced": int(forced.sum()), "repeated": repeated}
    return kept, dropped if any(dropped.values()) else {}


def monitoring_report(
    settings: RouterSettings, log: PredictionLog, table: RoutingTable, metrics: RouterMetrics
) -> dict[str, Any]:
    """Drift of each deployed variant's recent inputs and predictions against its training
    profile (the last ``drift_window`` logged predictions of its model version)."""
    variants = []
    for variant in table.variants:
        entry: dict[str, Any] = {
            "variant": variant.name,
            "model_version": variant.model.version,
            "shadow": variant.shadow,
        }
        frame = log.frame(
            variant=variant.name, model_version=variant.model.version, last=settings.drift_window
        )
        frame = frame[frame["prediction"].notna()]
        entry["window_rows"] = len(frame)
        entry["profile_source"] = variant.model.profile.source if variant.model.profile else None
        if len(frame):
            entry["window"] = {
                "from": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(frame["at"].min())),
                "to": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(frame["at"].max())),
            }
        if variant.model.profile is None:
            entry["status"] = "no reference profile: the model's run has no reference_profile.json"
        elif len(frame) < MIN_DRIFT_ROWS:
            entry["status"] = f"not enough data: {len(frame)} predictions, {MIN_DRIFT_ROWS} needed"
        else:
            report = drift_report(
                variant.model.profile, frame, frame["prediction"].to_numpy()
            ).to_dict()
            entry.update(report)
            entry["status"] = "drift" if report["drifted"] else "no drift"
            if len(frame) < MIN_WINDOW_ROWS:
                entry["status"] += (
                    f" (small window: {len(frame):,} rides; zone PSIs below {MIN_WINDOW_ROWS:,} "
                    "rides are inflated by sampling noise)"
                )
            metrics.show_drift(variant.name, report)
        variants.append(entry)
    return {
        "window": settings.drift_window,
        "variants": variants,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _not_the_champion(challenger: str) -> None:
    if challenger == CHAMPION:
        raise HTTPException(422, detail="challenger: the champion cannot be its own challenger")


def _report_routes(
    settings: RouterSettings, metrics: RouterMetrics, log: PredictionLog
) -> APIRouter:
    router = APIRouter(tags=["reports"])
    # One report at a time: each reads up to the whole experiment from the log, and these
    # routes are open; concurrent ones queue instead of multiplying memory and connections.
    limiter = anyio.CapacityLimiter(1)

    async def run(function: Any, *args: Any) -> Any:
        return await anyio.to_thread.run_sync(function, *args, limiter=limiter)

    Challenger = Annotated[
        str,
        Query(
            pattern=r"^[A-Za-z][A-Za-z0-9_\-]{0,39}$",
            description="the variant to compare with the champion",
        ),
    ]

    @router.get("/ab/report")
    async def ab_json(challenger: Challenger = CHALLENGER) -> dict[str, Any]:
        """Per-variant counts, RMSE, MAE, latency and error rate; the challenger's difference in
        squared error with its confidence interval and p-value; the verdict."""
        _not_the_champion(challenger)
        report, _ = await run(ab_report, settings, log, challenger)
        return report.to_dict()

    @router.get("/ab/report.html", response_class=HTMLResponse)
    async def ab_html(challenger: Challenger = CHALLENGER) -> HTMLResponse:
        """The A/B report as a page with plots."""

        _not_the_champion(challenger)

        def render() -> str:
            return report_html.render_ab_html(*ab_report(settings, log, challenger))

        return HTMLResponse(await run(render))

    @router.get("/monitoring/report")
    async def drift_json(manager: ManagerDep) -> dict[str, Any]:
        """Population stability index per input feature and for the predictions, and the share
        of unseen pickup/dropoff pairs, per deployed variant."""
        return await run(monitoring_report, settings, log, manager.table, metrics)  # type: ignore[no-any-return]

    @router.get("/monitoring/report.html", response_class=HTMLResponse)
    async def drift_html(manager: ManagerDep) -> HTMLResponse:
        """The drift report as a page with plots."""
        report = await run(monitoring_report, settings, log, manager.table, metrics)
        return HTMLResponse(await run(report_html.render_drift_html, report))

    return router


def _ops_routes(metrics: RouterMetrics) -> APIRouter:
    router = APIRouter(tags=["ops"])

    @router.get("/health")
    async def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @router.get("/ready", responses={503: {"model": ErrorResponse}})
    async def ready(manager: ManagerDep) -> JSONResponse:
        """Readiness: at least one live variant is deployed."""
        table = manager.table
        body = {
            "status": "ready" if table.live else "not ready",
            "revision": table.revision,
            "variants": {v.name: v.model.version for v in table.variants},
        }
        return JSONResponse(status_code=200 if table.live else 503, content=body)

    @router.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    return router
