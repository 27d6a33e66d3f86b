"""A/B analysis of logged predictions: per-variant errors and latency, champion vs challenger.

The input is the router's prediction log as a DataFrame, one row per prediction made by one
variant (a served model version):

================  =======  ==================================================================
column            type     meaning
================  =======  ==================================================================
``variant``       str      routing name, e.g. ``champion`` or ``challenger``
``model_version`` str      registered model version the variant served
``shadow``        bool     scored in shadow (the answer went to nobody), not on live traffic
``prediction``    float    predicted duration, minutes; NaN when the prediction failed
``actual``        float    actual duration, minutes; NaN while no feedback has arrived
``latency_ms``    float    time spent predicting, milliseconds
``error``         bool     the variant failed on this ride
``ride_id``       str      caller's ride id (sticky routing, feedback and shadow pairing)
================  =======  ==================================================================

Every row counts in ``predictions``, latency and error rate; RMSE, MAE and the tests use only
the *labelled* rows, those with both a finite prediction and an actual. Shadow rows are their
own variant: a challenger scored in shadow saw the very rides the champion answered.

The statistics that compare champion and challenger (always-valid mSPRT or fixed-horizon
Welch / paired bootstrap) are :mod:`duration_deployment.ab_tests`; this module turns the log
into per-variant figures and the tests' figures into a verdict with its reasons; the report's
dataclasses are :mod:`duration_deployment.ab_results`.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from duration_deployment import ab_tests
from duration_deployment.ab_results import (
    INCONCLUSIVE,
    KEEP_CHAMPION,
    PROMOTE,
    ABReport,
    Comparison,
    VariantStats,
    Verdict,
    variant_label,
)
from duration_deployment.ab_tests import (
    ALWAYS_VALID,
    DESIGNS,
    FIXED_HORIZON,
    MSPRT,
    PAIRED,
    PAIRED_METHODS,
    PAIRED_MSPRT,
    WELCH,
    Design,
)

logger = logging.getLogger(__name__)

__all__ = [
    "ALWAYS_VALID",
    "DESIGNS",
    "FIXED_HORIZON",
    "INCONCLUSIVE",
    "KEEP_CHAMPION",
    "METRIC",
    "MSPRT",
    "PAIRED",
    "PAIRED_METHODS",
    "PAIRED_MSPRT",
    "PROMOTE",
    "REQUIRED_COLUMNS",
    "WELCH",
    "ABReport",
    "Comparison",
    "Design",
    "VariantStats",
    "Verdict",
    "ab_report",
    "absolute_errors",
    "format_p",
    "variant_label",
]

#: Columns of the prediction log, in the router's order.
REQUIRED_COLUMNS = (
    "variant",
    "model_version",
    "shadow",
    "prediction",
    "actual",
    "latency_ms",
    "error",
    "ride_id",
)
#: What the comparison measures.
METRIC = "squared error (min^2)"


def ab_report(
    frame: pd.DataFrame,
    *,
    champion: str = "champion",
    challenger: str = "challenger",
    alpha: float = 0.05,
    power: float = 0.8,
    min_detectable_effect: float = 0.05,
    min_labelled: int = 30,
    bootstrap_samples: int = 2000,
    seed: int = 0,
    design: str = ALWAYS_VALID,
    mixture_scale: float = 0.2,
) -> ABReport:
    """Per-variant stats and the champion/challenger verdict from a prediction log.

    Verdict rules, in order: fewer than ``min_labelled`` labelled rides on either side (pairs,
    for a shadow challenger) is ``inconclusive``; ``p < alpha`` with a negative difference is
    ``promote``; ``p < alpha`` with a positive one is ``keep champion``; anything else is
    ``inconclusive``.

    The **always-valid** design (the default) runs the mSPRT of
    :mod:`duration_deployment.sequential` over the labelled rides in the log's order (the
    order they were predicted): its p-value and confidence sequence stay valid however often
    the report is asked for, and a decision is the sign of the difference when the boundary
    was first crossed (``decided_at``). The **fixed-horizon** design is the Welch t-test or
    the paired bootstrap below, valid only when looked at once, at a sample size fixed in
    advance.

    The sample size that detects a change of ``delta = min_detectable_effect x champion MSE``
    with power ``power`` accounts for the split: with ``k`` champion rides per challenger ride
    (the log's ratio; 9 at 90/10), the fixed-horizon normal-approximation formula for two
    independent means with allocation ratio ``k`` (Chow, Shao & Wang 2008, *Sample Size
    Calculations in Clinical Research*, 2nd ed., sec. 3.2) is ``n_challenger = (z_{1-alpha/2}
    + z_{power})^2 (s1^2 / k + s2^2) / delta^2`` and ``n_champion = k n_challenger``, ``s1``,
    ``s2`` the sample standard deviations of the champion's and challenger's per-ride squared
    errors (at ``k = 1`` the familiar ``(s1^2 + s2^2)`` per variant). An uneven split needs
    fewer challenger rides than the even-split formula but more in total (at 90/10 about 2.8
    times the rides of 50/50): the time to a decision grows. The always-valid design needs
    more than the fixed horizon for the same power (the price of looking at will):
    :func:`duration_deployment.sequential.required_challenger_n`. For paired rides the
    one-sample forms apply to the differences (``s_d^2`` in place of ``s1^2 / k + s2^2``).
    ``n`` is rounded up (and is at least 2).

    Args:
        frame: The prediction log, columns :data:`REQUIRED_COLUMNS` (see the module
            docstring), ``n`` rows; extra columns are ignored.
        champion: Variant name of the champion (its live rows).
        challenger: Variant name of the challenger: live rows if it has any, else shadow.
        alpha: Two-sided significance level, in (0, 1).
        power: Power wanted for the sample size, in (0, 1).
        min_detectable_effect: Relative change of the champion's MSE worth detecting, > 0.
        min_labelled: Fewest labelled rides per side before any verdict, at least 2.
        bootstrap_samples: Resamples of the paired bootstrap, at least 100.
        seed: Seed of the paired bootstrap (numpy ``default_rng``).
        design: :data:`ALWAYS_VALID` (default) or :data:`FIXED_HORIZON`.
        mixture_scale: The mSPRT's mixing scale ``tau`` relative to the champion's MSE, > 0:
            the test reaches a decision quickest for effects near it (0.2: a 20 % change)
            and is valid whatever it is (figures: ``tox -e bench-ab``).

    Returns:
        The report. An empty frame (no rows, whatever its columns) gives no variants and a
        note; a missing champion or
        challenger gives ``comparison=None`` and a note. Never raises for lack of data.

    Raises:
        ValueError: A column of :data:`REQUIRED_COLUMNS` is missing (the message names it),
            or a parameter is out of range.
    """
    _check_parameters(alpha, power, min_detectable_effect, min_labelled, bootstrap_samples)
    if not (math.isfinite(mixture_scale) and mixture_scale > 0):
        raise ValueError(f"mixture_scale must be a positive number, got {mixture_scale}")
    if design not in DESIGNS:
        raise ValueError(f"design must be one of {', '.join(map(repr, DESIGNS))}, got {design!r}")
    generated_at = datetime.now(UTC).isoformat(timespec="seconds")
    if len(frame) == 0:
        return ABReport(generated_at, [], None, alpha, ["no predictions logged yet"])
    data = _normalise(frame)
    notes: list[str] = []
    variants = _variant_stats(data, champion, challenger, notes)
    comparison = _compare(
        data,
        champion=champion,
        challenger=challenger,
        alpha=alpha,
        power=power,
        mde=min_detectable_effect,
        min_labelled=min_labelled,
        bootstrap_samples=bootstrap_samples,
        seed=seed,
        notes=notes,
        design=design,
        mixture_scale=mixture_scale,
    )
    if comparison is not None:
        logger.info(
            "A/B %s vs %s: %s (%s, p=%s)",
            challenger,
            champion,
            comparison.verdict,
            comparison.method,
            comparison.p_value,
        )
    return ABReport(generated_at, variants, comparison, alpha, notes)


def absolute_errors(frame: pd.DataFrame) -> dict[tuple[str, bool], np.ndarray]:
    """Absolute errors (minutes) of the labelled rides, per ``(variant, shadow)``.

    Args:
        frame: The prediction log, as for :func:`ab_report`.

    Returns:
        ``{(variant, shadow): errors}``, each of shape ``(labelled,)``, in the log's order of
        first appearance; empty for an empty frame.

    Raises:
        ValueError: A required column is missing.
    """
    if len(frame) == 0:
        return {}
    data = _normalise(frame)
    scored = data[data["scored"]]
    return {
        (str(variant), bool(shadow)): (group["prediction"] - group["actual"]).abs().to_numpy()
        for (variant, shadow), group in scored.groupby(["variant", "shadow"], sort=False)
    }


def _check_parameters(
    alpha: float, power: float, mde: float, min_labelled: int, bootstrap_samples: int
) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    if not 0 < power < 1:
        raise ValueError(f"power must lie in (0, 1), got {power}")
    if not (math.isfinite(mde) and mde > 0):
        raise ValueError(f"min_detectable_effect must be a positive number, got {mde}")
    if min_labelled < 2:
        raise ValueError(
            f"min_labelled must be at least 2 (a variance needs 2), got {min_labelled}"
        )
    if bootstrap_samples < 100:
        raise ValueError(f"bootstrap_samples must be at least 100, got {bootstrap_samples}")


def _text(value: object) -> str | None:
    """A log cell as text; None, NaN and NA are None."""
    if value is None or isinstance(value, str):
        return value
    return None if bool(pd.isna(value)) else str(value)  # type: ignore[call-overload]  # any cell


def _normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """Typed copy of the log with ``se`` (squared error) and ``scored`` columns.

    Raises:
        ValueError: A required column is missing.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(
            f"prediction log is missing column {', '.join(repr(c) for c in missing)} "
            f"(expected {', '.join(REQUIRED_COLUMNS)})"
        )
    prediction = pd.to_numeric(frame["prediction"], errors="coerce").to_numpy(dtype="float64")
    actual = pd.to_numeric(frame["actual"], errors="coerce").to_numpy(dtype="float64")
    latency = pd.to_numeric(frame["latency_ms"], errors="coerce").to_numpy(dtype="float64")
    prediction = np.where(np.isfinite(prediction), prediction, np.nan)  # inf is a failure too
    scored = np.isfinite(prediction) & np.isfinite(actual)
    data = pd.DataFrame(
        {
            "variant": [str(v) for v in frame["variant"]],
            "model_version": [_text(v) or "" for v in frame["model_version"]],
            "shadow": [bool(v) if _text(v) is not None else False for v in frame["shadow"]],
            "prediction": prediction,
            "actual": actual,
            "latency_ms": np.where(np.isfinite(latency), latency, np.nan),
            "error": [bool(v) if _text(v) is not None else False for v in frame["error"]],
            "ride_id": pd.Series([_text(v) for v in frame["ride_id"]], dtype="object"),
            "scored": scored,
        }
    )
    data["se"] = np.where(scored, (prediction - actual) ** 2, np.nan)
    return data


def _variant_stats(
    data: pd.DataFrame, champion: str, challenger: str, notes: list[str]
) -> list[VariantStats]:
    def order(key: tuple[str, bool]) -> tuple[int, bool]:
        variant, shadow = key
        return ({champion: 0, challenger: 1}.get(variant, 2), shadow)

    groups: dict[tuple[str, bool], pd.DataFrame] = {
        (str(variant), bool(shadow)): group
        for (variant, shadow), group in data.groupby(["variant", "shadow"], sort=False)
    }
    result = []
    for variant, shadow in sorted(groups, key=order):  # stable: others keep log order
        group = groups[(variant, shadow)]
        versions = list(dict.fromkeys(v for v in group["model_version"] if v))
        if len(versions) > 1:
            notes.append(
                f"{variant_label(variant, shadow)} served {len(versions)} model versions "
                f"({', '.join(versions)}); its figures pool them"
            )
        labelled = group[group["scored"]]
        se = labelled["se"].to_numpy()
        ae = (labelled["prediction"] - labelled["actual"]).abs().to_numpy()
        latency = group["latency_ms"].dropna().to_numpy()
        mse = float(se.mean()) if se.size else None
        result.append(
            VariantStats(
                variant=str(variant),
                model_version=", ".join(versions),
                predictions=len(group),
                labelled=int(se.size),
                rmse=math.sqrt(mse) if mse is not None else None,
                mae=float(ae.mean()) if ae.size else None,
                mean_squared_error=mse,
                latency_p50_ms=float(np.percentile(latency, 50)) if latency.size else None,
                latency_p99_ms=float(np.percentile(latency, 99)) if latency.size else None,
                error_rate=float(group["error"].mean()),
                shadow=bool(shadow),
            )
        )
    return result


def _compare(
    data: pd.DataFrame,
    *,
    champion: str,
    challenger: str,
    alpha: float,
    power: float,
    mde: float,
    min_labelled: int,
    bootstrap_samples: int,
    seed: int,
    notes: list[str],
    design: str = ALWAYS_VALID,
    mixture_scale: float = 0.2,
) -> Comparison | None:
    champ = data[(data["variant"] == champion) & ~data["shadow"]]
    chal = data[data["variant"] == challenger]
    if champ.empty:
        notes.append(f"no live predictions of the champion {champion!r}: nothing to compare")
        return None
    if chal.empty:
        notes.append(f"no predictions of the challenger {challenger!r}: nothing to compare")
        return None
    live = chal[~chal["shadow"]]
    if not live.empty:
        if chal["shadow"].any():
            notes.append(
                f"{challenger} has live and shadow rows; the test uses its {len(live):,} live "
                "rows, the shadow rows are reported apart"
            )
        test = ab_tests.welch(champ, live, alpha)
        if design == ALWAYS_VALID:
            test = ab_tests.always_valid_live(champ, live, test, alpha, mixture_scale, min_labelled)
    else:
        test = ab_tests.paired(
            champ, chal, alpha, bootstrap_samples, seed, notes, design, mixture_scale, min_labelled
        )
    unscored = int((~chal["scored"] & chal["actual"].notna()).sum())
    if unscored:
        notes.append(
            f"{unscored:,} labelled {challenger} rides have no prediction (failed) and are "
            "counted in its error rate, not in its errors"
        )

    required, required_champion = ab_tests.required_n(alpha, power, mde, mixture_scale, test)
    short = min(test.n_champion, test.n_challenger) < min_labelled
    if required is not None:
        more: int | None = max(0, max(required, min_labelled) - test.n_challenger)
    elif short:
        more = min_labelled - test.n_challenger if test.n_challenger < min_labelled else 0
    else:
        more = None
    verdict, reason = _verdict(
        test,
        champion=champion,
        challenger=challenger,
        alpha=alpha,
        power=power,
        mde=mde,
        min_labelled=min_labelled,
        required=required,
        more=more,
    )
    if verdict != INCONCLUSIVE:
        more = 0  # decided: the effect is larger than the one the sample size was planned for
    return Comparison(
        champion=champion,
        challenger=challenger,
        metric=METRIC,
        difference=test.difference,
        ci_low=test.ci_low,
        ci_high=test.ci_high,
        p_value=test.p_value,
        method=test.method,
        design=test.design,
        confidence=1 - alpha,
        min_detectable_effect=mde,
        required_labelled_challenger=required,
        required_labelled_champion=required_champion,
        more_labelled_needed=more,
        decided_at=test.decided_at,
        verdict=verdict,
        reason=reason,
    )


def _num(value: float | None, digits: int = 2, sign: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+,.{digits}f}" if sign else f"{value:,.{digits}f}"


def format_p(p: float | None) -> str:
    """``"p = 0.034"``, ``"p = 2.1e-07"``, or ``"no p-value"``."""
    if p is None:
        return "no p-value"
    return f"p = {p:.1e}" if p < 0.001 else f"p = {p:.3f}"


def _verdict(
    test: ab_tests.TestFigures,
    *,
    champion: str,
    challenger: str,
    alpha: float,
    power: float,
    mde: float,
    min_labelled: int,
    required: int | None,
    more: int | None,
) -> tuple[Verdict, str]:
    paired_rides = test.method in PAIRED_METHODS
    unit = "pairs of rides" if paired_rides else f"labelled {challenger} rides"
    counts = (
        f"{test.n_challenger:,} paired rides"
        if paired_rides
        else f"{test.n_challenger:,} {challenger} and {test.n_champion:,} {champion} labelled rides"
    )
    plan = (
        f"about {required:,} {unit} detect a {mde:.0%} change in MSE with {power:.0%} power "
        f"({test.design}{'' if paired_rides else ', at this split'})"
        if required is not None
        else ""
    )
    if min(test.n_champion, test.n_challenger) < min_labelled:
        need = f"; {more:,} more labelled {challenger} rides are needed" if more else ""
        if plan:
            need += f" ({plan})"
        return INCONCLUSIVE, (
            f"Too few labelled rides to judge: {counts}, fewer than the {min_labelled} per "
            f"variant needed before any verdict{need}."
        )
    interval = "confidence sequence" if test.design == ALWAYS_VALID else "CI"
    figures = (
        f"mean squared error {_num(test.challenger_mse)} vs {_num(test.champion_mse)} min^2 "
        f"(RMSE {_num(math.sqrt(test.challenger_mse or 0))} vs "
        f"{_num(math.sqrt(test.champion_mse or 0))} min), difference "
        f"{_num(test.difference, sign=True)} min^2, {1 - alpha:.0%} {interval} "
        f"[{_num(test.ci_low, sign=True)}, {_num(test.ci_high, sign=True)}], "
        f"{format_p(test.p_value)} ({test.method}, {test.design}, on {counts})"
    )
    if test.p_value is None or test.difference is None:
        return INCONCLUSIVE, f"The test could not be computed (no variance): {figures}."
    if test.design == ALWAYS_VALID:
        direction = test.decided_difference if test.decided_at is not None else None
        when = f"; decided at {test.decided_at:,} {unit}" if test.decided_at is not None else ""
    else:
        direction = test.difference if test.p_value < alpha else None
        when = ""
    if direction is not None and direction < 0:
        return PROMOTE, f"{challenger} predicts better than {champion}: {figures}{when}."
    if direction is not None and direction > 0:
        return KEEP_CHAMPION, f"{challenger} predicts worse than {champion}: {figures}{when}."
    need = f"; {plan} ({more or 0:,} more for {challenger})" if plan else ""
    return INCONCLUSIVE, f"No significant difference at alpha {alpha:g}: {figures}{need}."
