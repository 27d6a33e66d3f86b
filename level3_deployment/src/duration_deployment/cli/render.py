"""What ``duration-deploy`` prints: the routing table, the history, the A/B and drift report."""

from __future__ import annotations

import sys
from typing import Any


def print_table(state: dict[str, Any], out: Any = sys.stdout) -> None:
    """The routing table as aligned text (a workshop reads this)."""
    table = state.get("table", state)
    print(f"routing table, revision {table.get('revision')}:", file=out)
    for v in table.get("variants", []):
        share = "shadow" if v["shadow"] else f"{v['weight'] * 100:5.1f}%"
        print(
            f"  {v['variant']:<12} v{v['model_version']:<4} {share:>7}  {v.get('model', '?'):<7} "
            f"run {str(v.get('run_id'))[:8]}  sha256 {v['sha256'][:12]}",
            file=out,
        )
    if not table.get("variants"):
        print("  (nothing deployed)", file=out)
    aliases = state.get("aliases")
    if aliases is not None:
        print(
            "  MLflow aliases: "
            + (", ".join(f"{a}=v{n}" for a, n in sorted(aliases.items())) or "none"),
            file=out,
        )


def print_history(events: list[dict[str, Any]], out: Any = sys.stdout) -> None:
    """History entries, oldest first."""
    for e in events:
        print(
            f"  {e['at_iso']}  rev {e['revision']:<3} {e['action']:<18} "
            f"by {e['actor']}: {e['detail']}",
            file=out,
        )


def print_report(result: dict[str, Any]) -> None:
    """The A/B verdict and the drift figures, in a few lines."""
    ab = result["ab"]
    print("A/B report:")
    for v in ab.get("variants", []):
        rmse = "n/a" if v.get("rmse") is None else f"{v['rmse']:.3f}"
        print(
            f"  {v['variant']:<12} v{v['model_version']:<4} predictions {v['predictions']:>7,}  "
            f"labelled {v['labelled']:>7,}  RMSE {rmse:>7}  error rate {v['error_rate']:.2%}"
        )
    comparison = ab.get("comparison")
    if comparison:
        print(f"  verdict: {comparison['verdict']} - {comparison['reason']}")
    for note in ab.get("notes", []):
        print(f"  note: {note}")
    print("drift (PSI against the training profile):")
    for v in result["monitoring"].get("variants", []):
        features = v.get("features") or {}
        figures = ", ".join(f"{name} {values['psi']:.3f}" for name, values in features.items())
        unseen = v.get("unseen_pair_share")
        unseen_text = "" if unseen is None else f", unseen PU_DO pairs {unseen:.1%}"
        figures = f": {figures}{unseen_text}" if figures else ""
        print(f"  {v['variant']:<12} v{v['model_version']:<4} {v['status']}{figures}")
