"""Self-contained HTML pages of the A/B report and of the drift report.

Each page is one HTML5 document that loads nothing: the CSS is inline, the plots are PNG
images inlined as base64 ``data:`` URIs, and a Content-Security-Policy ``<meta>`` forbids
every other source (scripts included), so a page opens the same on a machine without network
and cannot be made to fetch anything. The plots are drawn on :class:`matplotlib.figure.Figure`
objects, printed by the Agg renderer without pyplot: no global figure state, safe to call from
several threads of a web server.

Every plot is an ``<img>`` with ``alt`` text that states its figures and a ``data-plot``
attribute naming it; every piece of text from a report or a log is escaped with
:func:`html.escape`. The A/B page puts its verdict in the element ``id="verdict"``, the drift
page its overall status in ``id="drift-status"``.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from duration_deployment.analysis import (
    PAIRED,
    PROMOTE,
    ABReport,
    Comparison,
    VariantStats,
    absolute_errors,
    format_p,
    variant_label,
)

logger = logging.getLogger(__name__)

#: Resolution of the inlined PNGs, dots per inch (figure sizes are in inches).
DPI = 100
#: PSI thresholds when a drift report gives none: below 0.1 no significant change, 0.1-0.25
#: moderate, above 0.25 significant (Siddiqi 2006, *Credit Risk Scorecards*, Wiley, the
#: system stability report; the usual rule of thumb, see Yurdakul 2018, "Statistical
#: properties of the population stability index", Western Michigan University).
DEFAULT_PSI_THRESHOLDS = (0.1, 0.25)
#: Only what the page itself carries: inline styles and data: images, nothing else.
CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
#: Colours per variant role, then matplotlib's default cycle for the others.
_ROLE_COLOURS = {"champion": "#1f77b4", "challenger": "#ff7f0e"}
_OTHER_COLOURS = ("#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #1b1f24; background: #fff; line-height: 1.45; }
main { max-width: 1000px; margin: 0 auto; padding: 1.5rem; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #d0d7de; }
.meta { color: #57606a; margin-top: 0; }
.status { border-left: 6px solid #8c959f; background: #f6f8fa; padding: 0.8rem 1rem;
          margin: 1rem 0; }
.status p { margin: 0.2rem 0; }
.status .headline { font-size: 1.25rem; font-weight: 600; }
.good { border-color: #1a7f37; } .bad { border-color: #cf222e; } .unsure { border-color: #bf8700; }
table { border-collapse: collapse; margin: 0.6rem 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d0d7de; padding: 0.3rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f6f8fa; }
#comparison td { text-align: left; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; }
figcaption { color: #57606a; font-size: 0.9rem; }
"""


def render_ab_html(report: ABReport, frame: pd.DataFrame | None = None) -> str:
    """The A/B report as one self-contained HTML page.

    Sections: the verdict (``id="verdict"``, its reason in ``id="verdict-reason"``), the
    comparison figures, a table of per-variant stats, the notes, and up to three plots
    (``data-plot`` names): ``errors``, the distribution of absolute errors of the labelled
    rides per variant (only when ``frame`` is given); ``rmse``, RMSE per variant next to the
    difference in mean squared error with its confidence interval; ``latency``, p50 and p99
    latency per variant. A plot without data is left out; a report without variants gives a
    page that says nothing was logged.

    Args:
        report: From :func:`duration_deployment.analysis.ab_report`.
        frame: The prediction log the report was made from (for the error distributions).

    Returns:
        The HTML document, UTF-8 text.

    Raises:
        ValueError: ``frame`` lacks a column of the prediction log.
    """
    comparison = report.comparison
    title = "A/B analysis"
    if comparison is not None:
        title = f"A/B analysis: {comparison.challenger} vs {comparison.champion}"
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">Generated {_e(report.generated_at)} &middot; '
        f"significance level alpha = {report.alpha:g}</p>",
        _verdict_section(report),
    ]
    if not report.variants:
        body.append(
            "<p>No predictions have been logged yet, so there is nothing to analyse: "
            "no statistics and no plots.</p>"
        )
    else:
        if comparison is not None:
            body.append(_comparison_table(comparison))
        body.append(_variants_table(report.variants))
        plots = [_errors_plot(report, frame), _rmse_plot(report), _latency_plot(report)]
        present = [p for p in plots if p]
        if present:
            body.append("<h2>Plots</h2>")
            body.extend(present)
    if report.notes:
        body.append("<h2>Notes</h2><ul>")
        body.extend(f"<li>{_e(note)}</li>" for note in report.notes)
        body.append("</ul>")
    return _page(title, body)


