"""What an A/B report holds: the verdict, each variant's figures, the comparison, the report.

Plain frozen dataclasses (the contract of ``GET /ab/report`` and of the HTML page), made by
:func:`duration_deployment.analysis.ab_report`; :meth:`ABReport.to_dict` is strict JSON.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import Enum, StrEnum
from typing import Any

import numpy as np


class Verdict(StrEnum):
    """The A/B verdict: the one place its names are spelled.

    A :class:`~enum.StrEnum`, so a member equals its text (``Verdict.PROMOTE == "promote"``)
    and serialises to it in JSON (``/ab/report`` answers ``"verdict": "promote"``).
    """

    #: The challenger's mean squared error is significantly lower (p < alpha).
    PROMOTE = "promote"
    #: The challenger's mean squared error is significantly higher (p < alpha).
    KEEP_CHAMPION = "keep champion"
    #: Too few labelled rides, no variance, or no significant difference.
    INCONCLUSIVE = "inconclusive"


#: Module-level names of the verdicts, for ``from duration_deployment.analysis import PROMOTE``.
PROMOTE = Verdict.PROMOTE
KEEP_CHAMPION = Verdict.KEEP_CHAMPION
INCONCLUSIVE = Verdict.INCONCLUSIVE


@dataclass(frozen=True)
class VariantStats:
    """Errors, latency and failures of one variant over the log.

    Attributes:
        variant: Routing name (``champion``, ``challenger``, ...).
        model_version: Model version(s) the variant served; several are joined by ``", "``
            (and noted in the report), none is ``""``.
        predictions: Rows logged, failed and unlabelled ones included.
        labelled: Rows with a finite prediction and an actual: the rides RMSE and MAE use.
        rmse: Root mean squared error over the labelled rides, minutes; None if there are none.
        mae: Mean absolute error over the labelled rides, minutes; None if there are none.
        mean_squared_error: MSE over the labelled rides, min^2 (``rmse ** 2``); None if none.
        latency_p50_ms: Median latency, milliseconds (numpy's default linear interpolation,
            Hyndman & Fan 1996 definition 7); None when no row has a latency.
        latency_p99_ms: 99th percentile latency, milliseconds, same method; None likewise.
        error_rate: Share of the rows where the variant failed, in [0, 1].
        shadow: True for the rows scored in shadow.
    """

    variant: str
    model_version: str
    predictions: int
    labelled: int
    rmse: float | None
    mae: float | None
    mean_squared_error: float | None
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    error_rate: float
    shadow: bool

    @property
    def label(self) -> str:
        """Display name: the variant, with ``(shadow)`` for shadow rows."""
        return variant_label(self.variant, self.shadow)


@dataclass(frozen=True)
class Comparison:
    """Champion against challenger on per-ride squared error.

    Attributes:
        champion: The champion's variant name.
        challenger: The challenger's variant name.
        metric: What is compared: :data:`METRIC`.
        difference: Challenger mean squared error minus champion's, min^2 (paired: the mean of
            the per-ride differences); negative means the challenger is better. None when a
            side has no labelled ride.
        ci_low: Lower end of the ``confidence`` interval of ``difference``, min^2.
        ci_high: Upper end, min^2.
        p_value: Two-sided p-value of "no difference"; None when it cannot be computed
            (fewer than 2 labelled rides on a side, or no variance at all). For the
            always-valid design it is the mSPRT's always-valid p-value (valid however often
            it is looked at), and the interval is its confidence sequence.
        method: :data:`MSPRT` or :data:`WELCH` (disjoint rides), :data:`PAIRED_MSPRT` or
            :data:`PAIRED` (a shadow challenger on the champion's rides).
        design: :data:`ALWAYS_VALID` or :data:`FIXED_HORIZON` (valid at one look only).
        confidence: ``1 - alpha``.
        min_detectable_effect: Smallest change worth detecting, relative to the champion's
            MSE (0.05 is 5 %).
        required_labelled_challenger: Labelled challenger rides that detect that change with
            the requested power at the current split (pairs, for a shadow challenger); None
            when the variances cannot be estimated yet.
        required_labelled_champion: Labelled champion rides at the same moment: the
            challenger's figure times the split's ratio (the same pairs, for a shadow).
        more_labelled_needed: Labelled challenger rides still missing: ``max(0,
            max(required, min_labelled) - challenger labelled)``; 0 once the verdict is
            ``promote`` or ``keep champion``.
        decided_at: Labelled challenger rides (pairs) when the always-valid test first
            crossed its boundary, the moment a monitor acting at once would have stopped;
            None when it has not (and for the fixed-horizon design).
        verdict: A :class:`Verdict` (:data:`PROMOTE`, :data:`KEEP_CHAMPION` or
            :data:`INCONCLUSIVE`).
        reason: One sentence with the figures behind the verdict.
    """

    champion: str
    challenger: str
    metric: str
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    method: str
    design: str
    confidence: float
    min_detectable_effect: float
    required_labelled_challenger: int | None
    required_labelled_champion: int | None
    more_labelled_needed: int | None
    decided_at: int | None
    verdict: Verdict
    reason: str


@dataclass(frozen=True)
class ABReport:
    """The A/B report: per-variant figures and the champion/challenger comparison.

    Attributes:
        generated_at: When the report was made, ISO 8601 UTC (seconds).
        variants: One entry per variant and shadow flag: champion first, then challenger
            (live, then shadow), then any other variant in order of first appearance.
        comparison: None when the champion or the challenger has no rows (see ``notes``).
        alpha: Significance level of the test.
        notes: Caveats worth reading next to the figures (one sentence each).
    """

    generated_at: str
    variants: list[VariantStats]
    comparison: Comparison | None
    alpha: float
    notes: list[str] = field(default_factory=list)

    def variant(self, name: str, *, shadow: bool = False) -> VariantStats | None:
        """The stats of variant ``name`` (its shadow rows when ``shadow``), or None."""
        for stats_ in self.variants:
            if stats_.variant == name and stats_.shadow == shadow:
                return stats_
        return None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict: NaN and infinities become None, so ``json.dumps(...,
        allow_nan=False)`` accepts it."""
        result: dict[str, Any] = _json_safe(asdict(self))
        return result


def variant_label(variant: str, shadow: bool) -> str:
    """``"challenger (shadow)"`` for shadow rows, else the variant name."""
    return f"{variant} (shadow)" if shadow else variant


def _json_safe(value: Any) -> Any:
    """``value`` with NaN/inf floats as None, numpy scalars as Python ones, enums (the
    :class:`Verdict`) as their plain values."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
