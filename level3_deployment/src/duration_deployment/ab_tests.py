"""The tests behind the A/B verdict, on per-ride squared error (min^2): always valid or not.

The comparison is on per-ride squared error, whose mean is the MSE, so a difference in mean
squared error is a difference in RMSE^2 with a known sampling distribution. Two designs:

- **always valid** (the default): the mixture sequential probability ratio test of
  :mod:`duration_deployment.sequential`, two-sample for a live split, paired for a shadow
  challenger; its p-value and confidence sequence hold however often they are looked at.
- **fixed horizon**, valid when looked at once at a sample size planned in advance:
  a live challenger (disjoint rides): Welch's unequal-variance t-test (Welch 1947,
  Biometrika 34:28-35) with the Welch-Satterthwaite degrees of freedom (Satterthwaite 1946,
  Biometrics Bulletin 2:110-114), via ``scipy.stats.ttest_ind(equal_var=False)``; a shadow
  challenger (the same rides): a paired bootstrap of the per-ride differences in squared
  error, percentile interval (Efron & Tibshirani 1993, *An Introduction to the Bootstrap*,
  ch. 13) and a two-sided test of a zero mean on the differences shifted to the null (ibid.
  ch. 16), p-value ``(r + 1) / (B + 1)`` (North, Curtis & Sham 2002, Am. J. Hum. Genet.
  71:439-441). The resamples come from numpy's ``default_rng(seed)``, so a report is
  reproducible.

Inputs are the typed log of :func:`duration_deployment.analysis._normalise` (columns
``variant``, ``shadow``, ``ride_id``, ``se`` (squared error, NaN when unlabelled), ``scored``).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import pandas as pd
from scipy import stats

from duration_deployment import sequential

WELCH = "Welch t-test"
PAIRED = "paired bootstrap"
MSPRT = "mSPRT"
PAIRED_MSPRT = "paired mSPRT"
#: Designs of the test: valid at any number of looks (the default), or only at one look.
Design = Literal["always valid", "fixed horizon"]
ALWAYS_VALID: Final = "always valid"
FIXED_HORIZON: Final = "fixed horizon"
DESIGNS: tuple[Design, ...] = (ALWAYS_VALID, FIXED_HORIZON)
#: The tests that compare a shadow challenger on the champion's own rides.
PAIRED_METHODS = (PAIRED, PAIRED_MSPRT)
#: Resamples drawn at once by the paired bootstrap (bounds memory to chunk x rides int64).
_BOOTSTRAP_CHUNK = 256


@dataclass(frozen=True)
class TestFigures:
    """The figures of one test, before the verdict."""

    method: str
    n_champion: int
    n_challenger: int
    champion_mse: float | None
    challenger_mse: float | None
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    champion_variance: float | None  # s1^2, min^4 (0 for pairs: the spread is in s_d^2)
    challenger_variance: float | None  # s2^2, or s_d^2 for pairs, min^4
    design: str = FIXED_HORIZON
    decided_at: int | None = None  # always valid: challenger rides at the first crossing
    decided_difference: float | None = None  # and the difference then (its sign decides)

    @property
    def ratio(self) -> float:
        """Champion rides per challenger ride (1 for pairs)."""
        if self.method in PAIRED_METHODS or not self.n_challenger:
            return 1.0
        return self.n_champion / self.n_challenger


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def welch(champ: pd.DataFrame, chal: pd.DataFrame, alpha: float) -> TestFigures:
    """Welch's t-test of challenger vs champion mean squared error (disjoint rides)."""
    a = champ.loc[champ["scored"], "se"].to_numpy()
    b = chal.loc[chal["scored"], "se"].to_numpy()
    difference = float(b.mean() - a.mean()) if a.size and b.size else None
    ci_low = ci_high = p_value = var_a = var_b = None
    if a.size >= 2 and b.size >= 2:
        var_a, var_b = float(a.var(ddof=1)), float(b.var(ddof=1))
        with warnings.catch_warnings():  # zero variance on both sides: NaN, reported as None
            warnings.simplefilter("ignore", RuntimeWarning)
            result = stats.ttest_ind(b, a, equal_var=False)
            interval = result.confidence_interval(confidence_level=1 - alpha)
        p_value = _finite(result.pvalue)
        ci_low, ci_high = _finite(interval.low), _finite(interval.high)
    return TestFigures(
        method=WELCH,
        n_champion=int(a.size),
        n_challenger=int(b.size),
        champion_mse=float(a.mean()) if a.size else None,
        challenger_mse=float(b.mean()) if b.size else None,
        difference=difference,
        ci_low=ci_low,
        ci_high=ci_high,
        p_value=p_value,
        champion_variance=var_a,
        challenger_variance=var_b,
    )


def always_valid_live(
    champ: pd.DataFrame,
    live: pd.DataFrame,
    fixed: TestFigures,
    alpha: float,
    mixture_scale: float,
    min_labelled: int,
) -> TestFigures:
    """The mSPRT on the live split's labelled rides, in the order they were predicted."""
    rows = pd.concat([champ[champ["scored"]], live[live["scored"]]]).sort_index(kind="stable")
    result = sequential.two_sample(
        rows["se"].to_numpy(),
        (rows["variant"] == live["variant"].iloc[0]).to_numpy(),
        alpha=alpha,
        relative_tau=mixture_scale,
        burn_in=min_labelled,
    )
    se = rows["se"].to_numpy()
    pooled = float(se.var(ddof=1)) if se.size >= 2 else None
    return dataclasses.replace(
        fixed,
        method=MSPRT,
        design=ALWAYS_VALID,
        # the variances the test uses (floored at the pooled one), for its sample size too
        champion_variance=_floored(fixed.champion_variance, pooled),
        challenger_variance=_floored(fixed.challenger_variance, pooled),
        ci_low=result.ci_low,
        ci_high=result.ci_high,
        p_value=result.p_value,
        decided_at=result.decided_at,
        decided_difference=result.decided_difference,
    )


