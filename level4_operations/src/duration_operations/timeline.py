"""The loop's timeline as one self-contained HTML page: PSI and live RMSE at every monitor
pass, with the retrains, stage changes and decisions drawn on the same time axis, and the
table of every event. Built from the router's history alone (the notes of
:mod:`duration_operations.ledger`), so it can be drawn from any machine that can reach the
router, during a rollout or after.

The page follows level 3's reports: Jinja2 templates with autoescape and StrictUndefined (this
package's ``timeline.html.j2`` extends level 3's ``base.html.j2`` and its style sheet), PNGs
inlined as ``data:`` URIs, a Content-Security-Policy that loads nothing. Plots carry
``data-plot`` (``psi``, ``live-rmse``); the events table is ``id="events"``, one row per
event with ``data-kind``; the current state is ``id="status"``.
"""

from __future__ import annotations

import base64
import io
import time
from dataclasses import dataclass
from typing import Any

from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined, select_autoescape
from matplotlib.figure import Figure

from duration_deployment.report_html import CONTENT_SECURITY_POLICY, style_sheet
from duration_deployment.report_plots import DPI, Plot
from duration_operations import ledger as kinds
from duration_operations.ledger import Ledger

EVENT_KINDS = (
    kinds.RETRAIN,
    kinds.STAGE,
    kinds.DECISION,
    kinds.FREEZE,
    kinds.UNFREEZE,
    kinds.APPROVAL,
)
_EVENT_COLOURS = {
    kinds.RETRAIN: "#6e7781",
    kinds.STAGE: "#bf8700",
    kinds.DECISION: "#1a7f37",
    kinds.FREEZE: "#0969da",
    kinds.UNFREEZE: "#0969da",
    kinds.APPROVAL: "#8250df",
}

ENVIRONMENT = Environment(
    loader=ChoiceLoader(
        [
            PackageLoader("duration_operations", "templates"),
            PackageLoader("duration_deployment", "templates"),
        ]
    ),
    autoescape=select_autoescape(default_for_string=True, default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class Point:
    """One monitor pass: when, the largest PSI per feature, the live RMSE and its bar."""

    at: float
    psi: dict[str, float]
    live_rmse: float | None
    bar: float | None
    champion: str


@dataclass(frozen=True)
class Event:
    at: float
    kind: str
    version: str | None
    summary: str

    @property
    def at_iso(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(self.at))


def series(ledger: Ledger) -> tuple[list[Point], list[Event]]:
    """The monitor passes as points and the other notes as events, oldest first."""
    points = []
    for note in ledger.of(kinds.MONITOR):
        psi: dict[str, float] = {}
        rmse = bar = None
        try:
            for t in note.data.get("triggers", []):
                figures = t.get("figures") or {}
                if t.get("trigger") == "drift":
                    for w in figures.get("windows", []):
                        for name, value in w.get("psi", {}).items():
                            psi[name] = max(psi.get(name, 0.0), float(value))
                if t.get("trigger") == "performance" and "live_rmse" in figures:
                    rmse, bar = float(figures["live_rmse"]), float(figures["bar"])
        except (AttributeError, TypeError, ValueError, KeyError):
            continue  # a note the loop did not write: not drawn
        points.append(Point(note.at, psi, rmse, bar, str(note.data.get("champion", ""))))
    events = [Event(n.at, n.kind, n.model_version, n.summary) for n in ledger.of(*EVENT_KINDS)]
    return points, events


def _png(fig: Figure, name: str, alt: str, caption: str) -> Plot:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    width, height = (round(d * DPI) for d in fig.get_size_inches())
    uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return Plot(name=name, uri=uri, alt=alt, caption=caption, width=width, height=height)


def _events_on(ax: Any, events: list[Event], start: float) -> None:
    for e in events:
        ax.axvline((e.at - start) / 60, color=_EVENT_COLOURS.get(e.kind, "#999"), lw=1, ls="--")


def psi_plot(points: list[Point], events: list[Event], thresholds: dict[str, float]) -> Plot | None:
    drawn = [p for p in points if p.psi]
    if not drawn:
        return None
    start = points[0].at
    fig = Figure(figsize=(9, 3.4))
    ax = fig.subplots()
    names = sorted({n for p in drawn for n in p.psi})
    for name in names:
        xs = [(p.at - start) / 60 for p in drawn if name in p.psi]
        ax.plot(xs, [p.psi[name] for p in drawn if name in p.psi], marker=".", label=name)
    for value in sorted(set(thresholds.values())):
        ax.axhline(value, color="#cf222e", lw=1, ls=":")
    _events_on(ax, events, start)
    ax.set_xlabel("minutes since the first pass")
    ax.set_ylabel("PSI (largest of the windows)")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    last = drawn[-1]
    alt = "PSI per feature over time; latest: " + ", ".join(
        f"{n} {v:.2f}" for n, v in sorted(last.psi.items())
    )
    return _png(fig, "psi", alt, "dotted red: the policy's thresholds; dashed: events")


def rmse_plot(points: list[Point], events: list[Event]) -> Plot | None:
    drawn = [(p.at, p.live_rmse, p.bar) for p in points if p.live_rmse is not None]
    if not drawn:
        return None
    start = points[0].at
    fig = Figure(figsize=(9, 3.0))
    ax = fig.subplots()
    xs = [(at - start) / 60 for at, _, _ in drawn]
    rmse = [float(r) for _, r, _ in drawn if r is not None]
    bars = [float("nan") if b is None else b for _, _, b in drawn]
    ax.plot(xs, rmse, marker=".", label="champion's live RMSE")
    ax.step(xs, bars, where="post", color="#cf222e", ls=":", label="trigger bar")
    _events_on(ax, events, start)
    ax.set_xlabel("minutes since the first pass")
    ax.set_ylabel("RMSE, minutes")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    alt = f"live RMSE over time; latest {rmse[-1]:.2f} min against a bar of {bars[-1]:.2f}"
    return _png(fig, "live-rmse", alt, "dashed: events (retrain, stage, decision)")


def render_timeline(ledger: Ledger, status: dict[str, Any], thresholds: dict[str, float]) -> str:
    """The page; ``status`` is ``duration-operate status --json``'s answer."""
    points, events = series(ledger)
    plots = [p for p in (psi_plot(points, events, thresholds), rmse_plot(points, events)) if p]
    template = ENVIRONMENT.get_template("timeline.html.j2")
    return template.render(
        title="duration-operate timeline",
        csp=CONTENT_SECURITY_POLICY,
        css=style_sheet(),
        status=status,
        plots=plots,
        events=events,
        passes=len(points),
    )
