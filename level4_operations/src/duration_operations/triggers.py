"""The retraining triggers: production signals read from the router's log, each giving a
:class:`TriggerResult` (fired or not, with its figures) that the loop records either way.

- drift: the champion's live inputs and predictions, in the k latest disjoint windows of
  ``window`` rides, against its training profile (PSI per feature, unseen-pair share; level
  1's :func:`duration_core.drift_report`). All k must drift: one odd window does not retrain.
- performance: live RMSE over the latest ``window`` labelled rides of the champion above its
  validation RMSE times ``1 + margin``.
- schedule: the champion is older than ``every_hours``.
- new month: a TLC month after the champion's newest training month is bundled, cached or
  (with ``download``) on the TLC server.

Only rides the current champion version answered count: a new champion starts with a clean
slate.
"""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from duration_core.datasets import TripMonth, bundled_path, default_base_url, default_cache_dir
from duration_core.features import RIDE_FIELDS
from duration_core.profile import drift_report
from duration_operations.policy import (
    DriftTrigger,
    NewMonthTrigger,
    PerformanceTrigger,
    ScheduleTrigger,
)
from duration_operations.registry_records import VersionFacts

DRIFT, PERFORMANCE, SCHEDULE, NEW_MONTH = "drift", "performance", "schedule", "new_month"
TRIGGERS = (DRIFT, PERFORMANCE, SCHEDULE, NEW_MONTH)


@dataclass(frozen=True)
class TriggerResult:
    """One trigger's reading at one pass.

    Attributes:
        trigger: One of :data:`TRIGGERS`.
        fired: Whether it asks for a retrain.
        reason: One sentence with the figures.
        figures: The numbers behind it (JSON-able): PSI per window, RMSE, ages.
    """

    trigger: str
    fired: bool
    reason: str
    figures: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger,
            "fired": self.fired,
            "reason": self.reason,
            "figures": self.figures,
        }


def champion_rows(frame: pd.DataFrame, version: str) -> pd.DataFrame:
    """The live rows ``version`` answered with a prediction (not forced, not failed)."""
    keep = (
        (frame["model_version"].astype(str) == version)
        & ~frame["shadow"].astype(bool)
        & ~frame["forced"].astype(bool)
        & frame["prediction"].notna()
    )
    return frame.loc[keep]


def drift_trigger(rows: pd.DataFrame, facts: VersionFacts, policy: DriftTrigger) -> TriggerResult:
    """See the module docstring; ``rows`` are :func:`champion_rows`, oldest first."""
    needed = policy.window * policy.windows
    if not policy.enabled:
        return TriggerResult(DRIFT, False, "drift trigger off in the policy")
    if len(rows) < needed:
        return TriggerResult(
            DRIFT,
            False,
            f"{len(rows):,} of the {needed:,} champion rides {policy.windows} windows need",
            {"rides": len(rows), "needed": needed},
        )
    latest = rows.iloc[-needed:]
    windows = []
    for k in range(policy.windows):
        part = latest.iloc[k * policy.window : (k + 1) * policy.window]
        report = drift_report(
            facts.profile,
            part[list(RIDE_FIELDS)].reset_index(drop=True),
            part["prediction"].to_numpy(dtype="float64"),
            unseen_pair_threshold=policy.unseen_pair_share,
        )
        psi = {name: report.features[name].psi for name in policy.psi}
        over = [name for name, value in psi.items() if value > policy.psi[name]]
        if report.unseen_pair_share > policy.unseen_pair_share:
            over.append("unseen_pair_share")
        windows.append(
            {
                "first_id": int(part["id"].iloc[0]),
                "last_id": int(part["id"].iloc[-1]),
                "psi": psi,
                "unseen_pair_share": report.unseen_pair_share,
                "over": over,
            }
        )
    fired = all(w["over"] for w in windows)
    worst = max(psi_values(windows).items(), key=lambda kv: kv[1])
    reason = (
        f"{sum(bool(w['over']) for w in windows)} of {policy.windows} windows of "
        f"{policy.window:,} rides drifted; largest PSI {worst[0]} {worst[1]:.2f}"
    )
    return TriggerResult(DRIFT, fired, reason, {"windows": windows, "rides": len(rows)})