def render_drift_html(drift: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None) -> str:
    """The drift report as one self-contained HTML page.

    The overall status is in ``id="drift-status"`` (``data-drifted`` is ``true``, ``false``,
    or ``unknown`` when no variant could be assessed); each variant gets a table of its
    features' PSI, the share of its rides whose pickup/dropoff pair the model never saw in
    training, and a horizontal bar chart of the PSI per feature with the threshold lines
    (``data-plot="psi-<variant>"``, ``psi-<variant>-shadow`` for a shadow variant). A variant
    sent with a ``status`` text and no PSI (the router's "not enough data", "no reference
    profile") is listed as not assessed, with that text.

    Args:
        drift: One variant's report, e.g. ``{"model_version": "3", "variant": "champion",
            "window_rows": 5000, "features": {"PULocationID": {"psi": 0.31, "level":
            "significant"}, ...}, "unseen_pair_share": 0.12, "unseen_pair_threshold": 0.05,
            "drifted": True, "thresholds": [0.1, 0.25]}``; a list of such dicts; or
            ``{"variants": [...]}`` (other keys ignored); ``shadow`` and ``status`` are
            optional. Missing keys are shown as ``n/a``; ``drifted`` defaults
            to "a PSI at or above the upper threshold, or an unseen pair share above its
            threshold". None or an empty list gives a page that says there is no data.

    Returns:
        The HTML document, UTF-8 text.

    Raises:
        TypeError: ``drift`` is not a dict, a list of dicts or None.
    """
    reports = _drift_reports(drift)
    title = "Data drift"
    body = [f"<h1>{_e(title)}</h1>"]
    generated = drift.get("generated_at") if isinstance(drift, Mapping) else None
    if generated:
        body.append(
            f'<p class="meta">Generated {_e(str(generated))} &middot; each variant\'s latest '
            "logged predictions against the profile of its training data</p>"
        )
    if not reports:
        body.append(
            '<section class="status unsure"><p id="drift-status" class="headline">'
            "No drift data: no predictions in the window yet.</p></section>"
        )
        return _page(title, body)
    assessed = [r for r in reports if _is_assessed(r)]
    drifted = [r for r in assessed if _is_drifted(r)]
    if drifted:
        headline = "Drift detected in " + "; ".join(_drift_summary(r) for r in drifted) + "."
        kind, flag = "bad", "true"
    elif assessed:
        headline = "No drift detected in " + ", ".join(_drift_name(r) for r in assessed) + "."
        kind, flag = "good", "false"
    else:
        headline = "No drift data yet."
        kind, flag = "unsure", "unknown"
    pending = [r for r in reports if not _is_assessed(r)]
    if pending:
        headline += " Not assessed: " + "; ".join(
            f"{_drift_name(r)}: {r.get('status') or 'no PSI computed'}" for r in pending
        )
        headline += "" if headline.endswith(".") else "."
    body.append(
        f'<section class="status {kind}">'
        f'<p id="drift-status" class="headline" data-drifted="{flag}">'
        f"{_e(headline)}</p></section>"
    )
    for index, report in enumerate(reports):
        body.append(_drift_section(report, index))
    return _page(title, body)


# ---------------------------------------------------------------------------------------------
# A/B page


def _verdict_section(report: ABReport) -> str:
    comparison = report.comparison
    if comparison is None:
        why = report.notes[0] if report.notes else "no champion/challenger comparison"
        return (
            '<section class="status unsure"><p id="verdict" class="headline" '
            'data-verdict="none">No verdict</p>'
            f'<p id="verdict-reason">{_e(why)}</p></section>'
        )
    kind = {PROMOTE: "good", "keep champion": "bad"}.get(comparison.verdict, "unsure")
    return (
        f'<section class="status {kind}">'
        f'<p id="verdict" class="headline" data-verdict="{_e(comparison.verdict)}">'
        f"Verdict: {_e(comparison.verdict)}</p>"
        f'<p id="verdict-reason">{_e(comparison.reason)}</p></section>'
    )


