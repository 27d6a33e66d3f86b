"""The plots of the HTML reports: matplotlib figures printed to PNG, returned as data.

Each function draws on its own :class:`matplotlib.figure.Figure`, printed by the Agg renderer
without pyplot (no global figure state, so it is safe from several threads of a web server),
and returns a :class:`Plot`: the PNG as a base64 ``data:`` URI plus the plain-text ``alt`` and
caption. No function here writes HTML: the templates lay a :class:`Plot` out as
``<figure><img data-plot=...>``, and Jinja2's autoescape escapes every text field (a variant
name from the log reaches ``alt`` as text). A function returns None when it has nothing to
draw.

Colours: the champion blue and the challenger orange (live rows), other variants and shadow
rows from matplotlib's default cycle; PSI bars by level (green "none", amber "moderate", red
"significant"), the A/B difference by verdict (green promote, red keep champion, amber
otherwise).
"""

from __future__ import annotations

import base64
import io
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from duration_core.profile import PSI_LEVELS, PSI_THRESHOLDS
from duration_deployment.analysis import (
    ALWAYS_VALID,
    KEEP_CHAMPION,
    PROMOTE,
    ABReport,
    absolute_errors,
    format_p,
    variant_label,
)

logger = logging.getLogger(__name__)

#: Resolution of the PNGs, dots per inch (figure sizes are in inches).
DPI = 100
#: Colours per variant role, then matplotlib's default cycle for the others.
_ROLE_COLOURS = {"champion": "#1f77b4", "challenger": "#ff7f0e"}
_OTHER_COLOURS = ("#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
_GOOD, _UNSURE, _BAD = "#1a7f37", "#bf8700", "#cf222e"
#: Bar colour per PSI level (:data:`duration_core.profile.PSI_LEVELS`, lowest first).
_LEVEL_COLOURS = dict(zip(PSI_LEVELS, (_GOOD, _UNSURE, _BAD), strict=True))
_VERDICT_COLOURS = {PROMOTE: _GOOD, KEEP_CHAMPION: _BAD}


@dataclass(frozen=True)
class Plot:
    """One plot, ready for a template.

    Attributes:
        name: The ``data-plot`` name, e.g. ``"rmse"`` or ``"psi-champion"``.
        uri: The PNG as ``data:image/png;base64,...`` (base64 characters only).
        alt: Plain text stating the plot's figures (escaped by the template).
        caption: Plain text under the plot (escaped by the template).
        width: Width of the PNG, pixels.
        height: Height of the PNG, pixels.
    """

    name: str
    uri: str
    alt: str
    caption: str
    width: int
    height: int


@dataclass(frozen=True)
class FeaturePSI:
    """A feature's PSI as a drift report gives it.

    Attributes:
        name: The distribution, e.g. ``"PULocationID"`` or ``"prediction"``.
        psi: Population stability index (>= 0), or None when the report has none.
        level: One of :data:`~duration_core.profile.PSI_LEVELS`, as the report gives it or
            from :func:`~duration_core.profile.psi_level` when it gives none; ``""`` without
            a PSI.
        reported_level: The report's own ``level`` text, ``""`` when it has none.
    """

    name: str
    psi: float | None
    level: str
    reported_level: str


def errors_plot(report: ABReport, frame: pd.DataFrame | None) -> Plot | None:
    """Histogram (density) of absolute errors (minutes) of the labelled rides per variant,
    the tail above the largest 99th percentile folded into the last of 40 bins; dashed lines
    at each MAE. None without a ``frame`` or without labelled rides.

    Raises:
        ValueError: ``frame`` lacks a column of the prediction log.
    """
    if frame is None:
        return None
    errors = {k: v for k, v in absolute_errors(frame).items() if v.size}
    order = [(v.variant, v.shadow) for v in report.variants if (v.variant, v.shadow) in errors]
    order += [k for k in errors if k not in order]
    if not order:
        return None
    upper = max(float(np.percentile(errors[k], 99)) for k in order)
    upper = upper if upper > 0 else 1.0
    bins = np.linspace(0.0, upper, 41)
    colours = _colours(order)
    fig = Figure(figsize=(8, 3.6), layout="constrained")
    ax = fig.add_subplot()
    summary = []
    for key in order:
        values = errors[key]
        label = variant_label(*key)
        mae = float(values.mean())
        ax.hist(
            np.minimum(values, upper),
            bins=list(bins),
            density=True,
            histtype="step",
            linewidth=1.8,
            color=colours[key],
            label=f"{label} (n={values.size:,}, MAE {mae:.2f} min)",
        )
        ax.axvline(mae, color=colours[key], linestyle="--", linewidth=1)
        summary.append(f"{label}: MAE {mae:.2f} min over {values.size:,} rides")
    ax.set_xlabel("absolute error |predicted - actual| (minutes)")
    ax.set_ylabel("density")
    ax.set_title("Absolute errors of labelled rides (dashed: MAE)")
    ax.legend(fontsize="small")
    return _plot(
        fig,
        "errors",
        "Distribution of absolute errors of labelled rides per variant; " + "; ".join(summary),
        f"Errors above {upper:.1f} min (the largest 99th percentile) are counted in the last bin.",
    )


def rmse_plot(report: ABReport) -> Plot | None:
    """Bars of RMSE (minutes) per variant; next to them, when the report has a difference,
    the challenger's minus the champion's mean squared error (min^2) with its confidence
    interval. None when no variant has labelled rides."""
    scored = [v for v in report.variants if v.rmse is not None]
    if not scored:
        return None
    c = report.comparison
    with_ci = c is not None and c.difference is not None
    fig = Figure(figsize=(8, 3.4), layout="constrained")
    ax = fig.add_subplot(1, 2, 1) if with_ci else fig.add_subplot()
    colours = _colours((v.variant, v.shadow) for v in scored)
    values = [float(v.rmse or 0.0) for v in scored]
    bars = ax.bar(
        [v.label for v in scored], values, color=[colours[(v.variant, v.shadow)] for v in scored]
    )
    ax.bar_label(bars, fmt="%.2f", padding=2)
    ax.set_ylabel("RMSE (minutes)")
    ax.set_title("RMSE of labelled rides")
    ax.margins(y=0.15)
    alt = "RMSE per variant: " + ", ".join(
        f"{v.label} {v.rmse:.2f} min ({v.labelled:,} labelled)" for v in scored
    )
    if c is not None and c.difference is not None:
        right = fig.add_subplot(1, 2, 2)
        low = c.ci_low if c.ci_low is not None else c.difference
        high = c.ci_high if c.ci_high is not None else c.difference
        right.errorbar(
            [c.difference],
            [0],
            # a running intersection (always valid) may leave the latest estimate outside
            xerr=[[max(0.0, c.difference - low)], [max(0.0, high - c.difference)]],
            fmt="o",
            color=_VERDICT_COLOURS.get(c.verdict, _UNSURE),
            capsize=8,
            markersize=8,
        )
        right.axvline(0, color="#57606a", linewidth=1)
        right.set_yticks([])
        right.set_xlabel(f"{c.challenger} - {c.champion} mean squared error (min$^2$)")
        interval = "confidence sequence" if c.design == ALWAYS_VALID else "CI"
        right.set_title(f"Difference, {c.confidence:.0%} {interval} ({c.method})")
        span = max(abs(low), abs(high), 1e-9)
        right.set_xlim(-1.15 * span, 1.15 * span)
        alt += (
            f"; difference in mean squared error {c.difference:+.2f} min^2, "
            f"{c.confidence:.0%} {interval} {_signed(c.ci_low)} to {_signed(c.ci_high)}"
            f", {format_p(c.p_value)}"
        )
    return _plot(fig, "rmse", alt, "Left of zero: the challenger has the smaller errors.")


def latency_plot(report: ABReport) -> Plot | None:
    """Grouped bars of p50 and p99 latency (milliseconds) per variant; None when no variant
    has a latency."""
    timed = [v for v in report.variants if v.latency_p50_ms is not None]
    if not timed:
        return None
    fig = Figure(figsize=(8, 3.2), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(timed))
    width = 0.38
    p50 = [float(v.latency_p50_ms or 0.0) for v in timed]
    p99 = [float(v.latency_p99_ms or 0.0) for v in timed]
    ax.bar_label(ax.bar(x - width / 2, p50, width, label="p50", color="#54aeff"), fmt="%.2f")
    ax.bar_label(ax.bar(x + width / 2, p99, width, label="p99", color="#0550ae"), fmt="%.2f")
    ax.set_xticks(x, [v.label for v in timed])
    ax.set_ylabel("latency (ms)")
    ax.set_title("Prediction latency per variant")
    ax.margins(y=0.15)
    ax.legend(fontsize="small")
    alt = "Latency per variant: " + ", ".join(
        f"{v.label} p50 {v.latency_p50_ms:.2f} ms, p99 {v.latency_p99_ms:.2f} ms" for v in timed
    )
    return _plot(fig, "latency", alt, "All logged predictions, labelled or not.")


def psi_plot(name: str, title: str, features: Sequence[FeaturePSI]) -> Plot | None:
    """Horizontal bars of PSI per feature, coloured by level, with dashed lines at the
    thresholds :data:`~duration_core.profile.PSI_THRESHOLDS`.

    Args:
        name: The ``data-plot`` name, e.g. ``"psi-champion"``.
        title: Who the window belongs to, e.g. ``"champion (model version 1)"``.
        features: The report's features; those without a PSI are left out.

    Returns:
        The plot, or None when no feature has a PSI.
    """
    scored = [f for f in features if f.psi is not None]
    if not scored:
        return None
    low, high = PSI_THRESHOLDS
    fig = Figure(figsize=(8, 0.5 * len(scored) + 1.6), layout="constrained")
    ax = fig.add_subplot()
    values = [float(f.psi or 0.0) for f in scored]
    bars = ax.barh(
        [f.name for f in scored], values, color=[_LEVEL_COLOURS[f.level] for f in scored]
    )
    ax.bar_label(bars, fmt="%.3f", padding=3)
    ax.axvline(low, color=_UNSURE, linestyle="--", linewidth=1.2, label=f"moderate ({low:g})")
    ax.axvline(high, color=_BAD, linestyle="--", linewidth=1.2, label=f"significant ({high:g})")
    ax.invert_yaxis()
    ax.set_xlim(0, max([*values, high]) * 1.25)
    ax.set_xlabel("population stability index (PSI)")
    ax.set_title(f"PSI per feature: {title}")
    ax.legend(fontsize="small", loc="lower right")
    alt = f"PSI per feature for {title}: " + ", ".join(f"{f.name} {f.psi:.3f}" for f in scored)
    alt += f"; thresholds {low:g} (moderate) and {high:g} (significant)"
    return _plot(fig, name, alt, "Dashed lines: the PSI thresholds.")


def _colours(variants: Iterable[tuple[str, bool]]) -> dict[tuple[str, bool], str]:
    colours: dict[tuple[str, bool], str] = {}
    others = iter(_OTHER_COLOURS * 4)
    for key in variants:
        variant, shadow = key
        colours[key] = (
            _ROLE_COLOURS[variant]
            if variant in _ROLE_COLOURS and not shadow
            else next(others, "#7f7f7f")
        )
    return colours


def _signed(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:+,.2f}"


def _plot(fig: Figure, name: str, alt: str, caption: str) -> Plot:
    """Print ``fig`` to PNG (no ``Software`` metadata, so the bytes depend on the data only)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    width, height = (round(d * DPI) for d in fig.get_size_inches())
    logger.debug("plot %s: %s bytes of PNG", name, f"{buffer.tell():,}")
    uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return Plot(name=name, uri=uri, alt=alt, caption=caption, width=width, height=height)
