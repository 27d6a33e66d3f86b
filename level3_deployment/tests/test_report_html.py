"""The HTML report pages, rendered from real-data reports and loaded in headless Chromium.

The A/B page comes from the gbm-vs-linear split of ``test_analysis`` (green 2021-01 models on
4,000 rides of 2021-03). The drift page comes from PSI values computed here on real rides,
January 2021 being the reference: the champion's window is the March sample, whose PSIs stay
low but 9 % of whose rides have a pickup/dropoff pair January never saw (above the 5 %
threshold); the challenger's window is the March rides longer than 5 miles (a challenger that
got the airport runs), which shifts the distance and the predictions far past the 0.25 PSI
threshold; a sample of January itself is the window without drift.

A Chromium or Chrome is needed (``apt-get install chromium``, or ``LADDER_BROWSER``): without
one the browser tests are skipped, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import dataclasses
import re
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import jinja2
import numpy as np
import pandas as pd
import pytest

import duration_deployment
from duration_core import build_pipeline
from duration_core.profile import MIN_WINDOW_ROWS
from duration_deployment.analysis import ABReport, ab_report
from duration_deployment.report_html import (
    CONTENT_SECURITY_POLICY,
    DEFAULT_PSI_THRESHOLDS,
    ENVIRONMENT,
    render_ab_html,
    render_drift_html,
    render_template,
)
from duration_deployment.report_plots import rmse_plot
from ladder_testing.ab import load_month, real_predictions, split_frame
from ladder_testing.browser import load_page

#: PSI bins for numeric features: deciles of the reference (Siddiqi 2006 uses 10 bins).
PSI_BINS = 10
#: Floor of an empty bin's share, so the logarithm stays finite.
PSI_FLOOR = 1e-4


def psi(reference: np.ndarray, window: np.ndarray, *, categorical: bool) -> float:
    """Population stability index ``sum((w - r) * ln(w / r))`` over bins of the reference."""
    if categorical:
        categories = np.union1d(reference, window)
        r = pd.Series(reference).value_counts(normalize=True).reindex(categories, fill_value=0)
        w = pd.Series(window).value_counts(normalize=True).reindex(categories, fill_value=0)
        r_share, w_share = r.to_numpy(), w.to_numpy()
    else:
        edges = np.unique(np.quantile(reference, np.linspace(0, 1, PSI_BINS + 1)))
        r_share = np.histogram(np.clip(reference, edges[0], edges[-1]), edges)[0] / reference.size
        w_share = np.histogram(np.clip(window, edges[0], edges[-1]), edges)[0] / window.size
    r_share, w_share = np.maximum(r_share, PSI_FLOOR), np.maximum(w_share, PSI_FLOOR)
    return float(np.sum((w_share - r_share) * np.log(w_share / r_share)))


def drift_report(
    reference: pd.DataFrame,
    reference_predictions: np.ndarray,
    window: pd.DataFrame,
    window_predictions: np.ndarray,
    *,
    variant: str,
    model_version: str,
) -> dict:
    """A drift report in the router's shape, for ``window`` against ``reference``."""
    low, high = DEFAULT_PSI_THRESHOLDS
    features = {}
    for name, ref, win, categorical in [
        ("PULocationID", reference["PULocationID"], window["PULocationID"], True),
        ("DOLocationID", reference["DOLocationID"], window["DOLocationID"], True),
        ("trip_distance", reference["trip_distance"], window["trip_distance"], False),
        ("prediction", reference_predictions, window_predictions, False),
    ]:
        value = psi(
            np.asarray(ref, dtype="float64"),
            np.asarray(win, dtype="float64"),
            categorical=categorical,
        )
        level = "significant" if value >= high else "moderate" if value >= low else "none"
        features[name] = {"psi": value, "level": level}
    seen = set(zip(reference["PULocationID"], reference["DOLocationID"], strict=True))
    pairs = zip(window["PULocationID"], window["DOLocationID"], strict=True)
    unseen = float(np.mean([pair not in seen for pair in pairs]))
    return {
        "model_version": model_version,
        "variant": variant,
        "window_rows": len(window),
        "features": features,
        "unseen_pair_share": unseen,
        "unseen_pair_threshold": 0.05,
        "drifted": any(f["psi"] >= high for f in features.values()) or unseen > 0.05,
        "thresholds": [low, high],
    }