def psi_values(windows: list[dict[str, Any]]) -> dict[str, float]:
    """Largest PSI per feature over the windows of a drift reading."""
    out: dict[str, float] = {}
    for w in windows:
        for name, value in w["psi"].items():
            out[name] = max(out.get(name, 0.0), value)
    return out


def performance_trigger(
    labelled: pd.DataFrame, facts: VersionFacts, policy: PerformanceTrigger
) -> TriggerResult:
    """See the module docstring; ``labelled`` are :func:`champion_rows` with an actual."""
    if not policy.enabled:
        return TriggerResult(PERFORMANCE, False, "performance trigger off in the policy")
    bar = facts.val_rmse * (1 + policy.margin)
    if len(labelled) < policy.window:
        return TriggerResult(
            PERFORMANCE,
            False,
            f"{len(labelled):,} of the {policy.window:,} labelled champion rides it needs",
            {"labelled": len(labelled), "needed": policy.window, "val_rmse": facts.val_rmse},
        )
    part = labelled.iloc[-policy.window :]
    errors = part["prediction"].to_numpy(dtype="float64") - part["actual"].to_numpy(dtype="float64")
    live = float(np.sqrt(np.mean(errors**2)))
    fired = live > bar
    reason = (
        f"live RMSE {live:.3f} min over {policy.window:,} labelled rides "
        f"{'above' if fired else 'within'} v{facts.version}'s val RMSE {facts.val_rmse:.3f} "
        f"+ {policy.margin:.0%} = {bar:.3f}"
    )
    return TriggerResult(
        PERFORMANCE,
        fired,
        reason,
        {
            "live_rmse": live,
            "val_rmse": facts.val_rmse,
            "bar": bar,
            "labelled": policy.window,
            "last_id": int(part["id"].iloc[-1]),
        },
    )


def schedule_trigger(
    champion_since: float | None, now: float, policy: ScheduleTrigger
) -> TriggerResult:
    """``champion_since``: Unix time the current champion was deployed, None if unknown."""
    if not policy.enabled:
        return TriggerResult(SCHEDULE, False, "schedule trigger off in the policy")
    if champion_since is None:
        return TriggerResult(
            SCHEDULE, False, "the champion's deployment time is not in the history"
        )
    hours = (now - champion_since) / 3600
    fired = hours >= policy.every_hours
    return TriggerResult(
        SCHEDULE,
        fired,
        f"champion deployed {hours:.1f} h ago (retrain every {policy.every_hours:g} h)",
        {"age_hours": hours, "every_hours": policy.every_hours},
    )


def next_month(facts: VersionFacts, service: str) -> TripMonth | None:
    """The month after the newest ``service`` month the version was trained on."""
    months = [(y, m) for s, y, m in facts.months if s == service]
    if not months:
        return None
    year, month = max(months)
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return TripMonth(service, year, month)


def month_published(month: TripMonth, *, download: bool, timeout: float = 10.0) -> bool:
    """Bundled, cached, or (``download``) answered 200 by the TLC server to a HEAD request."""
    if bundled_path(month) is not None or (default_cache_dir() / month.filename).is_file():
        return True
    if not download:
        return False
    url = f"{default_base_url()}/{month.filename}"
    if not url.startswith(("https://", "http://")):
        return False
    request = urllib.request.Request(url, method="HEAD")  # noqa: S310 (http(s) only, above)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (https)
            return bool(response.status == 200)
    except OSError:
        return False


def new_month_trigger(facts: VersionFacts, policy: NewMonthTrigger) -> TriggerResult:
    if not policy.enabled:
        return TriggerResult(NEW_MONTH, False, "new-month trigger off in the policy")
    month = next_month(facts, policy.service)
    if month is None:
        return TriggerResult(
            NEW_MONTH, False, f"v{facts.version} was trained on no {policy.service} month"
        )
    published = month_published(month, download=policy.download)
    return TriggerResult(
        NEW_MONTH,
        published,
        f"{month} {'is' if published else 'is not yet'} published",
        {"month": str(month)},
    )
