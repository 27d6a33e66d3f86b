"""Self-contained HTML pages of the A/B report and of the drift report, from Jinja2 templates.

Each page is one HTML5 document that loads nothing: the CSS is inline, the plots are PNG
images inlined as base64 ``data:`` URIs (drawn by :mod:`duration_deployment.report_plots`),
and a Content-Security-Policy ``<meta>`` (:data:`CONTENT_SECURITY_POLICY`) forbids every
other source, scripts included, so a page opens the same on a machine without network, saved
to a file or served, and cannot be made to fetch anything.

The templates (``templates/base.html.j2``, ``ab_report.html.j2``, ``drift_report.html.j2``,
``macros.html.j2``) and the style sheet (``templates/report.css``) are package data, loaded
from the installed package (never the working directory) by :data:`ENVIRONMENT`, which has
autoescape on for every template and :class:`jinja2.StrictUndefined`: every piece of text from
a report or a log is escaped by Jinja2, and a field the template reads but the report lacks
raises :class:`jinja2.UndefinedError` instead of printing nothing. The one value marked safe
is the style sheet (see :func:`_style_sheet`).

What the pages decide comes from one place each: the verdict names from
:class:`duration_deployment.analysis.Verdict`; whether a window drifted from the report's own
``drifted`` field (set by :func:`duration_core.profile.drift_report`), the PSI thresholds,
levels and small-window size from :mod:`duration_core.profile`.

The A/B page puts its verdict in the element ``id="verdict"``, the drift page its overall
status in ``id="drift-status"``; every plot is an ``<img>`` with ``alt`` text that states its
figures and a ``data-plot`` attribute naming it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from duration_core.profile import (
    MIN_WINDOW_ROWS,
    PSI_LEVELS,
    PSI_THRESHOLDS,
    psi_level,
    unseen_pairs_drifted,
)
from duration_deployment import report_plots
from duration_deployment.analysis import (
    ALWAYS_VALID,
    KEEP_CHAMPION,
    PAIRED_METHODS,
    PROMOTE,
    ABReport,
    format_p,
    variant_label,
)
from duration_deployment.report_plots import FeaturePSI, Plot

#: The PSI thresholds the drift page draws: the core's (kept under this name for callers).
DEFAULT_PSI_THRESHOLDS = PSI_THRESHOLDS
#: Only what the page itself carries: inline styles and data: images, nothing else.
CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
#: The status class of each verdict (green, red); any other is ``unsure`` (amber).
_VERDICT_KIND = {PROMOTE: "good", KEEP_CHAMPION: "bad"}


def _num(value: float | None, digits: int = 2, sign: bool = False) -> str:
    """Filter ``num``: ``1,234.57`` (``+`` sign too with ``sign``); ``n/a`` for None/NaN."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:+,.{digits}f}" if sign else f"{value:,.{digits}f}"


def _count(value: int | None) -> str:
    """Filter ``count``: ``12,345``; ``n/a`` for None."""
    return "n/a" if value is None else f"{value:,}"


def _pct(value: float, digits: int) -> str:
    """Filter ``pct``: a share 0-1 as a percentage, ``0.05`` -> ``5.0%`` at 1 digit."""
    return f"{value:.{digits}%}"


def _pvalue(value: float | None) -> str:
    """Filter ``pvalue``: ``0.034``, ``2.1e-07`` or ``no p-value``."""
    return format_p(value).removeprefix("p = ")