def _floored(variance: float | None, pooled: float | None) -> float | None:
    return variance if variance is None or pooled is None else max(variance, pooled)


def paired(
    champ: pd.DataFrame,
    shadow: pd.DataFrame,
    alpha: float,
    bootstrap_samples: int,
    seed: int,
    notes: list[str],
    design: str = FIXED_HORIZON,
    mixture_scale: float = 0.2,
    min_labelled: int = 30,
) -> TestFigures:
    """Paired test of the per-ride differences in squared error (same ride ids): the paired
    mSPRT (always valid) or the paired bootstrap (fixed horizon)."""

    def first_per_ride(rows: pd.DataFrame) -> pd.DataFrame:
        rows = rows[rows["scored"] & rows["ride_id"].notna()]
        return rows.drop_duplicates("ride_id", keep="first")[["ride_id", "se"]]

    pairs = first_per_ride(champ).merge(
        first_per_ride(shadow), on="ride_id", suffixes=("_champion", "_challenger")
    )
    n_shadow_labelled = int(shadow["scored"].sum())
    if len(pairs) < n_shadow_labelled:
        notes.append(
            f"{n_shadow_labelled - len(pairs):,} labelled shadow rides have no labelled champion "
            "ride with the same ride_id (or no ride_id) and are left out of the paired test"
        )
    diff = (pairs["se_challenger"] - pairs["se_champion"]).to_numpy()
    n = int(diff.size)
    mean = float(diff.mean()) if n else None
    ci_low = ci_high = p_value = variance = None
    if design == ALWAYS_VALID:
        result = sequential.paired(
            diff,
            pairs["se_champion"].to_numpy(),
            alpha=alpha,
            relative_tau=mixture_scale,
            burn_in=min_labelled,
        )
        return TestFigures(
            method=PAIRED_MSPRT,
            n_champion=n,
            n_challenger=n,
            champion_mse=float(pairs["se_champion"].mean()) if n else None,
            challenger_mse=float(pairs["se_challenger"].mean()) if n else None,
            difference=mean,
            ci_low=result.ci_low,
            ci_high=result.ci_high,
            p_value=result.p_value,
            champion_variance=0.0,
            challenger_variance=float(diff.var(ddof=1)) if n >= 2 else None,
            design=ALWAYS_VALID,
            decided_at=result.decided_at,
            decided_difference=result.decided_difference,
        )
    if n >= 2 and mean is not None:
        variance = float(diff.var(ddof=1))
        means = _bootstrap_means(diff, bootstrap_samples, seed)
        low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
        ci_low, ci_high = float(low), float(high)
        # Shift to the null (mean 0): the resampled means of diff - mean are means - mean.
        extreme = int(np.count_nonzero(np.abs(means - mean) >= abs(mean)))
        p_value = (extreme + 1) / (bootstrap_samples + 1)
    return TestFigures(
        method=PAIRED,
        n_champion=n,
        n_challenger=n,
        champion_mse=float(pairs["se_champion"].mean()) if n else None,
        challenger_mse=float(pairs["se_challenger"].mean()) if n else None,
        difference=mean,
        ci_low=ci_low,
        ci_high=ci_high,
        p_value=p_value,
        champion_variance=0.0,
        challenger_variance=variance,
    )


def _bootstrap_means(values: np.ndarray, samples: int, seed: int) -> np.ndarray:
    """Means of ``samples`` resamples (with replacement) of ``values``, shape ``(samples,)``."""
    rng = np.random.default_rng(seed)
    means = np.empty(samples)
    for start in range(0, samples, _BOOTSTRAP_CHUNK):
        stop = min(start + _BOOTSTRAP_CHUNK, samples)
        index = rng.integers(0, values.size, size=(stop - start, values.size))
        means[start:stop] = values[index].mean(axis=1)
    return means


def required_n(
    alpha: float, power: float, mde: float, mixture_scale: float, test: TestFigures
) -> tuple[int | None, int | None]:
    """(challenger, champion) labelled rides (pairs) for ``power`` against ``mde x champion
    MSE`` at the test's split and design; (None, None) while the variances are unknown."""
    if test.challenger_variance is None or test.champion_variance is None:
        return None, None
    if not test.champion_mse:
        return None, None
    delta = mde * test.champion_mse
    ratio = test.ratio
    if test.design == ALWAYS_VALID:
        n: int | None = sequential.required_challenger_n(
            effect=delta,
            champion_variance=test.champion_variance,
            challenger_variance=test.challenger_variance,
            ratio=ratio,
            alpha=alpha,
            power=power,
            relative_tau=mixture_scale,
            champion_mean=test.champion_mse,
        )
    else:
        z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
        spread = test.champion_variance / ratio + test.challenger_variance
        exact = z**2 * spread / delta**2
        n = max(2, math.ceil(exact)) if math.isfinite(exact) else None
    if n is None:
        return None, None
    return n, n if test.method in PAIRED_METHODS else max(2, math.ceil(n * ratio))
