"""Benchmark: the A/B verdict under continuous monitoring, always valid against fixed horizon.

On real rides of green 2021-03 predicted by models fitted on green 2021-01 (the linear
baseline and the gbm candidate of ``duration_core``), two figures per design:

- **false decisions** (A/A): both sides the linear model, a random 50/50 (and 90/10) split
  of 6,000 rides, the report read every 300 labelled rides; the share of experiments in which a
  monitor acting on the first verdict would have decided (promote or keep champion). Alpha is
  0.05: a valid test stays at or below it.
- **rides to a decision** (gbm challenger against linear champion, a real effect of about
  -42 % in mean squared error): the labelled challenger rides at which the always-valid test
  first decides (median over experiments), against the fixed-horizon plan the report
  computes for the same effect and power (the sample size a Welch test needs when it is
  looked at once), at 50/50 and at 90/10.

Usage: ``python level3_deployment/benchmarks/bench_ab.py [--experiments 200] [--json]``
(or ``tox -e bench-ab``).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from duration_deployment.analysis import INCONCLUSIVE, ab_report
from ladder_testing.ab import month_predictions, random_split_frame, welch_decides_at_some_look

RIDES = 6_000
LOOK = 300
ALPHA = 0.05
POWER = 0.8


def predictions() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Actual minutes and each model's predictions for every ride of green 2021-03."""
    return month_predictions()


def experiment(
    actual: np.ndarray,
    champion: np.ndarray,
    challenger: np.ndarray,
    share: float,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """A prediction log of ``RIDES`` random rides, ``share`` of them to the challenger."""
    return random_split_frame(actual, champion, challenger, rides=RIDES, share=share, rng=rng)


def fixed_horizon_plan(frame: pd.DataFrame) -> int:
    """Challenger rides a Welch test looked at once needs for the observed effect (80 %)."""
    se = ((frame["prediction"] - frame["actual"]) ** 2).to_numpy()
    challenger = (frame["variant"] == "challenger").to_numpy()
    a, b = se[~challenger], se[challenger]
    ratio = a.size / b.size
    z = stats.norm.ppf(1 - ALPHA / 2) + stats.norm.ppf(POWER)
    effect = abs(b.mean() - a.mean())
    return math.ceil(z**2 * (a.var(ddof=1) / ratio + b.var(ddof=1)) / effect**2)


def main() -> int:
    parser = argparse.ArgumentParser(description="always-valid vs fixed-horizon A/B verdicts")
    parser.add_argument("--experiments", type=int, default=200, help="experiments per figure")
    parser.add_argument("--seed", type=int, default=0, help="seed of the splits")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()
    if args.experiments < 10:
        parser.error("--experiments must be at least 10")

    start = time.perf_counter()
    actual, predicted = predictions()
    rng = np.random.default_rng(args.seed)
    results: dict[str, Any] = {"alpha": ALPHA, "looks": RIDES // LOOK}
    print(
        f"A/A, {args.experiments} experiments of {RIDES:,} real rides, a look every {LOOK}: "
        f"share that decided (alpha {ALPHA:.0%})"
    )
    print(f"  {'split':<8}{'always valid (mSPRT)':>22}{'Welch at each look':>20}")
    for share in (0.5, 0.1):
        always_valid = fixed = 0
        for _ in range(args.experiments):
            frame = experiment(actual, predicted["linear"], predicted["linear"], share, rng)
            comparison = ab_report(frame).comparison
            always_valid += comparison is not None and comparison.verdict != INCONCLUSIVE
            fixed += welch_decides_at_some_look(frame, look=LOOK, alpha=ALPHA)
        label = f"{1 - share:.0%}/{share:.0%}"
        print(
            f"  {label:<8}{always_valid / args.experiments:>22.1%}{fixed / args.experiments:>20.1%}"
        )
        results[f"aa_split_{round(share * 100)}"] = {
            "always_valid": always_valid / args.experiments,
            "fixed_horizon_at_every_look": fixed / args.experiments,
        }

    print("gbm challenger vs linear champion: labelled challenger rides to a decision")
    print(
        f"  {'split':<8}{'always valid (median)':>24}{'decided':>10}{'fixed plan':>12}{'ratio':>8}"
    )
    for share in (0.5, 0.1):
        decided_at, plans = [], []
        for _ in range(args.experiments):
            frame = experiment(actual, predicted["linear"], predicted["gbm"], share, rng)
            comparison = ab_report(frame).comparison
            plans.append(fixed_horizon_plan(frame))
            if comparison is not None and comparison.decided_at is not None:
                decided_at.append(comparison.decided_at)
        median = float(np.median(decided_at)) if decided_at else math.nan
        plan = float(np.median(plans))
        label = f"{1 - share:.0%}/{share:.0%}"
        print(
            f"  {label:<8}{median:>24,.0f}{len(decided_at) / args.experiments:>10.0%}"
            f"{plan:>12,.0f}{median / plan:>8.1f}"
        )
        results[f"effect_split_{round(share * 100)}"] = {
            "always_valid_median_challenger_rides": median,
            "decided_share": len(decided_at) / args.experiments,
            "fixed_horizon_plan_challenger_rides": plan,
            "ratio": median / plan,
        }
    print(f"({time.perf_counter() - start:.0f} s; reference: the fixed-horizon plan)")
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