#: The templates' environment: package data, autoescape everywhere, missing fields raise.
ENVIRONMENT = Environment(
    loader=PackageLoader("duration_deployment", "templates"),
    autoescape=select_autoescape(
        enabled_extensions=("html", "j2"), default_for_string=True, default=True
    ),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
ENVIRONMENT.filters.update(num=_num, count=_count, pct=_pct, pvalue=_pvalue)
ENVIRONMENT.globals.update(
    csp=CONTENT_SECURITY_POLICY, PAIRED_METHODS=PAIRED_METHODS, ALWAYS_VALID=ALWAYS_VALID
)


def render_template(name: str, **context: Any) -> str:
    """Render the package template ``name`` with ``context`` and the inlined style sheet.

    Raises:
        jinja2.TemplateNotFound: No template ``name`` in the package.
        jinja2.UndefinedError: The template reads a name or field ``context`` lacks.
    """
    return ENVIRONMENT.get_template(name).render(css=_style_sheet(), **context)


def style_sheet() -> Markup:
    """The reports' style sheet, safe to inline (level 4's timeline uses it too)."""
    return _style_sheet()


@cache
def _style_sheet() -> Markup:
    """``templates/report.css``, read once through the package loader, marked safe.

    Why safe: it is a file of this package, not data, and escaping would turn its quotes into
    entities that CSS does not decode. It is refused if it holds a ``<``, so it cannot end the
    ``<style>`` element it is inlined into.

    Raises:
        RuntimeError: The style sheet holds a ``<``.
    """
    css, _, _ = ENVIRONMENT.loader.get_source(ENVIRONMENT, "report.css")  # type: ignore[union-attr]  # the environment has a loader
    if "<" in css:
        raise RuntimeError("templates/report.css must not contain '<' (it is inlined in <style>)")
    return Markup(css)  # noqa: S704 - our own static file, checked above


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
        report: From :func:`duration_deployment.analysis.ab_report` (any object with its
            fields: the template reads ``generated_at``, ``alpha``, ``variants``,
            ``comparison`` and ``notes``).
        frame: The prediction log the report was made from (for the error distributions).

    Returns:
        The HTML document, UTF-8 text.

    Raises:
        ValueError: ``frame`` lacks a column of the prediction log.
        jinja2.UndefinedError: ``report`` lacks a field the page shows.
    """
    comparison = report.comparison
    title = "A/B analysis"
    if comparison is not None:
        title = f"A/B analysis: {comparison.challenger} vs {comparison.champion}"
    plots: list[Plot] = []
    if report.variants:
        drawn = (
            report_plots.errors_plot(report, frame),
            report_plots.rmse_plot(report),
            report_plots.latency_plot(report),
        )
        plots = [plot for plot in drawn if plot is not None]
    kind = _VERDICT_KIND.get(comparison.verdict, "unsure") if comparison else "unsure"
    return render_template("ab_report.html.j2", title=title, report=report, kind=kind, plots=plots)


@dataclass(frozen=True)
class DriftStatus:
    """The drift page's headline (``id="drift-status"``).

    Attributes:
        kind: Status class: ``good``, ``bad`` or ``unsure``.
        flag: ``data-drifted``: ``"true"``, ``"false"``, ``"unknown"`` (no variant assessed),
            or None when there is no report at all (the attribute is left out).
        headline: The sentence.
    """

    kind: str
    flag: str | None
    headline: str


@dataclass(frozen=True)
class VariantDrift:
    """One variant's section of the drift page, as plain text and data.

    Attributes:
        key: ``data-variant``: the report's ``variant``, ``""`` when it has none.
        name: Heading, e.g. ``"challenger (shadow) (model version 2)"``.
        kind: Status class: ``good`` (no drift), ``bad`` (drift) or ``unsure`` (not assessed).
        status: The status sentence's start, e.g. ``"Drift detected"``.
        window: ``"5,000 predictions logged ... to ..., against the training data ..."``.
        unseen: The unseen-pair share, e.g. ``"9.8% of the window (threshold 15.0%)"``.
        features: The report's features in its order.
        plot: The PSI bars, None when no feature has a PSI.
    """

    key: str
    name: str
    kind: str
    status: str
    window: str
    unseen: str
    features: list[FeaturePSI]
    plot: Plot | None


def render_drift_html(drift: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None) -> str:
    """The drift report as one self-contained HTML page.

    The overall status is in ``id="drift-status"`` (``data-drifted`` is ``true``, ``false``,
    or ``unknown`` when no variant could be assessed); each variant gets a table of its
    features' PSI, the share of its rides whose pickup/dropoff pair the model never saw in
    training, and a horizontal bar chart of the PSI per feature with the threshold lines
    (``data-plot="psi-<variant>"``, ``psi-<variant>-shadow`` for a shadow variant).

    A variant is *assessed* when its report carries ``drifted`` (true or false), as
    :meth:`duration_core.profile.DriftReport.to_dict` writes it; the page never decides drift
    itself. A variant without it (the router's "not enough data", "no reference profile") is
    listed as not assessed, with its ``status`` text. An assessed window of fewer than
    :data:`duration_core.profile.MIN_WINDOW_ROWS` rows is marked a small window.

    Args:
        drift: One variant's report, e.g. ``{"model_version": "3", "variant": "champion",
            "window_rows": 5000, "features": {"PULocationID": {"psi": 0.31, "level":
            "significant"}, ...}, "unseen_pair_share": 0.12, "unseen_pair_threshold": 0.15,
            "drifted": True}``; a list of such dicts; or ``{"variants": [...],
            "generated_at": ...}`` (other keys ignored). ``shadow``, ``status``, ``window``
            (``{"from", "to"}``), ``profile_source`` and ``thresholds`` are optional; other
            missing keys are shown as ``n/a``; a feature's missing ``level`` is taken from
            :func:`duration_core.profile.psi_level`. None or an empty list gives a page that
            says there is no data.

    Returns:
        The HTML document, UTF-8 text.

    Raises:
        TypeError: ``drift`` is not a dict, a list of dicts or None.
        ValueError: A report's ``thresholds`` differ from
            :data:`duration_core.profile.PSI_THRESHOLDS` (its levels would not match the
            lines drawn).
    """
    reports = _drift_reports(drift)
    generated = drift.get("generated_at") if isinstance(drift, Mapping) else None
    for report in reports:
        _check_thresholds(report)
    return render_template(
        "drift_report.html.j2",
        title="Data drift",
        generated=str(generated) if generated else "",
        status=_drift_status(reports),
        variants=[_variant_drift(report, index) for index, report in enumerate(reports)],
        thresholds=PSI_THRESHOLDS,
    )


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


def _check_thresholds(report: Mapping[str, Any]) -> None:
    given = report.get("thresholds")
    if given is None:
        return
    try:
        same = tuple(float(t) for t in given) == PSI_THRESHOLDS
    except (TypeError, ValueError):
        same = False
    if not same:
        raise ValueError(
            f"drift report of {report.get('variant')!r} has PSI thresholds {given!r}; this page "
            f"draws duration_core's {list(PSI_THRESHOLDS)}"
        )


def _float(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]  # any report value; errors caught
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _features(report: Mapping[str, Any]) -> list[FeaturePSI]:
    """The report's features; a bare number is a PSI without a level."""
    out = []
    for name, entry in (report.get("features") or {}).items():
        if isinstance(entry, Mapping):
            value, reported = _float(entry.get("psi")), str(entry.get("level") or "")
        else:
            value, reported = _float(entry), ""
        level = reported.lower() if reported.lower() in PSI_LEVELS else ""
        if not level and value is not None:
            level = psi_level(value)
        out.append(FeaturePSI(name=str(name), psi=value, level=level, reported_level=reported))
    return out


def _is_assessed(report: Mapping[str, Any]) -> bool:
    return report.get("drifted") is not None


def _drift_name(report: Mapping[str, Any]) -> str:
    name = variant_label(str(report.get("variant") or "model"), bool(report.get("shadow")))
    version = report.get("model_version")
    return f"{name} (model version {version})" if version not in (None, "") else name


def _drift_summary(report: Mapping[str, Any]) -> str:
    """``"champion (model version 3): PULocationID PSI 0.31 (significant), ..."``: the
    features above the lowest level, and the unseen pairs when they exceed their threshold."""
    parts = [
        f"{f.name} PSI {f.psi:.2f}" + (f" ({f.reported_level})" if f.reported_level else "")
        for f in _features(report)
        if f.psi is not None and f.level != PSI_LEVELS[0]
    ]
    share = _float(report.get("unseen_pair_share"))
    limit = _float(report.get("unseen_pair_threshold"))
    if share is not None and limit is not None and unseen_pairs_drifted(share, limit):
        parts.append(f"unseen pickup/dropoff pairs {share:.1%} > {limit:.1%}")
    return _drift_name(report) + (": " + ", ".join(parts) if parts else "")


def _drift_status(reports: Sequence[Mapping[str, Any]]) -> DriftStatus:
    if not reports:
        return DriftStatus("unsure", None, "No drift data: no predictions in the window yet.")
    assessed = [r for r in reports if _is_assessed(r)]
    drifted = [r for r in assessed if r["drifted"]]
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
            f"{_drift_name(r)}: {r.get('status') or 'no drift verdict'}" for r in pending
        )
        headline += "" if headline.endswith(".") else "."
    return DriftStatus(kind, flag, headline)


