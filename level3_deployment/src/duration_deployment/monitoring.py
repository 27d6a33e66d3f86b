"""Drift monitoring of the deployed variants: recent logged inputs and predictions against
each model version's training profile.

The drift rule and the PSI thresholds are :func:`duration_core.drift_report`'s; this module
chooses the window (the last ``window`` logged predictions of a variant's version), refuses a
window too small to mean anything, and publishes the result to the drift gauges.
"""

from __future__ import annotations

import time
from typing import Any

from duration_core import drift_report
from duration_core.profile import MIN_WINDOW_ROWS
from duration_deployment.metrics import RouterMetrics
from duration_deployment.prediction_log import PredictionLog
from duration_deployment.routing import RoutingTable, Variant

#: Rides fewer than this in a variant's window give no drift figures: zone PSIs of a small
#: window are mostly sampling noise (about (zones - 1) / rows, 0.26 at 1,000 rides).
MIN_DRIFT_ROWS = 1_000

_ISO = "%Y-%m-%dT%H:%M:%SZ"


def _iso(epoch: float) -> str:
    return time.strftime(_ISO, time.gmtime(epoch))


def variant_drift(log: PredictionLog, variant: Variant, window: int) -> dict[str, Any]:
    """The drift entry of one variant: its window, its status and, with enough rows and a
    profile, :meth:`duration_core.profile.DriftReport.to_dict`'s fields.

    ``status`` is ``drift``, ``no drift`` (both with a note when the window is under
    :data:`~duration_core.profile.MIN_WINDOW_ROWS`), ``not enough data: ...`` or
    ``no reference profile: ...``.
    """
    model = variant.model
    entry: dict[str, Any] = {
        "variant": variant.name,
        "model_version": model.version,
        "shadow": variant.shadow,
    }
    frame = log.frame(variant=variant.name, model_version=model.version, last=window)
    frame = frame[frame["prediction"].notna()]
    entry["window_rows"] = len(frame)
    entry["profile_source"] = model.profile.source if model.profile else None
    if len(frame):
        entry["window"] = {"from": _iso(frame["at"].min()), "to": _iso(frame["at"].max())}
    if model.profile is None:
        entry["status"] = "no reference profile: the model's run has no reference_profile.json"
    elif len(frame) < MIN_DRIFT_ROWS:
        entry["status"] = f"not enough data: {len(frame)} predictions, {MIN_DRIFT_ROWS} needed"
    else:
        report = drift_report(model.profile, frame, frame["prediction"].to_numpy()).to_dict()
        entry.update(report)
        entry["status"] = "drift" if report["drifted"] else "no drift"
        if len(frame) < MIN_WINDOW_ROWS:
            entry["status"] += (
                f" (small window: {len(frame):,} rides; zone PSIs below {MIN_WINDOW_ROWS:,} "
                "rides are inflated by sampling noise)"
            )
    return entry


def monitoring_report(
    log: PredictionLog, table: RoutingTable, metrics: RouterMetrics, *, window: int
) -> dict[str, Any]:
    """Drift of every deployed variant (``GET /monitoring/report`` and the scheduled
    monitor, ``monitor_loop.py``); the drift gauges show exactly the variants with figures.

    Args:
        log: The prediction log.
        table: The routing table whose variants are reported.
        metrics: Where ``duration_router_drift_psi``, the unseen-pair share and
            ``duration_router_drift_detected`` are shown.
        window: Logged predictions per variant compared with the profile.

    Returns:
        ``{"window", "variants": [variant_drift entries], "generated_at"}`` (ISO 8601, UTC).

    Raises:
        sqlalchemy.exc.SQLAlchemyError: The log database is unavailable.
    """
    variants = [variant_drift(log, variant, window) for variant in table.variants]
    metrics.show_drift_report(variants)
    return {"window": window, "variants": variants, "generated_at": _iso(time.time())}