def _comparison_table(c: Comparison) -> str:
    interval = (
        f"[{_num(c.ci_low, sign=True)}, {_num(c.ci_high, sign=True)}]"
        if c.ci_low is not None and c.ci_high is not None
        else "n/a"
    )
    rows = [
        ("Champion", c.champion),
        ("Challenger", c.challenger),
        ("Metric", c.metric),
        ("Method", c.method),
        ("Difference (challenger - champion), min^2", _num(c.difference, sign=True)),
        (f"{c.confidence:.0%} confidence interval, min^2", interval),
        ("p-value", format_p(c.p_value).removeprefix("p = ")),
        ("Minimum detectable effect", f"{c.min_detectable_effect:.1%} of the champion's MSE"),
        (
            "Paired rides needed" if c.method == PAIRED else "Labelled rides needed per variant",
            _int(c.required_labelled_per_variant),
        ),
        (f"More labelled {c.challenger} rides needed", _int(c.more_labelled_needed)),
    ]
    cells = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f'<h2>Comparison</h2><table id="comparison"><tbody>{cells}</tbody></table>'


def _variants_table(variants: Sequence[VariantStats]) -> str:
    head = (
        "<tr><th>Variant</th><th>Model version</th><th>Predictions</th><th>Labelled</th>"
        "<th>RMSE (min)</th><th>MAE (min)</th><th>MSE (min<sup>2</sup>)</th>"
        "<th>p50 latency (ms)</th><th>p99 latency (ms)</th><th>Error rate</th></tr>"
    )
    rows = []
    for v in variants:
        cells = [
            v.label,
            v.model_version or "n/a",
            f"{v.predictions:,}",
            f"{v.labelled:,}",
            _num(v.rmse),
            _num(v.mae),
            _num(v.mean_squared_error),
            _num(v.latency_p50_ms),
            _num(v.latency_p99_ms),
            f"{v.error_rate:.2%}",
        ]
        rows.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in cells) + "</tr>")
    return (
        '<h2>Variants</h2><table id="variants"><thead>'
        + head
        + "</thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


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


def _errors_plot(report: ABReport, frame: pd.DataFrame | None) -> str:
    """Histogram (density) of absolute errors per variant, tail folded into the last bin."""
    if frame is None:
        return ""
    errors = {k: v for k, v in absolute_errors(frame).items() if v.size}
    order = [(v.variant, v.shadow) for v in report.variants if (v.variant, v.shadow) in errors]
    order += [k for k in errors if k not in order]
    if not order:
        return ""
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
            bins=bins,
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
    return _figure(
        fig,
        "errors",
        "Distribution of absolute errors of labelled rides per variant; " + "; ".join(summary),
        f"Errors above {upper:.1f} min (the largest 99th percentile) are counted in the last bin.",
    )


def _rmse_plot(report: ABReport) -> str:
    """RMSE per variant; next to it the MSE difference with its confidence interval."""
    scored = [v for v in report.variants if v.rmse is not None]
    if not scored:
        return ""
    c = report.comparison
    with_ci = c is not None and c.difference is not None
    fig = Figure(figsize=(8, 3.4), layout="constrained")
    ax = fig.add_subplot(1, 2, 1) if with_ci else fig.add_subplot()
    colours = _colours((v.variant, v.shadow) for v in scored)
    labels = [v.label for v in scored]
    values = [float(v.rmse or 0.0) for v in scored]
    bars = ax.bar(labels, values, color=[colours[(v.variant, v.shadow)] for v in scored])
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
        colour = {PROMOTE: "#1a7f37", "keep champion": "#cf222e"}.get(c.verdict, "#bf8700")
        right.errorbar(
            [c.difference],
            [0],
            xerr=[[c.difference - low], [high - c.difference]],
            fmt="o",
            color=colour,
            capsize=8,
            markersize=8,
        )
        right.axvline(0, color="#57606a", linewidth=1)
        right.set_yticks([])
        right.set_xlabel(f"{c.challenger} - {c.champion} mean squared error (min$^2$)")
        right.set_title(f"Difference, {c.confidence:.0%} CI ({c.method})")
        span = max(abs(low), abs(high), 1e-9)
        right.set_xlim(-1.15 * span, 1.15 * span)
        alt += (
            f"; difference in mean squared error {c.difference:+.2f} min^2, "
            f"{c.confidence:.0%} CI {_num(c.ci_low, sign=True)} to {_num(c.ci_high, sign=True)}"
            f", {format_p(c.p_value)}"
        )
    return _figure(fig, "rmse", alt, "Left of zero: the challenger has the smaller errors.")


def _latency_plot(report: ABReport) -> str:
    """Grouped bars of p50 and p99 latency per variant."""
    timed = [v for v in report.variants if v.latency_p50_ms is not None]
    if not timed:
        return ""
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
    return _figure(fig, "latency", alt, "All logged predictions, labelled or not.")


# ---------------------------------------------------------------------------------------------
# Drift page


def _drift_reports(drift: object) -> list[Mapping[str, Any]]:
    if drift is None:
        return []
    if isinstance(drift, Mapping):
        if "variants" in drift and "features" not in drift:
            return _drift_reports(drift["variants"])
        return [drift]
    if isinstance(drift, Sequence) and not isinstance(drift, str | bytes):
        if not all(isinstance(r, Mapping) for r in drift):
            raise TypeError("a drift report list must hold dicts, one per variant")
        return list(drift)
    raise TypeError(f"drift must be a dict, a list of dicts or None, not {type(drift).__name__}")


def _thresholds(report: Mapping[str, Any]) -> tuple[float, float]:
    given = report.get("thresholds")
    try:
        low, high = (float(t) for t in given)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return DEFAULT_PSI_THRESHOLDS
    return (low, high)


def _features(report: Mapping[str, Any]) -> list[tuple[str, float | None, str]]:
    """``(feature, psi or None, level)`` for each feature of the report."""
    out = []
    for name, entry in (report.get("features") or {}).items():
        if isinstance(entry, Mapping):
            psi, level = _float(entry.get("psi")), str(entry.get("level") or "")
        else:
            psi, level = _float(entry), ""
        out.append((str(name), psi, level))
    return out


def _float(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _is_drifted(report: Mapping[str, Any]) -> bool:
    if report.get("drifted") is not None:
        return bool(report["drifted"])
    high = _thresholds(report)[1]
    share, limit = (
        _float(report.get("unseen_pair_share")),
        _float(report.get("unseen_pair_threshold")),
    )
    return any(psi is not None and psi >= high for _, psi, _ in _features(report)) or (
        share is not None and limit is not None and share > limit
    )


def _is_assessed(report: Mapping[str, Any]) -> bool:
    """True when the report carries a verdict: a ``drifted`` flag or at least one PSI.

    The router sends a variant it could not assess (too few predictions, no training
    profile) with a ``status`` text and no features.
    """
    return report.get("drifted") is not None or any(
        psi is not None for _, psi, _ in _features(report)
    )


def _drift_name(report: Mapping[str, Any]) -> str:
    name = variant_label(str(report.get("variant") or "model"), bool(report.get("shadow")))
    version = report.get("model_version")
    return f"{name} (model version {version})" if version not in (None, "") else name


def _drift_summary(report: Mapping[str, Any]) -> str:
    """``"champion (model version 3): PULocationID PSI 0.31 (significant), ..."``."""
    low = _thresholds(report)[0]
    parts = [
        f"{name} PSI {psi:.2f}" + (f" ({level})" if level else "")
        for name, psi, level in _features(report)
        if psi is not None and (psi >= low or level.lower() == "significant")
    ]
    share, limit = (
        _float(report.get("unseen_pair_share")),
        _float(report.get("unseen_pair_threshold")),
    )
    if share is not None and limit is not None and share > limit:
        parts.append(f"unseen pickup/dropoff pairs {share:.1%} > {limit:.1%}")
    return _drift_name(report) + (": " + ", ".join(parts) if parts else "")


def _drift_section(report: Mapping[str, Any], index: int) -> str:
    name = _drift_name(report)
    low, high = _thresholds(report)
    rows_in_window = _float(report.get("window_rows"))
    drifted = _is_drifted(report)
    window = f"{int(rows_in_window):,} predictions" if rows_in_window is not None else "n/a"
    share = _float(report.get("unseen_pair_share"))
    limit = _float(report.get("unseen_pair_threshold"))
    features = _features(report)
    rows = "".join(
        f"<tr><td>{_e(feature)}</td><td>{_e(_num(psi, 3))}</td><td>{_e(level or 'n/a')}</td></tr>"
        for feature, psi, level in features
    )
    table = (
        '<table class="psi"><thead><tr><th>Feature</th><th>PSI</th><th>Level</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
        if features
        else "<p>No feature was compared.</p>"
    )
    share_text = (
        f"{share:.1%} of the window"
        + (f" (threshold {limit:.1%}{', exceeded' if share > limit else ''})" if limit else "")
        if share is not None
        else "n/a"
    )
    if not _is_assessed(report):
        status, kind = f"not assessed: {report.get('status') or 'no PSI computed'}", "unsure"
    else:
        status = "drift detected" if drifted else "no drift detected"
        kind = "bad" if drifted else "good"
    span = report.get("window") if isinstance(report.get("window"), Mapping) else {}
    if span.get("from"):
        window += f" logged {span['from']} to {span.get('to')}"
    if report.get("profile_source"):
        window += f", against the training data {report['profile_source']}"
    if str(report.get("status", "")).find("small window") >= 0:
        status += " (small window: zone PSIs are inflated by sampling noise)"
    return (
        f'<section class="variant-drift" data-variant="{_e(str(report.get("variant") or ""))}">'
        f"<h2>{_e(name)}</h2>"
        f'<div class="status {kind}"><p class="variant-status">'
        f"{_e(status[0].upper() + status[1:])} (window of {_e(window)}; PSI thresholds "
        f"{low:g} moderate, {high:g} significant).</p>"
        f'<p class="unseen-pairs">Rides with a pickup/dropoff pair unseen in training: '
        f"{_e(share_text)}.</p></div>"
        + table
        + _psi_plot(report, index, features, (low, high))
        + "</section>"
    )


def _psi_plot(
    report: Mapping[str, Any],
    index: int,
    features: Sequence[tuple[str, float | None, str]],
    thresholds: tuple[float, float],
) -> str:
    """Horizontal bars of PSI per feature, coloured by band, with the threshold lines."""
    scored = [(name, psi) for name, psi, _ in features if psi is not None]
    if not scored:
        return ""
    low, high = thresholds
    fig = Figure(figsize=(8, 0.5 * len(scored) + 1.6), layout="constrained")
    ax = fig.add_subplot()
    names = [n for n, _ in scored]
    values = [float(p) for _, p in scored]
    colours = ["#cf222e" if p >= high else "#bf8700" if p >= low else "#1a7f37" for p in values]
    bars = ax.barh(names, values, color=colours)
    ax.bar_label(bars, fmt="%.3f", padding=3)
    ax.axvline(low, color="#bf8700", linestyle="--", linewidth=1.2, label=f"moderate ({low:g})")
    ax.axvline(
        high, color="#cf222e", linestyle="--", linewidth=1.2, label=f"significant ({high:g})"
    )
    ax.invert_yaxis()
    ax.set_xlim(0, max([*values, high]) * 1.25)
    ax.set_xlabel("population stability index (PSI)")
    ax.set_title(f"PSI per feature: {_drift_name(report)}")
    ax.legend(fontsize="small", loc="lower right")
    variant = str(report.get("variant") or f"report-{index + 1}")
    variant += "-shadow" if report.get("shadow") else ""
    alt = f"PSI per feature for {_drift_name(report)}: " + ", ".join(
        f"{n} {p:.3f}" for n, p in scored
    )
    alt += f"; thresholds {low:g} (moderate) and {high:g} (significant)"
    return _figure(fig, f"psi-{variant}", alt, "Dashed lines: the PSI thresholds.")


# ---------------------------------------------------------------------------------------------
# Shared pieces


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _num(value: float | None, digits: int = 2, sign: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:+,.{digits}f}" if sign else f"{value:,.{digits}f}"


def _int(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,}"


def _figure(fig: Figure, plot: str, alt: str, caption: str) -> str:
    """``<figure>`` with the plot as an inline PNG (``data-plot=plot``) and a caption."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    width, height = (round(d * DPI) for d in fig.get_size_inches())
    uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    logger.debug("plot %s: %s bytes of PNG", plot, f"{buffer.tell():,}")
    return (
        f'<figure><img src="{uri}" alt="{_e(alt)}" data-plot="{_e(plot)}" '
        f'width="{width}" height="{height}"><figcaption>{_e(caption)}</figcaption></figure>'
    )


def _page(title: str, body: Sequence[str]) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" href="data:,">\n'  # no /favicon.ico request either
        f"<title>{_e(title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        "<body>\n<main>\n" + "\n".join(body) + "\n</main>\n</body>\n</html>\n"
    )