def _variant_drift(report: Mapping[str, Any], index: int) -> VariantDrift:
    rows = _float(report.get("window_rows"))
    window = f"{int(rows):,} predictions" if rows is not None else "n/a"
    found = report.get("window")
    span: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    if span.get("from"):
        window += f" logged {span['from']} to {span.get('to')}"
    if report.get("profile_source"):
        window += f", against the training data {report['profile_source']}"
    share = _float(report.get("unseen_pair_share"))
    limit = _float(report.get("unseen_pair_threshold"))
    unseen = "n/a"
    if share is not None:
        unseen = f"{share:.1%} of the window"
        if limit:
            exceeded = ", exceeded" if unseen_pairs_drifted(share, limit) else ""
            unseen += f" (threshold {limit:.1%}{exceeded})"
    if not _is_assessed(report):
        status, kind = f"not assessed: {report.get('status') or 'no drift verdict'}", "unsure"
    else:
        drifted = bool(report["drifted"])
        status = "drift detected" if drifted else "no drift detected"
        kind = "bad" if drifted else "good"
        if rows is not None and rows < MIN_WINDOW_ROWS:
            status += " (small window: zone PSIs are inflated by sampling noise)"
    features = _features(report)
    plot_name = str(report.get("variant") or f"report-{index + 1}")
    plot_name += "-shadow" if report.get("shadow") else ""
    return VariantDrift(
        key=str(report.get("variant") or ""),
        name=_drift_name(report),
        kind=kind,
        status=status[0].upper() + status[1:],
        window=window,
        unseen=unseen,
        features=features,
        plot=report_plots.psi_plot(f"psi-{plot_name}", _drift_name(report), features),
    )