class _Sources(HTMLParser):
    """Every ``src`` and ``href`` of a document, and its CSP ``<meta>``."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.csp: str | None = None
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        values = dict(attrs)
        self.urls += [v or "" for k, v in attrs if k in ("src", "href", "srcset", "action")]
        if tag == "meta" and (values.get("http-equiv") or "").lower() == "content-security-policy":
            self.csp = values.get("content")


def sources(page: str) -> _Sources:
    parser = _Sources()
    parser.feed(page)
    return parser


@pytest.fixture(scope="module")
def ab_case() -> tuple[pd.DataFrame, ABReport]:
    frame = split_frame(real_predictions(), "linear", "gbm", 50)
    return frame, ab_report(frame)


@pytest.fixture(scope="module")
def drift_windows() -> dict[str, dict]:
    """Drift reports of three real windows against January 2021: ``march``, ``long_trips``
    (variants champion and challenger) and ``january`` (a sample of the reference)."""
    reference = load_month("green:2021-01")
    pipeline = build_pipeline("linear").fit(reference, reference["duration"].to_numpy())
    march = load_month("green:2021-03")
    windows = {
        "march": (real_predictions().rides, "champion", "1"),
        "long_trips": (march[march["trip_distance"] > 5].head(2_000), "challenger", "2"),
        "january": (reference.sample(4_000, random_state=0), "champion", "1"),
    }
    reference_predictions = pipeline.predict(reference)
    return {
        key: drift_report(
            reference,
            reference_predictions,
            window,
            pipeline.predict(window),
            variant=variant,
            model_version=version,
        )
        for key, (window, variant, version) in windows.items()
    }


@pytest.fixture(scope="module")
def drift_reports(drift_windows: dict[str, dict]) -> list[dict]:
    return [drift_windows["march"], drift_windows["long_trips"]]


def test_ab_page_in_chromium(ab_case: tuple[pd.DataFrame, ABReport]) -> None:
    frame, report = ab_case
    assert report.comparison is not None
    page = render_ab_html(report, frame)
    loaded = load_page(page)
    assert loaded.texts["verdict"] == "Verdict: promote"
    reason = loaded.texts["verdict-reason"]
    assert reason == report.comparison.reason
    assert f"{report.comparison.difference:+.2f}" in reason
    assert sorted(loaded.plots) == ["errors", "latency", "rmse"]
    assert loaded.images_loaded == len(loaded.images) == 3
    for image in loaded.images:
        assert image["naturalWidth"] > 300
        assert image["naturalHeight"] > 200
        assert image["alt"]
    assert "champion 7." in next(i["alt"] for i in loaded.images if i["plot"] == "rmse")
    assert loaded.title == "A/B analysis: challenger vs champion"
    champion_rides = int((real_predictions().bucket >= 50).sum())
    assert f"{champion_rides:,}" in loaded.texts["variants"]  # champion's labelled rides
    assert "mSPRT (always valid)" in loaded.texts["comparison"]
    assert "confidence sequence" in loaded.texts["comparison"]
    assert (
        f"{report.comparison.decided_at:,} labelled challenger rides" in loaded.texts["comparison"]
    )
    # Nothing fetched but the page (and the harness around it).
    assert loaded.requests == ["/", "/page.html"]


def test_ab_page_without_the_frame_has_no_error_plot(
    ab_case: tuple[pd.DataFrame, ABReport],
) -> None:
    loaded = load_page(render_ab_html(ab_case[1]))
    assert sorted(loaded.plots) == ["latency", "rmse"]
    assert loaded.images_loaded == 2


def test_drift_page_in_chromium(drift_reports: list[dict]) -> None:
    champion, challenger = drift_reports
    # Preconditions on the real data: March drifts by unseen pairs only, long trips by PSI.
    assert all(f["psi"] < 0.25 for f in champion["features"].values()), champion
    assert 0.05 < champion["unseen_pair_share"] < 0.15
    assert challenger["features"]["trip_distance"]["psi"] > 0.25
    assert challenger["drifted"]
    loaded = load_page(render_drift_html(drift_reports))
    status = loaded.texts["drift-status"]
    unseen = f"{champion['unseen_pair_share']:.1%}"
    assert status.startswith(
        f"Drift detected in champion (model version 1): unseen pickup/dropoff pairs {unseen} "
        "> 5.0%; challenger (model version 2): "
    )
    assert f"trip_distance PSI {challenger['features']['trip_distance']['psi']:.2f}" in status
    assert sorted(loaded.plots) == ["psi-challenger", "psi-champion"]
    assert loaded.images_loaded == len(loaded.images) == 2
    assert all(image["alt"].startswith("PSI per feature") for image in loaded.images)
    share = f"{challenger['unseen_pair_share']:.1%}"
    assert f"unseen in training: {share}" in loaded.dom
    assert loaded.requests == ["/", "/page.html"]


def test_drift_page_accepts_one_report_or_a_variants_key(
    drift_windows: dict[str, dict], drift_reports: list[dict]
) -> None:
    stable = drift_windows["january"]
    assert not stable["drifted"], stable
    single = load_page(render_drift_html(stable))
    assert single.texts["drift-status"] == "No drift detected in champion (model version 1)."
    assert single.plots == ["psi-champion"]
    assert single.images_loaded == 1
    wrapped = render_drift_html({"variants": drift_reports})
    assert wrapped == render_drift_html(drift_reports)


def test_drift_page_in_the_routers_shape_lists_variants_not_assessed(
    drift_windows: dict[str, dict],
) -> None:
    # GET /monitoring/report: {"window", "variants": [...]}, a variant without enough
    # predictions comes with a status and no features.
    monitoring = {
        "window": 5_000,
        "profile_source": None,
        "variants": [
            dict(drift_windows["january"], shadow=False, status="no drift"),
            {
                "variant": "challenger",
                "model_version": "2",
                "shadow": True,
                "window_rows": 12,
                "status": "not enough data: 12 predictions, 200 needed",
            },
        ],
    }
    loaded = load_page(render_drift_html(monitoring))
    assert loaded.texts["drift-status"] == (
        "No drift detected in champion (model version 1). Not assessed: challenger (shadow) "
        "(model version 2): not enough data: 12 predictions, 200 needed."
    )
    assert loaded.plots == ["psi-champion"]
    assert loaded.images_loaded == 1
    assert "Not assessed: not enough data: 12 predictions, 200 needed" in loaded.dom
    only_pending = load_page(render_drift_html({"variants": monitoring["variants"][1:]}))
    assert only_pending.texts["drift-status"].startswith("No drift data yet. Not assessed: ")
    assert only_pending.images == []


def test_pages_without_data_say_so() -> None:
    empty_ab = load_page(render_ab_html(ab_report(pd.DataFrame()), pd.DataFrame()))
    assert empty_ab.texts["verdict"] == "No verdict"
    assert empty_ab.texts["verdict-reason"] == "no predictions logged yet"
    assert "No predictions have been logged yet" in empty_ab.dom
    assert empty_ab.images == []
    for drift in (None, [], {"variants": []}):
        loaded = load_page(render_drift_html(drift))
        assert loaded.texts["drift-status"].startswith("No drift data")
        assert loaded.images == []


def test_pages_load_nothing_external(
    ab_case: tuple[pd.DataFrame, ABReport], drift_reports: list[dict]
) -> None:
    for page in (render_ab_html(ab_case[1], ab_case[0]), render_drift_html(drift_reports)):
        found = sources(page)
        assert found.csp == CONTENT_SECURITY_POLICY
        assert found.urls
        assert all(url.startswith("data:") for url in found.urls), found.urls
        assert "script" not in found.tags
        assert not re.search(r"https?://", page)


def test_text_is_escaped(ab_case: tuple[pd.DataFrame, ABReport], drift_reports: list[dict]) -> None:
    hostile = "<img src=x onerror=alert(1)>"
    frame = ab_case[0].assign(
        variant=ab_case[0]["variant"].map({"champion": hostile, "challenger": "challenger"})
    )
    report = ab_report(frame, champion=hostile)
    drift = dict(drift_reports[1], variant=hostile)
    for page in (render_ab_html(report, frame), render_drift_html(drift)):
        assert hostile not in page
        assert "&lt;img src=x onerror=alert(1)&gt;" in page
    loaded = load_page(render_ab_html(report, frame))
    assert hostile in loaded.texts["verdict-reason"]  # shown as text, not parsed as a tag
    assert loaded.images_loaded == len(loaded.images) == 3  # no extra <img>


# --- the Jinja2 templates --------------------------------------------------------------------

SCRIPT = "<script>alert(1)</script>"
ESCAPED_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"


def test_a_script_in_a_name_or_a_note_is_escaped_on_both_pages(
    ab_case: tuple[pd.DataFrame, ABReport], drift_reports: list[dict]
) -> None:
    frame = ab_case[0].assign(
        variant=ab_case[0]["variant"].map({"champion": "champion", "challenger": SCRIPT})
    )
    report = ab_report(frame, challenger=SCRIPT)
    report = dataclasses.replace(report, notes=[*report.notes, f"note {SCRIPT}"])
    drift = [
        dict(drift_reports[0], variant=SCRIPT),
        {"variant": "canary", "window_rows": 3, "status": f"not enough data {SCRIPT}"},
    ]
    for page in (render_ab_html(report, frame), render_drift_html(drift)):
        assert SCRIPT not in page
        assert ESCAPED_SCRIPT in page
        assert "script" not in sources(page).tags
    loaded = load_page(render_ab_html(report, frame))
    assert loaded.title == f"A/B analysis: {SCRIPT} vs champion"  # text, not a tag
    assert f"note {SCRIPT}" in loaded.dom.replace("&lt;", "<").replace("&gt;", ">")
    assert loaded.images_loaded == len(loaded.images) == 3


def test_the_csp_blocks_what_the_page_does_not_carry(drift_reports: list[dict]) -> None:
    # Same-origin URLs a plain page would fetch: the CSP meta (as the template writes it,
    # quotes escaped as entities) must stop both.
    probe = '<img src="/probe.png" alt="probe"><script src="/probe.js"></script></main>'
    page = render_drift_html(drift_reports).replace("</main>", probe)
    loaded = load_page(page)
    assert loaded.requests == ["/", "/page.html"]
    assert loaded.images_loaded == 2  # the two plots, not the probe


def test_templates_come_from_the_installed_package_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ab_case: tuple[pd.DataFrame, ABReport]
) -> None:
    decoy = tmp_path / "templates"
    decoy.mkdir()
    for name in ("ab_report.html.j2", "base.html.j2", "report.css"):
        (decoy / name).write_text("DECOY", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    page = render_ab_html(ab_case[1])
    assert "DECOY" not in page
    assert 'id="verdict"' in page
    package = Path(duration_deployment.__file__).resolve().parent / "templates"
    for name in ("base.html.j2", "macros.html.j2", "ab_report.html.j2", "drift_report.html.j2"):
        template = ENVIRONMENT.get_template(name)
        assert Path(str(template.filename)).resolve().parent == package


def test_a_report_lacking_a_field_raises_instead_of_printing_nothing(
    ab_case: tuple[pd.DataFrame, ABReport],
) -> None:
    report = ab_case[1]
    fields = {f.name: getattr(report, f.name) for f in dataclasses.fields(report)}
    del fields["generated_at"]
    with pytest.raises(jinja2.UndefinedError, match="generated_at"):
        render_ab_html(SimpleNamespace(**fields))  # type: ignore[arg-type]
    status = SimpleNamespace(kind="good", flag="false", headline="No drift detected.")
    context = {"title": "t", "generated": "", "status": status, "thresholds": (0.1, 0.25)}
    with pytest.raises(jinja2.UndefinedError, match="variants"):
        render_template("drift_report.html.j2", **context)
    # A missing field of a variant's section raises too, not only a missing top-level name.
    section = SimpleNamespace(key="champion", name="champion", kind="good", status="No drift")
    with pytest.raises(jinja2.UndefinedError, match="window"):
        render_template("drift_report.html.j2", **context, variants=[section])
    render_template("drift_report.html.j2", **context, variants=[])  # complete: renders


def test_the_drift_page_takes_the_verdict_from_the_report(drift_windows: dict[str, dict]) -> None:
    # The page does not re-derive drift: the report's own `drifted` decides, even when a PSI
    # is above the significant threshold (the core's rule would say drift).
    report = drift_windows["long_trips"]
    assert report["features"]["trip_distance"]["psi"] > DEFAULT_PSI_THRESHOLDS[1]
    page = render_drift_html(dict(report, drifted=False))
    assert 'data-drifted="false"' in page
    # Without a verdict the variant is listed as not assessed.
    unjudged = {k: v for k, v in report.items() if k != "drifted"}
    assert 'data-drifted="unknown"' in render_drift_html(unjudged)
    # A window below the core's MIN_WINDOW_ROWS is marked small.
    assert report["window_rows"] < MIN_WINDOW_ROWS
    assert "small window" in page
    large = render_drift_html(dict(report, window_rows=MIN_WINDOW_ROWS))
    assert "small window" not in large
    # Other thresholds than the core's would not match the lines drawn: refused.
    with pytest.raises(ValueError, match="PSI thresholds"):
        render_drift_html(dict(report, thresholds=[0.2, 0.5]))


def test_rmse_plot_when_the_estimate_has_left_the_confidence_sequence(
    ab_case: tuple[pd.DataFrame, ABReport],
) -> None:
    # The always-valid sequence is the intersection of every earlier one: the latest estimate
    # can fall outside it. The plot draws it with a one-sided bar instead of failing.
    report = ab_case[1]
    assert report.comparison is not None
    outside = dataclasses.replace(
        report.comparison, ci_low=report.comparison.difference + 1.0, ci_high=0.0
    )
    plot = rmse_plot(dataclasses.replace(report, comparison=outside))
    assert plot is not None
    assert "confidence sequence" in plot.alt
