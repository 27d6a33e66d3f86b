"""The A/B experiment as the router runs it: its window in the log, and the rows it counts.

The statistics are :mod:`duration_deployment.analysis`'s; this module decides which logged
predictions they see. An experiment is the run of history entries with today's champion and
challenger versions (:func:`duration_deployment.history.experiment_start`); within it, a ride
counts once, at its first routed prediction, and predictions forced to a variant (the
``X-Model-Variant`` header, or a protocol route naming a model version) are left out (they are
not randomised).
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from duration_deployment import analysis
from duration_deployment.config import RouterSettings
from duration_deployment.history import TABLE_ACTIONS, experiment_start
from duration_deployment.prediction_log import PredictionLog
from duration_deployment.routing import CHAMPION, VARIANT_HEADER


@dataclasses.dataclass(frozen=True)
class LeftOut:
    """Logged predictions an A/B test may not use.

    Attributes:
        forced: Predictions forced to a variant (``X-Model-Variant``, or a versioned protocol
            route such as ``/v2/models/{name}/versions/{v}/infer``).
        repeated: Later predictions of a ride id already predicted (by the same kind of
            variant: live, or the same shadow).
    """

    forced: int = 0
    repeated: int = 0

    def note(self) -> str | None:
        """The report's note about them, None when nothing was left out."""
        if not (self.forced or self.repeated):
            return None
        return (
            f"left out: {self.forced:,} predictions forced to a variant ({VARIANT_HEADER} "
            f"or a versioned protocol route: not randomised) and {self.repeated:,} repeated "
            "predictions of a ride already predicted (only a ride's first assignment counts)"
        )


def one_prediction_per_ride(frame: pd.DataFrame) -> tuple[pd.DataFrame, LeftOut]:
    """The rows an A/B test may use: not forced, and per ride id only the first live
    prediction (and the first of each shadow variant). Otherwise anyone could re-send known
    rides to a variant of their choice and weigh the test.

    Args:
        frame: Logged predictions (``PredictionLog.frame``), with columns ``id``, ``ride_id``,
            ``variant``, ``shadow`` and ``forced``.

    Returns:
        (the kept rows in log order, re-indexed; what was left out).
    """
    forced = frame["forced"]
    kept = frame[~forced]
    live, shadow = kept[~kept["shadow"]], kept[kept["shadow"]]
    live = live[live["ride_id"].isna() | ~live.duplicated("ride_id")]
    shadow = shadow[shadow["ride_id"].isna() | ~shadow.duplicated(["ride_id", "variant"])]
    repeated = len(kept) - len(live) - len(shadow)
    kept = pd.concat([live, shadow]).sort_values("id").reset_index(drop=True)
    return kept, LeftOut(forced=int(forced.sum()), repeated=repeated)


def ab_report(
    log: PredictionLog,
    *,
    challenger: str,
    alpha: float,
    min_detectable_effect: float,
    design: str = analysis.ALWAYS_VALID,
    mixture_scale: float = 0.2,
    since: int | None = None,
) -> tuple[analysis.ABReport, pd.DataFrame]:
    """The A/B report of ``challenger`` against the champion since the experiment began.

    Args:
        log: The prediction log (predictions, feedback and history).
        challenger: The variant compared with the champion.
        alpha: Significance level of the test.
        min_detectable_effect: Relative change in mean squared error worth detecting.
        design: :data:`~duration_deployment.analysis.ALWAYS_VALID` or ``FIXED_HORIZON``.
        mixture_scale: The always-valid test's mixing scale (see ``analysis.ab_report``).
        since: A log position (an event's ``log_position``): the window starts there if that
            is later than the experiment's start. A rollout stage (shadow, then each canary
            weight) is tested on its own rides this way.

    Returns:
        (the report with notes on the window and on what was left out, the logged predictions
        it was computed from).

    Raises:
        sqlalchemy.exc.SQLAlchemyError: The log database is unavailable.
    """
    start, event = experiment_start(log.history(1000, actions=TABLE_ACTIONS))
    if since is not None and since > start:
        start, event = since, {"at_iso": None, "since": since}
    frame, left_out = one_prediction_per_ride(log.frame(after_id=start))
    report = analysis.ab_report(
        frame,
        champion=CHAMPION,
        challenger=challenger,
        alpha=alpha,
        min_detectable_effect=min_detectable_effect,
        design=design,
        mixture_scale=mixture_scale,
    )
    notes = list(report.notes)
    if event is not None and "since" in event:
        notes.insert(0, f"window: predictions after log position {since:,} (since=)")
    elif event is not None:
        notes.insert(
            0,
            f"experiment since {event['at_iso']} (history revision {event['revision']}, "
            f"{event['action']}): a new one starts whenever the champion's or the "
            "challenger's model version changes",
        )
    if (note := left_out.note()) is not None:
        notes.append(note)
    return dataclasses.replace(report, notes=notes), frame


def configured_ab_report(
    settings: RouterSettings, log: PredictionLog, challenger: str, since: int | None = None
) -> tuple[analysis.ABReport, pd.DataFrame]:
    """:func:`ab_report` with the router's settings (``ab_alpha``, ``ab_min_detectable_effect``,
    ``ab_design``, ``ab_mixture_scale``): what ``GET /ab/report`` and the scheduled monitor
    compute, the one place both get their test from.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: The log database is unavailable.
    """
    return ab_report(
        log,
        challenger=challenger,
        alpha=settings.ab_alpha,
        min_detectable_effect=settings.ab_min_detectable_effect,
        design=settings.ab_design,
        mixture_scale=settings.ab_mixture_scale,
        since=since,
    )
